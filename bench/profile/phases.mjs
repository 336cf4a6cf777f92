// Attribute every sample of a .cpuprofile to a phase of edgeguard's request handling: walk the
// stack from the leaf out, the first frame matching a phase's pattern decides.
// Usage: node phases.mjs file.cpuprofile [requests]
import fs from 'node:fs';
const [file, nArg] = process.argv.slice(2);
const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
const n = Number(nArg || (fs.existsSync(file + '.n') ? fs.readFileSync(file + '.n', 'utf8') : 1));
const PHASES = [
  ['console.log call (JS side)', /console::log_1|__wbg_log_/],
  ['crypto.subtle.verify call', /SubtleCrypto::verify|__wbg_verify_/],
  ['crypto.subtle.importKey', /import_key|importKey/],
  ['jwt parse (b64/JSON)', /jwt::parse|UnverifiedJwt|base64/],
  ['jwt verify/claims (Rust)', /jwt::|policy::/],
  ['global fetch() call', /global_fetch|__wbg_fetch_|^fetch \[native\]/],
  ['new Request(url, init)', /new_with_str_and_init|^Request \[native\]/],
  ['forward: headers/init (convert::forward)', /convert::forward|Headers|RequestInit|__wbg_set_|__wbg_delete_|new_with_headers/],
  ['incoming_request (url/method/headers in)', /incoming_request|try_iter|__wbg_next_|__wbg_url_|__wbg_method_|__wbg_headers_/],
  ['log line JSON (serde) + emit', /edge::emit|DecisionLog|serde_json/],
  ['gateway logic (route, headers plan)', /gateway::|proxy::|config::|routes?::/],
  ['state()/env', /edge::state|edge::setting|Env/],
  ['Response conversion', /js_response|Response/],
  ['futures/closure plumbing (wasm-bindgen)', /js_sys::futures|JsFuture|future_to_promise|queueMicrotask|closures|^real |^cb0 |makeMutClosure|__wbg_then_|_wbg_cb_unref|new_typed|Closure\(/],
  ['wasm entry (fetch glue)', /^fetch \[(js|wasm)\]|fetch externref|js-to-wasm/],
  ['malloc/free/alloc', /dlmalloc|alloc::|__externref/],
];
const byId = new Map(prof.nodes.map((x) => [x.id, x]));
const parent = new Map();
for (const x of prof.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
const label = (x) => `${x.callFrame.functionName || '(anon)'} ${x.callFrame.url.startsWith('wasm://') ? '[wasm]' : x.callFrame.url ? '[js]' : '[native]'}`;
const acc = new Map();
let total = 0, busy = 0;
const memo = new Map();
function phaseOf(id) {
  if (memo.has(id)) return memo.get(id);
  let ph = null;
  for (let cur = id; cur !== undefined && !ph; cur = parent.get(cur)) {
    const l = label(byId.get(cur));
    for (const [name, re] of PHASES) if (re.test(l)) { ph = name; break; }
  }
  if (!ph) {
    const l = label(byId.get(id));
    ph = /^\((idle)\)/.test(l) ? '(idle)' : /^\((program|garbage collector|root)\)/.test(l) ? 'runtime: ' + l.split(' [')[0] : 'other: ' + l;
  }
  memo.set(id, ph);
  return ph;
}
for (let i = 0; i < prof.samples.length; i++) {
  const d = prof.timeDeltas[i + 1] ?? 0;
  const ph = phaseOf(prof.samples[i]);
  acc.set(ph, (acc.get(ph) ?? 0) + d);
  total += d;
  if (ph !== '(idle)') busy += d;
}
console.log(`${file}: ${n} requests; busy ${(busy / n).toFixed(1)} µs/req sampled (profiler-inflated); shares are of busy time`);
for (const [k, d] of [...acc].sort((a, b) => b[1] - a[1])) {
  if (k === '(idle)') continue;
  console.log(`${(d / n).toFixed(1).padStart(7)} µs ${((100 * d) / busy).toFixed(1).padStart(5)}%  ${k}`);
}
