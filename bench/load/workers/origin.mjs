// (origin) The tiny origin every service forwards to: 200 "ok". When the services' global outbound
// is this service (the default), it also sees their other fetches: those to the OIDC provider
// (edgeguard's discovery and JWKS) go on to the real network.
export default {
  fetch(request, env) {
    if (env.IDP_HOST && new URL(request.url).host === env.IDP_HOST) return fetch(request);
    return new Response('ok', { headers: { 'content-type': 'text/plain' } });
  },
};
