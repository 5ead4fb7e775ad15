#!/usr/bin/env python3
# cg_cmp.py A.out SETUPS_A B.out SETUPS_B: exclusive instructions per setup by function, both builds
import subprocess, re, sys, collections
def load(p):
    t = subprocess.run(['callgrind_annotate', '--threshold=100', p], capture_output=True, text=True).stdout
    d = collections.Counter()
    for l in t.splitlines():
        m = re.match(r'^\s*([\d,]+) \([^)]*\)\s+(\S.*?)(?: \[.*\])?$', l)
        if m and 'PROGRAM TOTALS' not in l:
            fn = m.group(2).split(':', 1)[1] if ':' in m.group(2) else m.group(2)
            d[fn] += int(m.group(1).replace(',', ''))
    return d
a = load(sys.argv[1]); sa = int(sys.argv[2]); b = load(sys.argv[3]); sb = int(sys.argv[4])
rows = []
for k in set(a) | set(b):
    pa, pb = a[k]/sa, b[k]/sb
    if max(pa, pb) >= 15: rows.append((pb - pa, pa, pb, k))
rows.sort(reverse=True)
print(f"{'base/setup':>10} {'new/setup':>10} {'diff':>8}  function")
for d, pa, pb, k in rows: print(f"{pa:10.0f} {pb:10.0f} {d:+8.0f}  {k[:130]}")
