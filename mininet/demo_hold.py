"""The demo's held call (issue 6): a real SIP call (sipp) from a gold
customer to the contact center's SIP server, with RTP, that the caller's
phone puts on hold with a re-INVITE (a=sendonly) and resumes (a=sendrecv).
Bandwidth through the call's tier flows is measured before, during and
after the hold with iperf3 between the same two hosts (the call's flows
match the caller and server addresses, so this traffic crosses the call's
meters), and the meters on every switch of the call's path are read back.

Also holds `rtp_pcap`, the G.711 RTP capture sipp plays (Debian ships
none), shared with tests/e2e/test_hold.py.

Call from a demo script with a started contact-center network:
    from demo_hold import held_call
    held_call(net, api='127.0.0.1:8080')
"""

import json
import os
import re
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIPP_DIR = REPO / 'tests' / 'e2e' / 'sip'


def rtp_pcap(path, secs, src='10.0.0.1', dst='10.0.0.100', port=6000):
    """Writes a pcap of `secs` seconds of G.711 RTP (20 ms packets of 160
    bytes, PCMU silence) from src:port to dst:port: what sipp's
    play_pcap_audio sends (it rewrites addresses and ports to the call's)."""
    def csum(b):
        if len(b) % 2:
            b += b'\0'
        s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        return ~s & 0xffff

    out = [struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)]
    saddr = bytes(int(x) for x in src.split('.'))
    daddr = bytes(int(x) for x in dst.split('.'))
    for i in range(int(secs * 50)):
        rtp = struct.pack('!BBHII', 0x80, 0, i & 0xffff, (i * 160) & 0xffffffff,
                          0x7466) + b'\xff' * 160
        ulen = 8 + len(rtp)
        pseudo = saddr + daddr + struct.pack('!BBH', 0, 17, ulen)
        udp = struct.pack('!HHHH', port, port, ulen, 0) + rtp
        udp = udp[:6] + struct.pack('!H', csum(pseudo + udp) or 0xffff) + udp[8:]
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + ulen, i & 0xffff, 0, 64, 17, 0,
                         saddr, daddr)
        ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
        frame = b'\x02\x00\x00\x00\x00\x02' + b'\x02\x00\x00\x00\x00\x01' + b'\x08\x00' + ip + udp
        t = i * 0.02
        out.append(struct.pack('<IIII', int(t), int(round((t % 1) * 1e6)), len(frame),
                               len(frame)))
        out.append(frame)
    Path(path).write_bytes(b''.join(out))
    return path


def fill_scenario(name, out_dir, **subs):
    """A copy of tests/e2e/sip/<name> in out_dir with its @KEY@ filled."""
    text = (SIPP_DIR / name).read_text()
    for k, v in subs.items():
        text = text.replace('@%s@' % k, str(v))
    left = re.search(r'@[A-Z_]+@', text)
    if left:
        raise ValueError('placeholder %s of %s not filled' % (left.group(0), name))
    out = Path(out_dir) / name
    out.write_text(text)
    return out


def _api(api, method, path, token=None):
    headers = {'Content-Type': 'application/json'}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    req = urllib.request.Request(api.rstrip('/') + '/api/v1' + path, method=method,
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b'null')


def _call_session(api, caller, server, token, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = _api(api, 'GET', '/sessions?state=active&limit=1000', token)
        items = page['items'] if isinstance(page, dict) else page
        for s in items:
            if (s['client_ip'], s['server_ip']) == (caller, server) and s['service'] == 'sip':
                return s
        time.sleep(0.2)
    raise RuntimeError('no SIP session %s -> %s within %ss' % (caller, server, timeout))


def _wait_state(api, sid, state, token, timeout=20.0):
    deadline = time.monotonic() + timeout
    s = None
    while time.monotonic() < deadline:
        s = _api(api, 'GET', '/sessions/' + sid, token)
        if s['state'] == state:
            return s
        time.sleep(0.1)
    raise RuntimeError('session %s not %s within %ss: %s' % (sid, state, timeout, s))


def _meter_rates(net, session):
    """{switch name: sorted rates of the meters the session's flows use}."""
    names = {int(sw.dpid, 16): sw.name for sw in net.switches}
    out = {}
    for dpid in session['path']:
        name = names.get(int(dpid, 16), dpid)
        flows = ''.join(subprocess.run(
            ['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', name,
             'ip,nw_src=%s,nw_dst=%s' % pair],
            capture_output=True, text=True).stdout
            for pair in ((session['client_ip'], session['server_ip']),
                         (session['server_ip'], session['client_ip'])))
        ids = {int(m) for m in re.findall(r'cookie=0x746603.*?meter:(\d+)', flows)}
        meters = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-meters', name],
                                capture_output=True, text=True).stdout
        rates = {int(m): int(r) for m, r in
                 re.findall(r'meter=(\d+) .*?rate=(\d+)', meters, re.S)}
        out[name] = sorted(rates.get(i, 0) for i in ids)
    return out


def _iperf(client, server_ip, port, secs):
    """Mbit/s received by `client` from server_ip:port (iperf3 -R, TCP)."""
    out = client.cmd(['iperf3', '-c', server_ip, '-p', str(port), '-R', '-t', str(secs),
                      '-J'])
    try:
        return json.loads(out)['end']['sum_received']['bits_per_second'] / 1e6
    except (ValueError, KeyError):
        return float('nan')


def held_call(net, api='http://127.0.0.1:8080', token=None, caller='cust1', server='sip',
              iperf_port=5202, measure_secs=3):
    """Runs the held-and-resumed call on `net` (a started ContactCenterTopo
    against the controller whose REST API is `api`, `http://host:port` or
    `host:port`; `token` defaults to $TIERFLOW_API_TOKEN) and prints bandwidth
    and meters before, during and after the hold. Returns
    (session id, [Mbit/s active, hold, resumed])."""
    token = token or os.environ.get('TIERFLOW_API_TOKEN')
    if '://' not in api:
        api = 'http://' + api
    cl, sv = net.get(caller, server)
    work = Path(tempfile.mkdtemp(prefix='tierflow-hold-'))
    talk_ms = (measure_secs + 4) * 1000
    pcap = rtp_pcap(work / 'rtp.pcap', talk_ms / 1000 - 0.5, src=cl.IP(), dst=sv.IP())
    uac_xml = fill_scenario('uac_hold.xml', work, PCAP=pcap, TALK_MS=talk_ms,
                            HOLD_MS=talk_ms)
    procs = []
    try:
        procs.append(sv.popen(['iperf3', '-s', '-p', str(iperf_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(sv.popen(['sipp', '-sf', str(SIPP_DIR / 'uas_hold.xml'), '-i', sv.IP(),
                               '-mi', sv.IP(), '-p', '5060', '-rtp_echo', '-m', '1',
                               '-nostdin'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)
        uac = cl.popen(['sipp', '%s:5060' % sv.IP(), '-sf', str(uac_xml), '-i', cl.IP(),
                        '-mi', cl.IP(), '-p', '5061', '-m', '1', '-l', '1', '-timeout', '90',
                        '-timeout_error', '-nostdin'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(uac)
        s = _call_session(api, cl.IP(), sv.IP(), token)
        sid = s['id']
        print('  call %s: %s -> %s, tier %s (%s), path %s'
              % (sid, cl.IP(), sv.IP(), s['tier'], s['explanation']['reason'],
                 ' '.join(s['path'])))
        phases = []
        for label, state in (('active', 'active'), ('hold', 'hold'), ('resumed', 'active')):
            if label == 'resumed':
                # The hold is over when the resume re-INVITE lands.
                deadline = time.monotonic() + talk_ms / 1000 + 10
                while time.monotonic() < deadline:
                    s = _api(api, 'GET', '/sessions/' + sid, token)
                    if s['state'] == 'active':
                        break
                    time.sleep(0.1)
            else:
                s = _wait_state(api, sid, state, token)
            time.sleep(0.3)
            rates = _meter_rates(net, s)
            mbps = _iperf(cl, sv.IP(), iperf_port, measure_secs)
            phases.append(mbps)
            print('    %-8s %8.2f Mbit/s  state %-6s (%s)  meters (kbit/s): %s'
                  % (label, mbps, s['state'], s['state_reason'] or 'admitted',
                     '  '.join('%s %s' % (n, '/'.join(map(str, r))) for n, r in rates.items())))
        print('  call %s: active %.1f Mbit/s -> hold %.2f Mbit/s -> resumed %.1f Mbit/s'
              % (sid, phases[0], phases[1], phases[2]))
        rc = uac.wait(timeout=60)
        if rc != 0:
            print('  (sipp caller exited %s: %s)' % (rc, uac.stderr.read()[-300:]))
        return sid, phases
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
