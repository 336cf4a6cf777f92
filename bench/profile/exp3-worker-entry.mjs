import * as edge from "./bg-exp3-nolog/index.js";
async function run(r) {
  while (Array.isArray(r)) {
    let v, ok = true;
    try { v = await r[0]; } catch (e) { v = e; ok = false; }
    r = edge.resume(r[1], v, ok);
  }
  return r;
}
export default { fetch(request, env, ctx) { const r = edge.fetch(request, env, ctx); return Array.isArray(r) ? run(r) : r; } };
