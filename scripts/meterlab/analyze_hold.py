#!/usr/bin/env python3
"""analyze_hold.py hold.jsonl [TAG_REGEX]: per hold run, receiver goodput
during the hold and time to recover after the resume.

Times are iperf3 receiver times (0.5 s intervals); the meter MODIFY times
('applied') are measured from the client's start, which precedes iperf3's
t=0 by the connection setup (tens of ms), so they are comparable to 0.1 s.
- hold avg: receiver goodput averaged over [t_hold, t_resume] (whole hold)
  and over [t_hold+2, t_resume] (after the transition).
- min 1s: smallest 1 s (two consecutive 0.5 s intervals) average in the hold.
- recover: seconds from the resume MODIFY to the end of the first 1 s window
  whose average is >= 90 % of the tier rate, and which is followed by
  no 1 s window below 80 %... (we report the simple first-crossing time and
  the average of the 5 s after the resume).
"""
import json, re, sys, statistics
rx = re.compile(sys.argv[2]) if len(sys.argv) > 2 else None
print('| tag | cc | tier rate | bucket | hold rate / bucket | hold avg (whole) | hold avg (t+2..) | ratio | min 1 s | recover (s) | avg 5 s after resume | avg resume+3..+8 |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|')
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get('exp') != 'hold' or (rx and not rx.search(d['tag'])):
        continue
    iv = d['srv']
    sched = d['applied']
    th, hr, hb = sched[0][:3]
    # resume: time the MODIFYs were started (4th field) when recorded
    tr = sched[-1][3] if len(sched[-1]) > 3 else sched[-1][0]
    if len(sched) > 2:   # staged schedules: hold = first mod .. last mod
        hr = min(s[1] for s in sched[:-1])
    def avg(a, b):
        v = [k for (s, e, k) in iv if s >= a - 0.1 and e <= b + 0.1]
        return sum(v) / len(v) if v else float('nan')
    def avg_hold(a, b):  # strictly inside [a, b - 0.25]: iperf3's clock starts a little after ours
        v = [k for (s, e, k) in iv if s >= a - 0.1 and e <= b - 0.25]
        return sum(v) / len(v) if v else float('nan')
    hold_iv = [(s, e, k) for (s, e, k) in iv if s >= th - 0.1 and e <= tr - 0.25]
    one_s = [(hold_iv[i][2] + hold_iv[i + 1][2]) / 2 for i in range(len(hold_iv) - 1)]
    rate = d['rate']
    rec = None
    post = [(s, e, k) for (s, e, k) in iv if s >= tr - 0.5]
    for i in range(len(post) - 1):
        if post[i][0] < tr - 0.26:
            continue
        if (post[i][2] + post[i + 1][2]) / 2 >= 0.9 * rate:
            rec = post[i + 1][1] - tr
            break
    cc = d.get('cc', 'default')
    cc = 'cubic' if 'cubic' in str(cc) else 'bbr(default)'
    ha = avg_hold(th, tr)
    print('| %s | %s | %d | %d | %d / %d | %.0f | %.0f | %.2f | %.0f | %s | %.0f | %.0f |' % (
        d['tag'], cc, rate, d['bucket'], hr, hb, ha, avg_hold(th + 2, tr), avg_hold(th + 2, tr) / hr,
        min(one_s) if one_s else float('nan'),
        '%.1f' % rec if rec is not None else '>%.0f' % (iv[-1][1] - tr),
        avg(tr, tr + 5), avg(tr + 3, tr + 8)))
