#!/usr/bin/python3
"""Benchmark of POST /api/v1/sessions (issue 15): latency (the answer comes
after every switch of the path confirmed the session's flows and meters by
barrier) and requests per second, with the API in the loop.

For each run: a private redis-server with the sample CRM
(crm/contact-center.json), a fresh `tierflow run` (the binary given, a
release build), a fresh Mininet chain of four userspace Open vSwitch
switches with four hosts on each (LinearTopo k=4 n=4 of
mininet/tierflow_mn.py), with the per-client and per-port session
limits lifted (a config file written next to the logs); every client host
(on s1) pings every server host (on s4) so all are located; then wrk (Debian's `wrk`, with
scripts/post_sessions.lua) posts distinct voice sessions between the 16
client/server pairs, each across the four switches, counting ports up.
After each run the Tierflow session flows on s1 and s4 are counted, to
compare with the 201 answers (requests still in flight when wrk stops are
answered after it stopped counting: their flows are there too): four per
voice session (RTP and RTCP, both ways).

Run as root from the checkout, holding the Mininet lock if the machine is
shared (writes logs under --logs):

    cargo build --release --bin tierflow
    flock /work/mininet.lock /usr/bin/python3 scripts/bench_sessions.py \\
        --bin target/release/tierflow --runs 1x1,2x8,2x32 --duration 10

`--runs` is a comma-separated list of THREADSxCONNECTIONS for wrk. Prints
one JSON line per run and a Markdown table.
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'mininet'))
os.environ.setdefault('SHELL', '/bin/sh')
#: The session limits for the benchmark's controller (see one_run).
LIMIT = 1000000


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_tcp(port, proc, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit('%s exited %s' % (what, proc.returncode))
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit('%s not listening on %d' % (what, port))


def session_flows(switch):
    out = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-aggregate', switch,
                          'cookie=0x7466030000000000/0xffffff0000000000'],
                         capture_output=True, text=True, timeout=60).stdout
    for word in out.split():
        if word.startswith('flow_count='):
            return int(word.split('=')[1])
    return -1


def one_run(args, threads, conns, logs, index):
    from mininet.clean import cleanup
    from tierflow_mn import LinearTopo, start_net

    redis_port, of_port, api_port = free_port(), free_port(), free_port()
    procs = []
    net = None
    tag = 'run%d-%dx%d' % (index, threads, conns)
    try:
        redis = subprocess.Popen(['redis-server', '--port', str(redis_port), '--bind',
                                  '127.0.0.1', '--save', '', '--appendonly', 'no'],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(redis)
        wait_tcp(redis_port, redis, 'redis-server')
        url = 'redis://127.0.0.1:%d' % redis_port
        subprocess.run([args.bin, 'crm', 'load', str(REPO / 'crm' / 'contact-center.json'),
                        '--redis', url], check=True, stdout=subprocess.DEVNULL)
        log = open(logs / ('bench-sessions-%s-controller.log' % tag), 'wb')
        env = dict(os.environ, RUST_LOG=args.rust_log)
        env.pop('TIERFLOW_API_TOKEN', None)
        # Thousands of sessions from four clients: the per-client and
        # per-port session limits (256 and 8192 by default) would refuse
        # most of them, and refusals are not what this measures.
        config = logs / ('bench-sessions-%s.toml' % tag)
        config.write_text('[limits]\nsessions_per_client = %d\nsessions_per_port = %d\n'
                          % (LIMIT, LIMIT))
        ctl = subprocess.Popen([args.bin, 'run', '--config', str(config),
                                '--openflow', '127.0.0.1:%d' % of_port,
                                '--api', '127.0.0.1:%d' % api_port, '--redis', url],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
        procs.append(ctl)
        wait_tcp(api_port, ctl, 'tierflow run')
        cleanup()
        net = start_net(LinearTopo(k=4, n=4), controller='127.0.0.1:%d' % of_port, wait=20)
        clients = [net.get('h%ds1' % j) for j in range(1, 5)]
        servers = [net.get('h%ds4' % j) for j in range(1, 5)]
        # LLDP finds the links within a few seconds; then every pair once.
        time.sleep(args.settle)
        for c in clients:
            for s in servers:
                out = c.cmd('ping -c1 -W2 %s' % s.IP())
                if ' 0% packet loss' not in out:
                    raise SystemExit('%s cannot reach %s: %s' % (c.IP(), s.IP(), out))
        load = os.getloadavg()
        env = dict(os.environ, BENCH_CLIENTS=','.join(h.IP() for h in clients),
                   BENCH_SERVERS=','.join(h.IP() for h in servers),
                   BENCH_RUN=tag, BENCH_THREADS=str(threads))
        cmd = ['wrk', '-t', str(threads), '-c', str(conns), '-d', '%ds' % args.duration,
               '--timeout', '10s', '-s', str(REPO / 'scripts' / 'post_sessions.lua'),
               'http://127.0.0.1:%d' % api_port]
        if args.wrk_cpu is not None:
            cmd = ['taskset', '-c', args.wrk_cpu] + cmd
        started = datetime.datetime.now().astimezone().isoformat(timespec='seconds')
        r = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           timeout=args.duration + 60)
        (logs / ('bench-sessions-%s-wrk.txt' % tag)).write_text(r.stdout + r.stderr)
        line = [ln for ln in r.stdout.splitlines() if ln.startswith('{')]
        if r.returncode != 0 or not line:
            raise SystemExit('wrk failed (%s): %s %s' % (r.returncode, r.stdout, r.stderr))
        res = json.loads(line[-1])
        time.sleep(1.0)
        res.update({'run': tag, 'threads': threads, 'connections': conns,
                    'started': started, 'loadavg_before': [round(x, 2) for x in load],
                    'loadavg_after': [round(x, 2) for x in os.getloadavg()],
                    'session_flows_s1': session_flows('s1'),
                    'session_flows_s4': session_flows('s4'),
                    'command': ' '.join(cmd)})
        return res
    finally:
        if net is not None:
            net.stop()
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--bin', default=str(REPO / 'target' / 'release' / 'tierflow'))
    ap.add_argument('--runs', default='1x1,2x8,2x32',
                    help='THREADSxCONNECTIONS,... for wrk (default %(default)s)')
    ap.add_argument('--duration', type=int, default=10, help='seconds per run')
    ap.add_argument('--settle', type=float, default=5.0,
                    help='seconds for LLDP after the switches connect')
    ap.add_argument('--rust-log', default='info', help="the controller's RUST_LOG")
    ap.add_argument('--wrk-cpu', default=None, help='taskset CPU list for wrk')
    ap.add_argument('--logs', default='/work/logs', help='where logs go (not /tmp)')
    args = ap.parse_args()
    for tool in ('wrk', 'redis-server', 'ovs-ofctl', 'mn'):
        if shutil.which(tool) is None:
            raise SystemExit('%s not installed (wrk: apt-get install wrk)' % tool)
    from mininet.log import setLogLevel
    setLogLevel('warning')
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    results = []
    for i, spec in enumerate(args.runs.split(','), 1):
        t, c = (int(x) for x in spec.lower().split('x'))
        res = one_run(args, t, c, logs, i)
        print(json.dumps(res), flush=True)
        results.append(res)
    print()
    print('| wrk threads x connections | requests/s | p50 | p90 | p99 | max | 201 answers '
          '| other answers | session flows on s1 / s4 |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in results:
        print('| %d x %d | %.0f | %.2f ms | %.2f ms | %.2f ms | %.1f ms | %d | %d | %d / %d |' % (
            r['threads'], r['connections'], r['requests_per_sec'], r['latency_us_p50'] / 1000,
            r['latency_us_p90'] / 1000, r['latency_us_p99'] / 1000,
            r['latency_us_max'] / 1000, r['created_201'], r['other_answers'],
            r['session_flows_s1'], r['session_flows_s4']))


if __name__ == '__main__':
    main()
