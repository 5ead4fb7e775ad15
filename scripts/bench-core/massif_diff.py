#!/usr/bin/env python3
# massif_diff.py BEFORE AFTER SESSIONS: heap growth by allocation site (massif detailed snapshots
# from vgdb), the site being the first frame outside alloc/hashbrown/raw_vec/fmt plumbing.
import re, sys, collections
SKIP = re.compile(r'(alloc::|hashbrown::|raw_vec|RawVec|__rust|malloc|realloc|calloc|core::fmt|<alloc::string::String as core::fmt::Write>|smallvec::|finish_grow|grow_one|do_reserve|reserve_rehash|fallible_with_capacity|<usize as core::fmt|pad_integral|format_inner|to_owned|to_string|clone|Clone|from_iter|collect|extend|Vec<|String|Box<|bytes_mut|BytesMut|serde_json::ser|::fmt$|format)')
def parse(path):
    lines = open(path).read().splitlines()
    # tree lines: " n<children>: <bytes> <rest>" with leading spaces = depth
    out = collections.Counter()
    stack = []
    for l in lines:
        m = re.match(r'^( *)n(\d+): (\d+) (.*)$', l)
        if not m: continue
        depth = len(m.group(1)); nkids = int(m.group(2)); b = int(m.group(3)); rest = m.group(4)
        fn = re.sub(r'^0x[0-9A-F]+: ', '', rest); fn = re.sub(r' \(in .*\)$', '', fn)
        stack = stack[:depth] + [fn]
        if depth == 0: continue
        # attribute leaves (or below-threshold aggregates) to the first meaningful frame
        if nkids == 0:
            site = None
            for f in stack[1:]:
                if 'places, all below' in f: continue
                if SKIP.search(f.split('::<')[0]) and not f.startswith('tierflow'):
                    continue
                site = f; break
            if site is None: site = stack[-1]
            site = re.sub(r'<impl [^>]*>', '', site)
            out[site] += b
    return out
b = parse(sys.argv[1]); a = parse(sys.argv[2]); n = int(sys.argv[3])
keys = set(a) | set(b)
rows = sorted(((a[k]-b[k], k) for k in keys), reverse=True)
tot = sum(a.values()) - sum(b.values())
print(f"heap growth {tot:,} B over {n:,} sessions = {tot/n:.1f} B/session")
for d, k in rows:
    if abs(d)/n >= 2: print(f"{d/n:8.1f} B/session  {d:>13,} B  {k[:160]}")
