#!/usr/bin/env python3
"""Split a `workerd-micro.mjs --perf FILE` recording by variant and compare where the CPU goes.

Every sample is assigned to the variant whose calls were running at its time (FILE.intervals.json,
CLOCK_MONOTONIC, the clock perf records with there), so one interleaved run gives each variant's
native profile, runtime internals included. Prints µs per request by category for every variant
and, per symbol, the largest differences between two variants.

    python3 bench/profile/perf-split.py FILE [A B] [--top N]

Also prints, per variant, the inclusive µs/req of a few stack frames (INCLUSIVE: the origin request
built in wasm, the runtime's fetch, the request read, the decision, ...); name them with an
unstripped build (CARGO_PROFILE_RELEASE_STRIP=false), as bench/profile/README.md says.
"""
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict

CATEGORIES = [
    ('V8 compiler', r'compiler::|[Tt]urboshaft|maglev'),
    ('wasm code', r'-turbofan$|-liftoff$|Builtins_WasmLiftoffFrameSetup'),
    ('wasm⇄JS transitions', r'Wasm|wasm|js-to-wasm'),
    ('kernel', r'^\[k\]|^0x|unknown'),
    ('JS code', r'^JS:'),
    ('V8 builtins', r'^Builtins_'),
    ('malloc/memcpy', r'tcmalloc|TCMalloc|memmove|memset|memcpy'),
    ('GC, handles, wrappers', r'Scaveng|Heap|GC|Mark|Sweep|Evacuat|Compact|TracedReference|GlobalHandles|Tracer|Wrappable|cppgc'),
    ('V8 other', r'v8::|_ZN2v8'),
    ('workerd Headers', r'Header'),
    ('workerd other', r'workerd::'),
    ('kj/capnp', r'kj::|capnp'),
]


INCLUSIVE = [
    ('handleFetch (wasm, all of it)', r'JS:handleFetch-'),
    ('  incoming_request (read the request)', r'convert::incoming_request'),
    ('  Gateway dispatch (the decision)', r'Gateway<P>::dispatch'),
    ('  convert::forward (origin request)', r'convert::forward'),
    ('    of which the runtime fetch()', r'convert::forward.*fetchImplNoOutputLock|fetchImplNoOutputLock.*convert::forward'),
    ('runtime fetch() anywhere', r'fetchImplNoOutputLock'),
    ('calls from wasm into JS/runtime', r'wasm-to-js'),
    ("the variant's JS module (incl. wasm)", r"JS:\S*'?\S* [a-f]/index\.mjs:|passthrough-xfwd\.mjs|harness\.mjs:\d+:8$|harness\.mjs:\d+:8 "),
    ('the origin service', r'origin\.mjs'),
]


def category(sym):
    for name, pattern in CATEGORIES:
        if re.search(pattern, sym):
            return name
    return 'other native'


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    top = int(sys.argv[sys.argv.index('--top') + 1]) if '--top' in sys.argv else 25
    path = args[0]
    meta = json.load(open(f'{path}.intervals.json'))
    intervals = [(v, int(a) / 1e9, int(b) / 1e9) for v, a, b in meta['intervals']]
    calls = Counter(v for v, _, _ in intervals)
    out = subprocess.run(['perf', 'script', '-i', path, '-F', 'time,ip,sym'], capture_output=True, text=True).stdout
    per_sym = defaultdict(Counter)
    per_cat = defaultdict(Counter)
    per_frame = defaultdict(Counter)
    unassigned = 0
    for block in out.split('\n\n'):
        lines = [line.strip() for line in block.strip().split('\n') if line.strip()]
        if len(lines) < 2:
            continue
        stamp = float(lines[0].rstrip(':'))
        leaf = lines[1].split(' ', 1)[-1].strip()
        variant = next((v for v, a, b in intervals if a <= stamp <= b), None)
        if variant is None:
            unassigned += 1
            continue
        per_sym[variant][leaf] += 1
        stack = ' | '.join(lines[1:])
        for name, pattern in INCLUSIVE:
            if re.search(pattern, stack):
                per_frame[variant][name] += 1
        per_cat[variant][category(leaf)] += 1
    us_per_sample = 1e6 / 4999
    scale = {v: us_per_sample / (calls[v] * meta['n']) for v in calls}
    variants = list(calls)
    print(f'{path}: µs/req by category (sampled; perf inflates), unassigned samples {unassigned}')
    print(f"{'category':24s}" + ''.join(f'{v:>10s}' for v in variants))
    cats = sorted({c for v in variants for c in per_cat[v]}, key=lambda c: -max(per_cat[v][c] * scale[v] for v in variants))
    for c in cats + ['total']:
        row = [sum(per_cat[v].values()) * scale[v] if c == 'total' else per_cat[v][c] * scale[v] for v in variants]
        print(f'{c:24s}' + ''.join(f'{x:10.1f}' for x in row))
    print('\ninclusive µs/req of stack frames (any sample with the frame on its stack):')
    for name, _ in INCLUSIVE:
        print(f'{name:38s}' + ''.join(f'{per_frame[v][name] * scale[v]:10.1f}' for v in variants))
    if len(args) >= 3:
        a, b = args[1], args[2]
        print(f'\nlargest per-symbol differences, {a} − {b} (µs/req):')
        syms = set(per_sym[a]) | set(per_sym[b])
        diffs = sorted(syms, key=lambda s: -(per_sym[a][s] * scale[a] - per_sym[b][s] * scale[b]))
        for s in diffs[:top]:
            print(f'{per_sym[a][s] * scale[a] - per_sym[b][s] * scale[b]:7.2f}  {s[:130]}')


main()
