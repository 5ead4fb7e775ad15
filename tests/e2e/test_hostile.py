"""Customers' hosts cannot break the controller (issue 12), end to end: the
real controller, real Open vSwitch in Mininet's contact-center topology,
real Redis with the sample CRM, real sipp.

- A 60 s flood from one customer host (cust2): frames from random source
  MAC addresses, and SIP INVITEs to the contact center's SIP server from
  spoofed source addresses, as fast as a raw socket sends them. Meanwhile a
  gold customer's call on another port (cust1, sipp with RTP both ways)
  keeps its session, its tier and its meters on every switch of its path,
  and its RTP keeps crossing them; the API keeps answering. Afterwards the
  controller's tables are within their limits (`/metrics`) and its memory
  grew by a bounded amount (asserted).
- `kill -9` of the controller while it admits sessions, one session record
  in Redis made unreadable, a restart: the bad record is skipped and
  counted, every other session comes back with its tier override and its
  hold when its traffic does.
"""

import json
import re
import signal
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import figure
from demo_hold import fill_scenario, rtp_pcap
from test_kamailio import Capture
from test_qos import GOLD, PATH_CUST1, load_crm, meters, session_flows, session_line
from tierflow_mn import ContactCenterTopo, mac_of

CALLER, SIP_SERVER, WEB = '10.0.0.1', '10.0.0.100', '10.0.0.101'
SIPP_DIR = Path(__file__).resolve().parent / 'sip'

#: Run in the attacker's namespace: for SECS seconds, alternately a frame
#: from a random (locally administered) source MAC to the web host, and a
#: SIP INVITE to the SIP server from a random spoofed source address
#: (10.200.x.y) with the attacker's own MAC; prints how many it sent.
FLOOD = r'''
import os, random, socket, struct, sys, time
intf, secs, sip_mac, sip_ip, web_mac, web_ip = sys.argv[1:7]
secs = float(secs)
own_mac = bytes.fromhex(open('/sys/class/net/%s/address' % intf).read().strip().replace(':', ''))
dst_sip = bytes.fromhex(sip_mac.replace(':', ''))
dst_web = bytes.fromhex(web_mac.replace(':', ''))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((intf, 0))

def csum(b):
    if len(b) % 2:
        b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff

def ip_udp(src, dst, sport, dport, payload):
    ulen = 8 + len(payload)
    udp = struct.pack('!HHHH', sport, dport, ulen, 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + ulen, 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return ip + udp

def invite(src, n):
    body = ('v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n'
            'm=audio 6000 RTP/AVP 0\r\n' % (src, src))
    return ('INVITE sip:agent@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bK%d\r\n'
            'From: <sip:+1415555%04d@%s>;tag=%d\r\nTo: <sip:agent@%s>\r\n'
            'Call-ID: flood-%d@%s\r\nCSeq: 1 INVITE\r\nContact: <sip:%s:5060>\r\n'
            'Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s'
            % (sip_ip, src, n, n % 10000, src, n, sip_ip, n, src, src, len(body), body)).encode()

sent, n, end = 0, 0, time.monotonic() + secs
while time.monotonic() < end:
    n += 1
    if n % 2:
        mac = bytes([0x02]) + os.urandom(5)
        frame = dst_web + mac + b'\x08\x00' + ip_udp('10.0.0.2', web_ip, 40000, 9, b'x' * 64)
    else:
        src = '10.200.%d.%d' % (random.randrange(256), random.randrange(1, 255))
        frame = dst_sip + own_mac + b'\x08\x00' + ip_udp(src, sip_ip, 5060, 5060, invite(src, n))
    try:
        s.send(frame)
        sent += 1
    except OSError:
        time.sleep(0.001)
print(sent)
'''


def api_get(controller, path):
    with urllib.request.urlopen('http://127.0.0.1:%d/api/v1%s' % (controller.api_port, path),
                                timeout=10) as r:
        return json.loads(r.read() or b'null')


def api_call(controller, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request('http://127.0.0.1:%d/api/v1%s' % (controller.api_port, path),
                                 data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b'null')


def metrics(controller):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % controller.api_port,
                                timeout=10) as r:
        return r.read().decode()


def metric(text, name, labels=''):
    m = re.search(r'^%s%s (\S+)$' % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def rss_kib(pid):
    for line in Path('/proc/%d/status' % pid).read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
    raise AssertionError('no VmRSS for %d' % pid)


def guard_drops(switches):
    """Packets the switches' per-port guard meters (ids 0x70000000 + port)
    dropped on their way to the controller."""
    total = 0
    for sw in switches:
        out = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'meter-stats', sw],
                             capture_output=True, text=True, check=True).stdout
        for meter in re.split(r'(?=meter:)', out):
            m = re.match(r'meter:(\d+)', meter)
            if m and int(m.group(1)) >= 0x70000000:
                total += sum(int(n) for n in re.findall(r'\d+: packet_count:(\d+)', meter))
    return total


def rtp_capture(host, src, path):
    """tcpdump on `host` of the RTP packets from `src` (the call's media,
    not its SIP), into a pcap file."""
    return Capture(path, str(host.defaultIntf()), 'udp and src host %s and not port 5060' % src,
                   host=host)


def rtp_windows(packets, start, end, secs=2.0):
    """How many of the RTP packets sent in each `secs` window of
    [start, end) arrived, whenever they arrived. A packet's send time comes
    from its sequence number (one per 20 ms, counted from the first packet
    captured, before the flood), so a switch that delays packets without
    losing them is not counted as losing them; the delays are measured
    apart (the largest gap between arrivals)."""
    rtp = [(t, struct.unpack('!H', p[2:4])[0]) for t, *_, p in packets if len(p) >= 12]
    if not rtp:
        return [], None
    t0, seq0 = rtp[0]
    sent_at = {}
    for t, seq in rtp:
        sent_at.setdefault(seq, t0 + ((seq - seq0) & 0xffff) * 0.020)
    windows = [0] * int((end - start) // secs)
    for at in sent_at.values():
        i = int((at - start) // secs)
        if 0 <= i < len(windows):
            windows[i] += 1
    arrivals = [t for t, _ in rtp if start <= t < end]
    gap = max((b - a for a, b in zip(arrivals, arrivals[1:])), default=None)
    return windows, gap


def rtp_packets(switch, src, dst):
    return sum(int(m) for f in session_flows(switch, src, dst)
               for m in re.findall(r'n_packets=(\d+)', f))


@pytest.fixture
def cc_net(tierflow_bin, redis, controller_factory, mn_net_factory):
    def make(*extra):
        load_crm(tierflow_bin, redis)
        c = controller_factory('--crm-mode', 'replica', *extra)
        c.start()
        net = mn_net_factory(c)(ContactCenterTopo(customers=2, agents=1))
        return c, net
    return make


def test_a_60s_flood_from_one_host_leaves_a_gold_call_and_the_tables_alone(cc_net, tmp_path):
    controller, net = cc_net()
    cust1, cust2, sip = net.get('cust1', 'cust2', 'sip')
    # The gold call: RTP both ways (the server echoes) for longer than the
    # flood.
    pcap = rtp_pcap(Path(tmp_path) / 'rtp.pcap', 80)
    uac_xml = fill_scenario('uac_hold.xml', tmp_path, PCAP=pcap, TALK_MS=85000, HOLD_MS=1000)
    net.serve(sip, ['sipp', '-sf', str(SIPP_DIR / 'uas_hold.xml'), '-i', SIP_SERVER,
                    '-mi', SIP_SERVER, '-p', '5060', '-rtp_echo', '-m', '1', '-nostdin'])
    time.sleep(1)
    uac = cust1.popen(['sipp', SIP_SERVER + ':5060', '-sf', str(uac_xml), '-i', CALLER,
                       '-mi', CALLER, '-p', '5061', '-m', '1', '-l', '1', '-timeout', '120',
                       '-nostdin'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dumps = []
    try:
        line = session_line(controller, CALLER, SIP_SERVER)
        assert 'tier gold' in line, line
        sid = re.search(r'session (s-[0-9a-f]+)', line).group(1)
        time.sleep(2)
        rss_before = rss_kib(controller.proc.pid)
        # Each end captures the RTP that reaches it: the switches' flow
        # counters are only brought up to date by OVS's revalidators, which
        # a flood slows (core1's count lagged its neighbours' by 30 packets
        # over 2 s in one run), so they cannot time a window.
        dumps = [rtp_capture(host, src, Path(tmp_path) / ('rtp-at-%s.pcap' % host.name))
                 for host, src in ((sip, CALLER), (cust1, SIP_SERVER))]
        counted0 = {sw: rtp_packets(sw, CALLER, SIP_SERVER) for sw in PATH_CUST1}
        t_flood = time.time()
        flood = cust2.popen(['/usr/bin/python3', '-c', FLOOD, str(cust2.defaultIntf()), '60',
                             mac_of(SIP_SERVER), SIP_SERVER, mac_of(WEB), WEB],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        checks = []
        t0 = time.monotonic()
        while flood.poll() is None and time.monotonic() - t0 < 75:
            time.sleep(2.0)
            t_api = time.monotonic()
            s = api_get(controller, '/sessions/' + sid)
            api_ms = (time.monotonic() - t_api) * 1000
            rates = {sw: sorted(set(meters(sw).values()) & {GOLD}) for sw in PATH_CUST1}
            checks.append((round(time.monotonic() - t0, 1), s['state'], s['tier'],
                           round(api_ms)))
            assert s['state'] == 'active' and s['tier'] == 'gold', s
            assert all(r == [GOLD] for r in rates.values()), rates
        t_end = time.time()
        counted = {sw: rtp_packets(sw, CALLER, SIP_SERVER) - counted0[sw] for sw in PATH_CUST1}
        out, err = flood.communicate(timeout=30)
        assert flood.returncode == 0, err[-800:]
        sent = int(out.strip() or 0)
        text = metrics(controller)
        rss_after = rss_kib(controller.proc.pid)
        at = {h.name: d.stop() for h, d in zip((sip, cust1), dumps)}
    finally:
        for d in dumps:
            d.stop()
        if uac.poll() is None:
            uac.kill()
            uac.wait()
    # G.711 at 50 packets a second each way: at least 80 % of those sent
    # in every 2 s of the flood arrived, at both ends; every switch of the
    # path counted at least 80 % of the caller's over the whole flood.
    windows, gaps = {}, {}
    for host, packets in at.items():
        windows[host], gaps[host] = rtp_windows(packets, t_flood, t_end)
    worst = min((min(w) for w in windows.values() if w), default=0)
    hosts = metric(text, 'tierflow_table_entries', '{table="hosts"}')
    sessions = metric(text, 'tierflow_table_entries', '{table="sessions"}')
    paths = metric(text, 'tierflow_table_entries', '{table="paths"}')
    per_port = metric(text, 'tierflow_limit', '{name="hosts_per_port"}')
    per_port_sessions = metric(text, 'tierflow_limit', '{name="sessions_per_port"}')
    admissions = metric(text, 'tierflow_limit', '{name="admissions_per_port"}')
    # Refused on the switch by the port's guard meter, or by the
    # controller's own per-port count.
    on_switch = guard_drops([sw.name for sw in net.switches])
    limited = on_switch + (metric(text, 'tierflow_packet_ins_dropped_total') or 0)
    figure('  hostile: 60 s flood from cust2, %d frames (random MACs, spoofed INVITEs): gold call '
           'kept its tier and meters (%d checks, API <= %d ms), its RTP >= %d of 100 per 2 s at '
           'both ends (%d windows; longest gap %.2f s), switches counted >= %d; tables: '
           'hosts %d (limit %d per port), sessions %d (limit %d per port), paths %d; packet-ins '
           'refused by the per-port limits %d (%d by the switches guard meters); controller RSS %d -> %d KiB'
           % (sent, len(checks), max(c[3] for c in checks), worst, len(windows['sip']),
              max(g or 0 for g in gaps.values()), min(counted.values()),
              hosts, per_port, sessions, per_port_sessions, paths, limited, on_switch, rss_before,
              rss_after))
    assert sent >= 60 * 2000, sent
    assert all(len(w) >= 25 for w in windows.values()) and worst >= 80, windows
    # Delayed, never stopped: no second without media at either end.
    assert all(g is not None and g < 1.0 for g in gaps.values()), gaps
    assert min(counted.values()) >= 0.8 * 50 * (t_end - t_flood), (counted, t_end - t_flood)
    # The checks cover the whole flood (each takes 2 s and what the busy
    # switches take to answer ovs-ofctl).
    assert len(checks) >= 10 and checks[0][0] <= 8 and checks[-1][0] >= 55, checks
    # The attacker's port holds at most its limit of hosts; every other
    # port holds a handful.
    assert hosts <= per_port + 20, hosts
    assert sessions <= per_port_sessions + 10, sessions
    # New sessions come at the port's rate at most (twice as many at once):
    # the spoofed INVITEs cannot keep the switches busy installing them.
    assert 0 < admissions and sessions <= admissions * (len(checks) * 2 + 20) + 10, (
        sessions, admissions)
    assert limited > 0, 'the flood was never rate-limited: %s' % text[-2000:]
    # Bounded tables, bounded memory: 64 MiB at the most for all of it.
    assert rss_after - rss_before <= 64 * 1024, (rss_before, rss_after)


def udp_session(controller, client, server, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        for x in api_get(controller, '/sessions?limit=1000')['items']:
            if (x['client_ip'], x['server_ip'], x['service']) == (client, server, 'iperf-udp'):
                return x['id']
        if time.monotonic() > deadline:
            raise AssertionError('no iperf-udp session %s -> %s:\n%s'
                                 % (client, server, controller.tail()))
        time.sleep(0.2)


def corrupt_one_session(redis, sid):
    subprocess.run(['redis-cli', '-p', str(redis.port), 'SET', 'tf:session:%s' % sid,
                    '{"id": "%s", "state": ' % sid], check=True, capture_output=True)


def test_kill_9_during_admissions_and_a_corrupt_record_every_other_session_comes_back(
        cc_net, redis):
    controller, net = cc_net()
    cust1, cust2, web, sip = net.get('cust1', 'cust2', 'web', 'sip')
    # The sample CRM's iperf-udp service: UDP 5201 on 10.0.0.96/28.
    net.serve(web, ['iperf3', '-s', '-p', '5201'])
    net.serve(sip, ['iperf3', '-s', '-p', '5201'])
    time.sleep(0.5)
    # Two long sessions: cust1 (gold) overridden to bronze, cust2 (bronze)
    # held by CTI.
    long1 = cust1.popen(['iperf3', '-c', WEB, '-p', '5201', '-t', '60', '-u', '-b', '2M'],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    long2 = cust2.popen(['iperf3', '-c', SIP_SERVER, '-p', '5201', '-t', '60', '-u', '-b',
                         '2M'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The UDP streams' sessions (iperf3's TCP control connection is a
        # session of the iperf service too, mostly idle).
        s1 = udp_session(controller, '10.0.0.1', WEB)
        s2 = udp_session(controller, '10.0.0.2', SIP_SERVER)
        api_call(controller, 'PUT', '/sessions/%s/tier' % s1, {'tier': 'bronze'})
        api_call(controller, 'PUT', '/sessions/%s/state' % s2, {'state': 'hold'})
        # A third one whose record will be unreadable.
        victim = api_call(controller, 'POST', '/sessions', {
            'external_id': 'victim-1', 'proto': 'udp',
            'client': {'ip': '10.0.0.1', 'port': 41000},
            'server': {'ip': WEB, 'port': 42000}, 'kind': 'other'})['id']
        time.sleep(1.5)  # the writer's round: every record in Redis
        # Admissions in flight: requested sessions, one after another,
        # then kill -9 in the middle of them.
        stop = time.monotonic() + 1.0
        n = 0
        while time.monotonic() < stop:
            n += 1
            try:
                api_call(controller, 'POST', '/sessions', {
                    'external_id': 'burst-%d' % n, 'proto': 'udp',
                    'client': {'ip': '10.0.0.2', 'port': 30000 + n},
                    'server': {'ip': WEB, 'port': 31000 + n}})
            except OSError:
                break
        controller.proc.send_signal(signal.SIGKILL)
        controller.proc.wait()
        controller.proc = None
        corrupt_one_session(redis, victim)
        controller.start()
        # Every other session back, with its override and its hold, once
        # its traffic (still running) is seen again.
        deadline = time.monotonic() + 20
        got1 = got2 = None
        while time.monotonic() < deadline:
            try:
                got1 = api_get(controller, '/sessions/' + s1)
                got2 = api_get(controller, '/sessions/' + s2)
            except OSError:
                pass
            if got1 and got2 and got1.get('path') and got2.get('path'):
                break
            time.sleep(0.25)
        assert got1 and got1['tier'] == 'bronze' and got1['override_tier'] == 'bronze', got1
        assert got2 and got2['state'] == 'hold' and got2['state_reason'] == 'cti', got2
        assert got1['path'] and got2['path'], (got1, got2)
        # On the switches: the held session's meters at bronze's hold rate.
        tiers = {t['name']: t for t in api_get(controller, '/tiers')}
        assert got2['meters']['to_server']['rate_kbps'] == tiers['bronze']['hold_rate_kbps']
        text = metrics(controller)
        skipped = metric(text, 'tierflow_sessions_unreadable_total') or 0
    finally:
        for p in (long1, long2):
            p.terminate()
            p.wait()
    figure('  hostile: kill -9 after %d requested admissions, one corrupt record: %s back '
           'overridden to bronze, %s back on hold, %d unreadable record(s) skipped'
           % (n, s1, s2, skipped))
    assert skipped >= 1, 'the corrupt record was not counted'
