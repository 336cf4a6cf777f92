// Shared by the JS services: forward the request to env.ORIGIN_URL (same path and query) over a
// plain fetch, as the edgeguard Worker does, without the Authorization header and, when a caller
// was verified, with its subject in one identity header.
export function forward(request, env, sub) {
  const url = new URL(request.url);
  const headers = new Headers(request.headers);
  headers.delete('authorization');
  if (sub !== undefined) headers.set('x-auth-sub', String(sub));
  return fetch(env.ORIGIN_URL + url.pathname + url.search, {
    method: request.method,
    headers,
    body: request.body,
  });
}

export function unauthorized() {
  return new Response(null, {
    status: 401,
    headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
  });
}

/** The token from `Authorization: Bearer <token>`, or null. */
export function bearer(request) {
  const auth = request.headers.get('authorization');
  if (!auth || auth.length < 8 || auth.slice(0, 7).toLowerCase() !== 'bearer ') return null;
  return auth.slice(7).trim();
}
