#!/usr/bin/python3
"""Meter lab: a Mininet chain of userspace OVS switches with OpenFlow 1.3
meters installed by hand (no controller), and experiments on it.

Run as root with Debian's interpreter:

    /usr/bin/python3 scripts/meterlab/meterlab.py --hops 4 --meters all \
        --out results.jsonl EXPERIMENT [args...]

Topology: h1 (10.0.0.1) - s1 - s2 - ... - sN - h2 (10.0.0.2).
Every switch forwards by in_port -> out_port.  IPv4 traffic from h1 to h2
goes through meter 1 and from h2 to h1 through meter 2 (on every switch
with --meters all, on the ingress switch of each direction only with
--meters ingress, nowhere with --meters none).  Non-IP (ARP) is unmetered.

Experiments (see main()):
  tcp RATE BUCKET METER_RATE REPS          one iperf3 -t 10 -J TCP run per rep
  sweep SPECFILE                           many 'tcp' points from a JSON list
  hold ...                                 TCP with meter modifications in time
  udp RATE BUCKET METER_RATE BW_KBPS       iperf3 -u
  voice RATE BUCKET                        50 pps, 218-byte frames for 10 s
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

from mininet.clean import cleanup
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch
from mininet.topo import Topo

OF = ['ovs-ofctl', '-O', 'OpenFlow13']


class Chain(Topo):
    def build(self, k=4):
        sws = [self.addSwitch('s%d' % i) for i in range(1, k + 1)]
        h1 = self.addHost('h1', ip='10.0.0.1/8', mac='00:00:00:00:00:01')
        h2 = self.addHost('h2', ip='10.0.0.2/8', mac='00:00:00:00:00:02')
        self.addLink(h1, sws[0])
        for a, b in zip(sws, sws[1:]):
            self.addLink(a, b)
        self.addLink(sws[-1], h2)


class UserSwitch(OVSSwitch):
    def __init__(self, name, **params):
        super().__init__(name, datapath='user', protocols='OpenFlow13',
                         failMode='secure', **params)


def sh(cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError('%s: %s' % (' '.join(cmd), r.stderr))
    return r.stdout


class Lab:
    cc = None   # sender congestion control for iperf3 -C (None: host default)

    def __init__(self, hops, meters):
        self.hops = hops
        self.meters = meters
        cleanup()
        self.net = Mininet(topo=Chain(hops), switch=UserSwitch,
                           controller=None, autoSetMacs=False)
        self.net.start()
        self.h1, self.h2 = self.net.get('h1'), self.net.get('h2')
        for h in (self.h1, self.h2):
            h.cmd('ethtool -K %s tx off' % h.defaultIntf())
        self.net.staticArp()
        self.sw = [self.net.get('s%d' % i) for i in range(1, hops + 1)]
        self.metered = {1: [], 2: []}   # meter id -> switches carrying it
        self.installed = {1: set(), 2: set()}

    # ---- flows and meters -------------------------------------------------
    def port(self, sw, node):
        """Port number of sw's interface towards node."""
        for intf in sw.intfList():
            link = intf.link
            if link is None:
                continue
            other = link.intf2 if link.intf1 is intf else link.intf1
            if other.node is node:
                return sw.ports[intf]
        raise KeyError((sw.name, node.name))

    def setup_flows(self, rate, bucket, rate2=None, bucket2=None):
        """Meters 1 (h1->h2) and 2 (h2->h1) with the given rate/bucket
        (kbit/s, kbit; bucket None = no BURST flag)."""
        rate2 = rate if rate2 is None else rate2
        bucket2 = bucket if bucket2 is None else bucket2
        n = len(self.sw)
        for i, s in enumerate(self.sw):
            left = self.h1 if i == 0 else self.sw[i - 1]
            right = self.h2 if i == n - 1 else self.sw[i + 1]
            pl, pr = self.port(s, left), self.port(s, right)
            sh(OF + ['del-flows', s.name])
            sh(OF + ['del-meters', s.name], check=False)
            m1 = self.meters == 'all' or (self.meters == 'ingress' and i == 0)
            m2 = self.meters == 'all' or (self.meters == 'ingress' and i == n - 1)
            for mid, on, r, b, pin, pout in ((1, m1, rate, bucket, pl, pr),
                                             (2, m2, rate2, bucket2, pr, pl)):
                act = 'output:%d' % pout
                if on and self.meters != 'none':
                    sh(OF + ['add-meter', s.name, meter_spec(mid, r, b)])
                    act = 'meter:%d,%s' % (mid, act)
                    self.metered[mid].append(s.name)
                sh(OF + ['add-flow', s.name,
                         'priority=10,ip,in_port=%d,actions=%s' % (pin, act)])
                sh(OF + ['add-flow', s.name,
                         'priority=5,in_port=%d,actions=output:%d' % (pin, pout)])

    def mod_meter(self, mid, rate, bucket):
        spec = meter_spec(mid, rate, bucket)
        for name in self.metered[mid]:
            sh(OF + ['mod-meter', name, spec])

    def mod_meters_parallel(self, rate, bucket, rate2=None, bucket2=None):
        """MODIFY meter 1 and meter 2 on every switch at once (one
        ovs-ofctl per switch and meter, all started together)."""
        rate2 = rate if rate2 is None else rate2
        bucket2 = bucket if bucket2 is None else bucket2
        procs = []
        for mid, r, b in ((1, rate, bucket), (2, rate2, bucket2)):
            for name in self.metered[mid]:
                procs.append(subprocess.Popen(
                    OF + ['mod-meter', name, meter_spec(mid, r, b)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for p in procs:
            if p.wait() != 0:
                raise RuntimeError(p.stderr.read())

    def egress_intf(self):
        """s1's interface towards the next node on h1 -> h2."""
        s1 = self.sw[0]
        nxt = self.sw[1] if len(self.sw) > 1 else self.h2
        for intf in s1.intfList():
            if intf.link:
                other = intf.link.intf2 if intf.link.intf1 is intf else intf.link.intf1
                if other.node is nxt:
                    return intf.name
        raise KeyError('egress')

    def tbf(self, kbit):
        """Shape (not police) h1->h2 traffic at s1's egress with a tbf
        qdisc of `kbit` kbit/s (None: remove it)."""
        dev = self.egress_intf()
        if kbit is None:
            sh(['tc', 'qdisc', 'del', 'dev', dev, 'root'], check=False)
        else:
            sh(['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate',
                '%dkbit' % kbit, 'burst', '%d' % max(3028, kbit * 1000 // 8 // 50),
                'latency', '100ms'])

    def meter_stats(self, mid):
        out = {}
        for name in self.metered[mid]:
            out[name] = sh(OF + ['meter-stats', name, 'meter=%d' % mid]).strip()
        return out

    def stop(self):
        self.net.stop()
        cleanup()

    # ---- traffic ----------------------------------------------------------
    def iperf(self, args, server_json=False, timeout=60):
        srv = self.h2.popen(['iperf3', '-s', '-1', '-p', '5201'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        cc = ['-C', self.cc] if self.cc else []
        cli = self.h1.popen(['iperf3', '-c', '10.0.0.2', '-p', '5201', '-J']
                            + cc + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
        try:
            out, err = cli.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            cli.kill()
            out, err = cli.communicate()
        try:
            srv.wait(timeout=5)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        try:
            return json.loads(out)
        except ValueError:
            return {'error': 'bad json: %r %r' % (out[:300], err[:300])}


def meter_spec(mid, rate, bucket):
    if bucket is None:
        return 'meter=%d,kbps,stats,bands=type=drop,rate=%d' % (mid, rate)
    return ('meter=%d,kbps,burst,stats,bands=type=drop,rate=%d,burst_size=%d'
            % (mid, rate, bucket))


def parse_ms(txt):
    m = re.search(r'byte_in_count:(\d+).*?byte_count:(\d+)', txt, re.S)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def passed_bytes(lab, mid=1):
    """Bytes let through by meter mid on the first switch carrying it."""
    if not lab.metered[mid]:
        return 0
    st = lab.meter_stats(mid)
    i, d = parse_ms(st[lab.metered[mid][0]])
    return i - d


def load():
    with open('/proc/loadavg') as f:
        return float(f.read().split()[0])


def cpu_busy_nice():
    """Fraction of CPU time spent in 'nice' since the last call."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v


# ---- experiments ----------------------------------------------------------

def exp_tcp(lab, out, rate, bucket, mrate, reps, tag='', t=10, cc=None):
    lab.cc = cc
    lab.setup_flows(mrate, bucket)
    res = []
    for rep in range(reps):
        c0 = cpu_busy_nice()
        p0 = passed_bytes(lab)
        j = lab.iperf(['-t', str(t)])
        p1 = passed_bytes(lab)
        c1 = cpu_busy_nice()
        d = [b - a for a, b in zip(c0, c1)]
        nice_frac = d[1] / max(1, sum(d))
        if 'error' in j:
            gp, retr = None, None
            print('ERROR', j['error'], file=sys.stderr)
        else:
            gp = j['end']['sum_received']['bits_per_second'] / 1000.0
            retr = j['end']['sum_sent'].get('retransmits')
            sr = j['end']['sum_received']
            ivs = [i['sum']['bits_per_second'] / 1000.0 for i in j.get('intervals', [])]
            extra = dict(rx_bytes=sr['bytes'], rx_secs=round(sr['seconds'], 3),
                         meter_passed_bytes=p1 - p0,
                         sent_kbps=j['end']['sum_sent']['bits_per_second'] / 1000.0,
                         iv_mean_kbps=(sum(ivs) / len(ivs)) if ivs else None,
                         ivs=[round(x) for x in ivs])
        rec = dict(exp='tcp', tag=tag, hops=lab.hops, meters=lab.meters,
                   cc=cc or 'default',
                   rate=rate, bucket=bucket, mrate=mrate, rep=rep, t=t,
                   goodput_kbps=gp, ratio=(gp / rate if gp and rate else None),
                   retrans=retr, load=load(), nice_cpu=round(nice_frac, 2),
                   **(extra if gp is not None else {}))
        print(json.dumps(rec), flush=True)
        out.write(json.dumps(rec) + '\n')
        out.flush()
        res.append(gp)
    return res


def ss_sampler(lab, stop, log, t0):
    while not stop.is_set():
        o = lab.h1.cmd('ss -tin dst 10.0.0.2 dport = 5201')
        log.append((round(time.time() - t0, 2), ' '.join(o.split())))
        time.sleep(0.25)


def exp_hold(lab, out, rate, bucket, mrate, schedule, total=30, tag='',
             rate2=None, bucket2=None, cc=None):
    lab.cc = cc
    """schedule: list of (t_seconds, rate, bucket) meter MODIFYs applied to
    both directions' meters (reverse direction: same unless rate2)."""
    lab.setup_flows(mrate, bucket)
    srv = lab.h2.popen(['iperf3', '-s', '-1', '-p', '5201', '-J', '-i', '0.5'],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       text=True)
    time.sleep(0.5)
    cc = ['-C', lab.cc] if lab.cc else []
    cli = lab.h1.popen(['iperf3', '-c', '10.0.0.2', '-p', '5201', '-J',
                        '-t', str(total), '-i', '0.5'] + cc,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    t0 = time.time()
    stop = threading.Event()
    sslog = []
    th = threading.Thread(target=ss_sampler, args=(lab, stop, sslog, t0))
    th.start()
    applied = []
    for (ts, r, b) in schedule:
        dt = t0 + ts - time.time()
        if dt > 0:
            time.sleep(dt)
        t1 = time.time() - t0
        if r == 'tbf':      # shaper instead of meter: tbf on s1's egress to s2
            lab.tbf(b)
        elif r == 'tbf-off':
            lab.tbf(None)
        else:
            lab.mod_meters_parallel(r, b)
        applied.append((round(time.time() - t0, 3), r, b, round(t1, 3)))
    cout, _ = cli.communicate(timeout=total + 30)
    sout, _ = srv.communicate(timeout=30)
    stop.set()
    th.join()
    try:
        sj = json.loads(sout)
        cj = json.loads(cout)
    except ValueError:
        print('bad json', cout[:300], sout[:300])
        return
    srv_iv = [(round(iv['sum']['start'], 2), round(iv['sum']['end'], 2),
               round(iv['sum']['bits_per_second'] / 1000.0, 1))
              for iv in sj['intervals']]
    cli_iv = [(round(iv['sum']['start'], 2),
               round(iv['sum']['bits_per_second'] / 1000.0, 1),
               iv['sum'].get('retransmits'),
               iv['streams'][0].get('snd_cwnd'),
               iv['streams'][0].get('rtt'))
              for iv in cj['intervals']]
    # ss: the data connection is the one with most data_segs_out (iperf3
    # also has a control connection to the same port).
    ss = []
    for ts, line in sslog:
        best = None
        for chunk in re.split(r'(?=ESTAB|FIN-WAIT|CLOSE-WAIT|LAST-ACK)', line):
            m = re.search(r'data_segs_out:(\d+)', chunk)
            n = int(m.group(1)) if m else -1
            if best is None or n > best[0]:
                best = (n, chunk)
        if not best or best[0] < 0:
            continue
        chunk = best[1]
        d = {'t': ts}
        for k in ('cwnd', 'rto', 'backoff', 'ssthresh', 'unacked', 'lost',
                  'retrans', 'notsent', 'pacing_rate', 'delivery_rate',
                  'pacing_gain', 'cwnd_gain', 'bw', 'mrtt', 'rtt'):
            m = re.search(r'[\s(,]%s:([\d./]+)' % k, ' ' + chunk)
            if m:
                d[k] = m.group(1)
        m = re.search(r'\b(bbr|cubic|reno)\b', chunk)
        d['ca'] = m.group(1) if m else None
        ss.append(d)
    # client connect time relative to t0 is ~0; iperf3 times start at connect.
    rec = dict(exp='hold', tag=tag, hops=lab.hops, meters=lab.meters,
               cc=cc or 'default',
               rate=rate, bucket=bucket, mrate=mrate, schedule=schedule,
               applied=applied, srv=srv_iv, cli=cli_iv, ss=ss,
               meter1=lab.meter_stats(1), load=load())
    out.write(json.dumps(rec) + '\n')
    out.flush()
    print_hold(rec)


def fmt_rate(v):
    if v is None:
        return '-'
    v = float(re.sub(r'[^\d.]', '', v))
    return '%.2fM' % (v / 1e6)


def print_hold(rec):
    print('hold %s cc=%s rate=%s bucket=%s mrate=%s schedule=%s applied=%s' % (
        rec['tag'], rec.get('cc'), rec['rate'], rec['bucket'], rec['mrate'],
        rec['schedule'], rec['applied']))
    ssd = {}
    for d in rec['ss']:
        ssd.setdefault(int(d['t'] * 2) / 2.0, d)
    for (a, b, kb), c in zip(rec['srv'], rec['cli']):
        d = ssd.get(a, {})
        print('  %5.1f-%5.1f rx %8.1f kbit/s | tx %8.1f retr %4s | cwnd %4s '
              'rto %4s backoff %2s bw %7s pacing %7s gain %s notsent %s' % (
                  a, b, kb, c[1], c[2], d.get('cwnd'), d.get('rto'),
                  d.get('backoff', 0), fmt_rate(d.get('bw')),
                  fmt_rate(d.get('pacing_rate')), d.get('pacing_gain'),
                  d.get('notsent')))
    sys.stdout.flush()


def exp_udp(lab, out, rate, bucket, mrate, bw, length=None, t=10, tag=''):
    lab.setup_flows(mrate, bucket)
    args = ['-u', '-b', '%dk' % bw, '-t', str(t)]
    if length:
        args += ['-l', str(length)]
    j = lab.iperf(args + ['--get-server-output'])
    if 'error' in j:
        print('ERROR', j['error'])
        return
    s = j['end']['sum']
    srv_rx = None
    try:
        so = j['server_output_json']['end']['sum']
        srv_rx = so['bits_per_second'] / 1000.0
    except KeyError:
        pass
    rec = dict(exp='udp', tag=tag, hops=lab.hops, meters=lab.meters,
               rate=rate, bucket=bucket, mrate=mrate, bw=bw, length=length,
               sent_kbps=s['bits_per_second'] / 1000.0,
               lost=s.get('lost_packets'), packets=s.get('packets'),
               lost_percent=s.get('lost_percent'), srv_kbps=srv_rx,
               meter1=lab.meter_stats(1), load=load())
    print(json.dumps(rec), flush=True)
    out.write(json.dumps(rec) + '\n')
    out.flush()


VOICE_SENDER = r'''
import socket, time, sys
n = int(sys.argv[1]); size = int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t = time.time()
for i in range(n):
    s.sendto(i.to_bytes(4, 'big') + b'x' * (size - 4), ('10.0.0.2', 4000))
    t += 0.02
    d = t - time.time()
    if d > 0:
        time.sleep(d)
'''

VOICE_RECEIVER = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 4000)); s.settimeout(3)
seen = set()
try:
    while True:
        d = s.recv(2000); seen.add(int.from_bytes(d[:4], 'big'))
except socket.timeout:
    pass
print(len(seen))
'''


def exp_voice(lab, out, rate, bucket, seconds=20, payload=172, tag=''):
    """G.711/20 ms: 160 B voice + 12 B RTP = 172 B UDP payload
    -> 172+8+20+14 = 214 B frame (218 with a VLAN tag / FCS-ish figure)."""
    lab.setup_flows(rate, bucket)
    for name, src in (('/tmp/voice_tx.py', VOICE_SENDER),
                      ('/tmp/voice_rx.py', VOICE_RECEIVER)):
        with open(name, 'w') as f:
            f.write(src)
    n = seconds * 50
    rx = lab.h2.popen(['/usr/bin/python3', '/tmp/voice_rx.py'],
                      stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    lab.h1.cmd('/usr/bin/python3 /tmp/voice_tx.py %d %d' % (n, payload))
    got = int(rx.communicate(timeout=30)[0].strip() or 0)
    rec = dict(exp='voice', tag=tag, hops=lab.hops, meters=lab.meters,
               rate=rate, bucket=bucket, payload=payload,
               frame=payload + 8 + 20 + 14, sent=n, received=got,
               loss=n - got, meter1=lab.meter_stats(1), load=load())
    print(json.dumps(rec), flush=True)
    out.write(json.dumps(rec) + '\n')
    out.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--hops', type=int, default=4)
    ap.add_argument('--meters', default='all',
                    choices=['all', 'ingress', 'none'])
    ap.add_argument('--out', default='results.jsonl')
    ap.add_argument('--tag', default='')
    ap.add_argument('exp')
    ap.add_argument('args', nargs='*')
    a = ap.parse_args()
    setLogLevel('warning')
    lab = Lab(a.hops, a.meters)
    try:
        with open(a.out, 'a') as out:
            if a.exp == 'tcp':
                rate, bucket, mrate, reps = a.args[:4]
                bucket = None if bucket == 'none' else int(bucket)
                exp_tcp(lab, out, int(rate), bucket, int(mrate), int(reps),
                        tag=a.tag)
            elif a.exp == 'sweep':
                with open(a.args[0]) as f:
                    spec = json.load(f)
                for p in spec:
                    exp_tcp(lab, out, p['rate'], p['bucket'], p['mrate'],
                            p.get('reps', 3), tag=a.tag or p.get('tag', ''),
                            t=p.get('t', 10), cc=p.get('cc'))
            elif a.exp == 'hold':
                with open(a.args[0]) as f:
                    spec = json.load(f)
                for p in spec:
                    exp_hold(lab, out, p['rate'], p['bucket'], p['mrate'],
                             p['schedule'], total=p.get('total', 30),
                             tag=p.get('tag', a.tag), cc=p.get('cc'))
            elif a.exp == 'udp':
                with open(a.args[0]) as f:
                    spec = json.load(f)
                for p in spec:
                    exp_udp(lab, out, p['rate'], p['bucket'], p['mrate'],
                            p['bw'], length=p.get('length'),
                            tag=p.get('tag', a.tag))
            elif a.exp == 'voice':
                with open(a.args[0]) as f:
                    spec = json.load(f)
                for p in spec:
                    exp_voice(lab, out, p['rate'], p['bucket'],
                              seconds=p.get('seconds', 20),
                              payload=p.get('payload', 172),
                              tag=p.get('tag', a.tag))
            else:
                raise SystemExit('unknown experiment ' + a.exp)
    finally:
        lab.stop()


if __name__ == '__main__':
    main()
