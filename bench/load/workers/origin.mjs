// (origin) The tiny origin every service forwards to: 200 "ok". When the services' global outbound
// is this service (the default), it also sees their other fetches: those to the OIDC provider
// (edgeguard's discovery and JWKS) go on to the real network. It counts both kinds, which the
// bench reads from GET /__bench/stats on the origin's own socket.
const stats = { origin: 0, provider: 0 };

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    if (env.IDP_HOST && url.host === env.IDP_HOST) {
      stats.provider++;
      return fetch(request);
    }
    if (url.pathname === '/__bench/stats') return Response.json(stats);
    stats.origin++;
    return new Response('ok', { headers: { 'content-type': 'text/plain' } });
  },
};
