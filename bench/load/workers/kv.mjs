// (kv) An in-memory stand-in for the Workers KV service behind edgeguard's SESSIONS binding when
// running workerd directly (Miniflare brings its own). Bearer routes do not use it. It counts
// reads and writes, which the bench reads from GET /__bench/stats on the kv service's own socket
// (edgeguard's KV keys are never that path) to show the warm session route reads nothing.
const store = new Map();
const stats = { reads: 0, writes: 0, deletes: 0 };

export default {
  async fetch(request) {
    const key = new URL(request.url).pathname;
    if (key === '/__bench/stats') return Response.json(stats);
    switch (request.method) {
      case 'GET': {
        stats.reads++;
        const value = store.get(key);
        return value === undefined ? new Response(null, { status: 404 }) : new Response(value);
      }
      case 'PUT':
        stats.writes++;
        store.set(key, await request.arrayBuffer());
        return new Response(null);
      case 'DELETE':
        stats.deletes++;
        store.delete(key);
        return new Response(null);
      default:
        return new Response(null, { status: 501 });
    }
  },
};
