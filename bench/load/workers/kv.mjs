// (kv) An in-memory stand-in for the Workers KV service behind edgeguard's SESSIONS binding when
// running workerd directly (Miniflare brings its own). Bearer routes do not use it.
const store = new Map();

export default {
  async fetch(request) {
    const key = new URL(request.url).pathname;
    switch (request.method) {
      case 'GET': {
        const value = store.get(key);
        return value === undefined ? new Response(null, { status: 404 }) : new Response(value);
      }
      case 'PUT':
        store.set(key, await request.arrayBuffer());
        return new Response(null);
      case 'DELETE':
        store.delete(key);
        return new Response(null);
      default:
        return new Response(null, { status: 501 });
    }
  },
};
