"""The demo's held call (issues 6 and 10): a real SIP call (sipp) from a
gold customer to the contact center's SIP server, with RTP both ways, that
the contact center puts on hold with a re-INVITE (a=sendonly: it keeps
sending, music on hold) and resumes (a=sendrecv). Bandwidth through the
call's tier flows is measured before, during and after the hold with
iperf3 from the caller to the server (the call's flows match the caller
and server addresses, so this traffic crosses the call's meters, in the
direction the hold slows); the meters on every switch of the call's path
are read back, and the music's packets counted where the caller gets them.

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
    """Mbit/s `client` sends to server_ip:port, as iperf3 reports it (its
    sender's figure, as PRODUCT.md measures tiers; TCP)."""
    out = client.cmd(['iperf3', '-c', server_ip, '-p', str(port), '-t', str(secs), '-J'])
    try:
        return json.loads(out)['end']['sum_sent']['bits_per_second'] / 1e6
    except (ValueError, KeyError):
        return float('nan')


def rtp_rate(path, src, start, end):
    """RTP packets a second from `src` in a `tcpdump -tt -n` text file,
    between the epoch times start and end."""
    n = 0
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        try:
            t = float(parts[0])
        except (IndexError, ValueError):
            continue
        if len(parts) > 2 and parts[2].startswith(src + '.') and start <= t < end:
            n += 1
    return n / max(end - start, 1e-9)


def held_call(net, api='http://127.0.0.1:8080', token=None, caller='cust1', server='sip',
              iperf_port=5202, measure_secs=5):
    """Runs the held-and-resumed call on `net` (a started ContactCenterTopo
    against the controller whose REST API is `api`, `http://host:port` or
    `host:port`; `token` defaults to $TIERFLOW_API_TOKEN): the contact
    center's side (sipp) holds the caller with a=sendonly and plays music
    on hold, then resumes. Prints the bandwidth and the meters before,
    during and after the hold, and the music's packet rate at the caller.
    Returns (session id, [Mbit/s active, hold, resumed], music packets/s
    during the hold)."""
    token = token or os.environ.get('TIERFLOW_API_TOKEN')
    if '://' not in api:
        api = 'http://' + api
    cl, sv = net.get(caller, server)
    work = Path(tempfile.mkdtemp(prefix='tierflow-hold-'))
    phase_ms = (measure_secs + 4) * 1000
    call_secs = 3 * phase_ms / 1000 + 5
    uac_xml = fill_scenario('uac_moh.xml', work,
                            PCAP=rtp_pcap(work / 'voice.pcap', call_secs, src=cl.IP(),
                                          dst=sv.IP()),
                            AFTER_MS=phase_ms)
    uas_dir = work / 'uas'
    uas_dir.mkdir()
    uas_xml = fill_scenario('uas_moh.xml', uas_dir,
                            PCAP=rtp_pcap(work / 'music.pcap', call_secs, src=sv.IP(),
                                          dst=cl.IP()),
                            TALK_MS=phase_ms, HOLD_MS=phase_ms)
    heard = work / 'at-caller.txt'
    procs = []
    try:
        procs.append(sv.popen(['iperf3', '-s', '-p', str(iperf_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with open(heard, 'w') as out:
            procs.append(cl.popen(['tcpdump', '-tt', '-n', '-l', '-i', str(cl.defaultIntf()),
                                   'udp and src %s and dst port 6000' % sv.IP()],
                                  stdout=out, stderr=subprocess.DEVNULL))
        procs.append(sv.popen(['sipp', '-sf', str(uas_xml), '-i', sv.IP(), '-mi', sv.IP(),
                               '-p', '5060', '-m', '1', '-nostdin'],
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
        phases, held_at = [], None
        for label, state in (('active', 'active'), ('hold', 'hold'), ('resumed', 'active')):
            if label == 'resumed':
                # The hold is over when the resume re-INVITE lands.
                deadline = time.monotonic() + phase_ms / 1000 + 10
                while time.monotonic() < deadline:
                    s = _api(api, 'GET', '/sessions/' + sid, token)
                    if s['state'] == 'active':
                        break
                    time.sleep(0.1)
            else:
                s = _wait_state(api, sid, state, token)
            time.sleep(0.3)
            if label == 'hold':
                held_at = time.time()
            rates = _meter_rates(net, s)
            # The caller sends: on hold, its direction is the held one.
            mbps = _iperf(cl, sv.IP(), iperf_port, measure_secs)
            phases.append(mbps)
            m = s.get('meters') or {}
            print('    %-8s %8.2f Mbit/s  state %-6s (%s)  meters (kbit/s, bucket kbit): '
                  'to server %s/%s, to caller %s/%s; on the switches: %s'
                  % (label, mbps, s['state'], s['state_reason'] or 'admitted',
                     m.get('to_server', {}).get('rate_kbps'),
                     m.get('to_server', {}).get('bucket_kbits'),
                     m.get('to_client', {}).get('rate_kbps'),
                     m.get('to_client', {}).get('bucket_kbits'),
                     '  '.join('%s %s' % (n, '/'.join(map(str, r))) for n, r in rates.items())))
            if label == 'hold':
                held_until = time.time()
        music = rtp_rate(heard, sv.IP(), held_at, held_until) if held_at else 0.0
        print('  call %s: active %.1f Mbit/s -> hold %.2f Mbit/s -> resumed %.1f Mbit/s; '
              'music on hold reached the caller at %.0f packets/s (G.711 at 20 ms: 50)'
              % (sid, phases[0], phases[1], phases[2], music))
        rc = uac.wait(timeout=60)
        if rc != 0:
            print('  (sipp caller exited %s: %s)' % (rc, uac.stderr.read()[-300:]))
        return sid, phases, music
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
