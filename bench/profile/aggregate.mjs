// Aggregate a .cpuprofile (V8 Profiler.stop result): self time per function, per "kind", and
// inclusive time for a few interesting functions. Usage: node aggregate.mjs file.cpuprofile [requests] [top]
import fs from 'node:fs';
const [file, nArg, topArg] = process.argv.slice(2);
const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
const n = Number(nArg || (fs.existsSync(file + '.n') ? fs.readFileSync(file + '.n', 'utf8') : 1));
const top = Number(topArg ?? 45);
const byId = new Map(prof.nodes.map((x) => [x.id, x]));
const parent = new Map();
for (const x of prof.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
// sample durations
const dt = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const d = prof.timeDeltas[i + 1] ?? 0;
  dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + d);
}
const total = [...dt.values()].reduce((a, b) => a + b, 0);
const name = (x) => {
  const cf = x.callFrame;
  const u = cf.url.startsWith('wasm://') ? 'wasm' : cf.url ? cf.url.split('/').pop() : '';
  return `${cf.functionName || '(anon)'}${u ? ' [' + u + (u === 'wasm' ? '' : ':' + cf.lineNumber) + ']' : ''}`;
};
const self = new Map();
const kind = new Map();
const incl = new Map();
for (const [id, d] of dt) {
  const x = byId.get(id);
  const k = name(x);
  self.set(k, (self.get(k) ?? 0) + d);
  const cf = x.callFrame;
  const kd = cf.url.startsWith('wasm://') ? 'wasm code' : cf.url ? 'JS (' + cf.url.split('/').pop() + ')' : cf.functionName;
  kind.set(kd, (kind.get(kd) ?? 0) + d);
  // inclusive: each distinct name on the stack once
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const nm = name(byId.get(cur));
    if (!seen.has(nm)) { seen.add(nm); incl.set(nm, (incl.get(nm) ?? 0) + d); }
  }
}
const us = (d) => (d / n).toFixed(2).padStart(8);
const pct = (d) => ((100 * d) / total).toFixed(1).padStart(5) + '%';
console.log(`${file}: ${prof.samples.length} samples, ${(total / 1e3).toFixed(0)} ms sampled, ${n} requests; µs are per request (sampled time, profiler-inflated)`);
console.log('\n-- by kind (self)');
for (const [k, d] of [...kind].sort((a, b) => b[1] - a[1])) console.log(`${us(d)} ${pct(d)}  ${k}`);
console.log('\n-- top self');
for (const [k, d] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${us(d)} ${pct(d)}  ${k}`);
console.log('\n-- top inclusive');
for (const [k, d] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${us(d)} ${pct(d)}  ${k}`);
