// (a'') Diagnostic: pass-through that sends the origin the same request edgeguard sends on a
// public route: the client's Host dropped, X-Forwarded-Host and X-Forwarded-Proto set, redirects
// not followed. Measured in workerd, these edits alone make `fetch` cost more (its native part
// grows with the headers it re-serialises), so this is (e)'s like-for-like JS baseline; (a) stays
// the reference.
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete('authorization');
    headers.delete('host');
    headers.set('x-forwarded-host', url.host);
    headers.set('x-forwarded-proto', url.protocol.slice(0, -1));
    return fetch(env.ORIGIN_URL + url.pathname + url.search, {
      method: request.method,
      headers,
      body: request.body,
      redirect: 'manual',
    });
  },
};
