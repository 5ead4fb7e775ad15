"""Calls on hold get less bandwidth (issue 6), end to end: real sipp
(Debian's sip-tester) calls through Tierflow, real Open vSwitch in
Mininet's contact-center topology, real Redis with the sample CRM.

Checks: a call's RTP (played from a pcap generated here, echoed back by
the server's sipp) crosses every switch of the path on the caller's tier
flows; a re-INVITE with a=sendonly puts the call on hold (the meters on
every switch of the path show the tier's hold rate) and one with
a=sendrecv resumes it (the tier's rate again); the CTI endpoint on a
running iperf3 session brings its measured throughput down to about the
hold rate within two seconds and back after resume; a call whose RTP
stops is put on hold by idle-media detection and resumed when it starts
again.
"""

import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import figure
from demo_hold import fill_scenario, held_call, rtp_pcap
from test_qos import GOLD, PATH_CUST1, load_crm, meters, session_flows, session_line
from tierflow_mn import ContactCenterTopo

SIPP_DIR = Path(__file__).resolve().parent / 'sip'
#: gold's hold_rate_kbps in crm/contact-center.json.
GOLD_HOLD = 64
#: What a G.711 call at 20 ms needs on the wire per direction (kbit/s,
#: rounded up), the rate the sending side of a sendonly hold keeps.
G711_WIRE = 88
#: The CTI test's offered load: within gold's 50 Mbit/s and what the
#: userspace datapath of a debug run carries steadily.
UDP_MBPS = 20
CALLER, SERVER = '10.0.0.1', '10.0.0.100'
#: Idle-media settings of the test controller: quick, so a test waits
#: seconds, not the production default's ten.
HOLD_TOML = """
[hold]
idle_media = true
idle_poll_ms = 250
idle_below_kbps = 8
idle_after_ms = 2000
"""


def scenario(tmp_path, name, **subs):
    """A copy of tests/e2e/sip/<name> with its @KEY@ placeholders filled."""
    return fill_scenario(name, tmp_path, **subs)


class Api:
    """The test controller's REST API (no token configured)."""

    def __init__(self, controller):
        self.base = 'http://127.0.0.1:%d/api/v1' % controller.api_port

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b'null')

    def session(self, sid):
        return self.call('GET', '/sessions/' + sid)

    def wait_state(self, sid, state, timeout=15.0):
        deadline = time.monotonic() + timeout
        s = None
        while time.monotonic() < deadline:
            s = self.session(sid)
            if s['state'] == state:
                return s
            time.sleep(0.1)
        raise AssertionError('session %s not %s within %ss: %s' % (sid, state, timeout, s))


def sid_of(line):
    return re.search(r'session (s-[0-9a-f]+)', line).group(1)


def flow_meters(switch, src, dst):
    """The meter ids of the session flows src -> dst on switch."""
    return [int(m) for f in session_flows(switch, src, dst)
            for m in re.findall(r'meter:(\d+)', f)]


def path_meter_rates(client, server, path):
    """{switch: [rate of each of the session's meters]} along path."""
    out = {}
    for sw in path:
        rates = meters(sw)
        ids = flow_meters(sw, client, server) + flow_meters(sw, server, client)
        out[sw] = [rates.get(i) for i in ids]
    return out


def wait_path_meters(want, secs=3.0):
    """The call's meters along PATH_CUST1, read until every switch shows
    `want` kb/s (one rate for both meters, or [caller to server, server to
    caller]) or `secs` pass; asserts they do."""
    want = want if isinstance(want, list) else [want, want]
    deadline, rates = time.monotonic() + secs, {}
    while time.monotonic() < deadline:
        rates = path_meter_rates(CALLER, SERVER, PATH_CUST1)
        if all(r == want for r in rates.values()):
            break
        time.sleep(0.1)
    for sw, r in rates.items():
        assert r == want, (sw, rates)
    return rates


def n_packets(switch, src, dst):
    return sum(int(m) for f in session_flows(switch, src, dst)
               for m in re.findall(r'n_packets=(\d+)', f))


@pytest.fixture
def hold_net(tierflow_bin, redis, controller_factory, mn_net_factory, tmp_path):
    """Sample CRM, a controller with quick idle-media settings, the
    contact-center network; returns (controller, net, api)."""
    def make():
        assert shutil.which('sipp'), 'sipp not installed (scripts/setup.sh installs sip-tester)'
        load_crm(tierflow_bin, redis)
        cfg = Path(tmp_path) / 'tierflow.toml'
        cfg.write_text(HOLD_TOML)
        c = controller_factory('--config', str(cfg), '--crm-mode', 'replica')
        c.start()
        net = mn_net_factory(c)(ContactCenterTopo(customers=2, agents=1))
        return c, net, Api(c)
    return make


def start_call(net, uac_xml):
    """sipp uas (RTP echo) on the sip host, sipp uac running uac_xml on
    cust1; returns (uas, uac) Popens."""
    sip, cust1 = net.get('sip'), net.get('cust1')
    # Lists, not shell=True: Mininet's shell form needs $SHELL, which CI's
    # environment does not set.
    uas = sip.popen(['sipp', '-sf', str(SIPP_DIR / 'uas_hold.xml'), '-i', SERVER,
                     '-mi', SERVER, '-p', '5060', '-rtp_echo', '-m', '1', '-nostdin'],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    uac = cust1.popen(['sipp', SERVER + ':5060', '-sf', str(uac_xml), '-i', CALLER,
                       '-mi', CALLER, '-p', '5061', '-m', '1', '-l', '1',
                       '-timeout', '60', '-timeout_error'],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return uas, uac


def end_call(net, uas, uac, controller, timeout=60):
    try:
        rc = uac.wait(timeout=timeout)
    finally:
        # Only the processes this test started (other tests may run sipp).
        for p in (uac, uas):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert rc == 0, 'the call did not complete through Tierflow (sipp rc %s): %s\n%s' % (
        rc, uac.stderr.read()[-1000:], controller.tail())


def test_sip_call_media_on_tier_then_reinvite_hold_and_resume(hold_net, tmp_path):
    controller, net, api = hold_net()
    # TALK_MS leaves room for the checks below on a slow machine: the
    # re-INVITE hold comes when it ends, whether they are done or not.
    pcap = rtp_pcap(Path(tmp_path) / 'rtp.pcap', 6.5)
    uac_xml = scenario(tmp_path, 'uac_hold.xml', PCAP=pcap, TALK_MS=7000, HOLD_MS=5000)
    uas, uac = start_call(net, uac_xml)
    try:
        line = session_line(controller, CALLER, SERVER)
        assert 'tier gold' in line, line
        sid = sid_of(line)
        # (a) The media crosses every switch of the path on the call's tier
        # flows, both ways (the server echoes the RTP): the flows' packet
        # counters grow while the pcap plays. RTP runs between the same two
        # addresses as the signalling, so the call's IP-pair flows are the
        # media flows.
        active_rates = path_meter_rates(CALLER, SERVER, PATH_CUST1)
        for sw, rates in active_rates.items():
            assert rates == [GOLD, GOLD], (sw, active_rates)
        time.sleep(1.0)
        before = {sw: (n_packets(sw, CALLER, SERVER), n_packets(sw, SERVER, CALLER))
                  for sw in PATH_CUST1}
        time.sleep(1.0)
        after = {sw: (n_packets(sw, CALLER, SERVER), n_packets(sw, SERVER, CALLER))
                 for sw in PATH_CUST1}
        grew = {sw: (after[sw][0] - before[sw][0], after[sw][1] - before[sw][1])
                for sw in PATH_CUST1}
        for sw, (fwd, rev) in grew.items():
            assert fwd >= 30 and rev >= 30, ('RTP not on the tier flows', sw, grew)
            fwd_flow = session_flows(sw, CALLER, SERVER)[0]
            assert 'priority=30000' in fwd_flow and 'set_queue:1' in fwd_flow, fwd_flow
        assert 'set_field:46->ip_dscp' in session_flows(PATH_CUST1[0], CALLER, SERVER)[0]
        figure('  hold: RTP packets on the tier flows in a ~1 s sample, caller->server/echo: %s'
               % ', '.join('%s %d/%d' % (sw, f, r) for sw, (f, r) in grew.items()))

        # (b) The re-INVITE with a=sendonly: hold, on every switch.
        s = api.wait_state(sid, 'hold', timeout=10)
        assert s['state_reason'] == 'sip re-INVITE sendonly', s
        assert s['explanation']['reason'] == 'hold', s
        # The caller held with a=sendonly: its side may still send (music
        # on hold) at what its G.711 needs on the wire; the server's side
        # is at the hold rate.
        wait_path_meters([G711_WIRE, GOLD_HOLD])
        # The same flows (modified in place, never removed).
        assert {sw: len(session_flows(sw, CALLER, SERVER)) for sw in PATH_CUST1} == \
            {sw: 1 for sw in PATH_CUST1}

        # a=sendrecv: resumed, the tier's rate again.
        s = api.wait_state(sid, 'active', timeout=10)
        assert s['state_reason'] == 'sip re-INVITE sendrecv', s
        assert s['explanation']['reason'] == 'automatic', s
        wait_path_meters(GOLD)
        figure('  hold: SIP call %s meters on %s: %d kb/s -> hold %d/%d kb/s (caller to server,'
               ' its music on hold / server to caller) -> resumed %d kb/s'
               ' (re-INVITE sendonly/sendrecv)'
               % (sid, '+'.join(PATH_CUST1), GOLD, G711_WIRE, GOLD_HOLD, GOLD))
    finally:
        end_call(net, uas, uac, controller)
    # BYE ended the call: its flows and meters left every switch.
    controller.wait_log('session %s ended: SIP BYE' % sid)
    for sw in PATH_CUST1:
        assert not session_flows(sw, CALLER, SERVER), sw
    metrics = urllib.request.urlopen(
        'http://127.0.0.1:%d/metrics' % controller.api_port, timeout=10).read().decode()
    assert 'tierflow_hold_transitions_total{cause="sip",to="hold"} 1' in metrics
    assert 'tierflow_hold_transitions_total{cause="sip",to="active"} 1' in metrics


def iperf_intervals(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    try:
        j = json.loads(out)
        return [(i['sum']['start'], i['sum']['end'], i['sum']['bits_per_second'] / 1e6)
                for i in j['intervals']]
    except (ValueError, KeyError) as e:
        raise AssertionError('iperf3 gave no result (%s): %s %s' % (e, out[-500:], err[-500:]))


def mean(xs):
    xs = list(xs)
    assert xs, 'no intervals in that window'
    return sum(xs) / len(xs)


def sessions_between(api, client, server):
    page = api.call('GET', '/sessions?limit=1000')
    items = page['items'] if isinstance(page, dict) else page
    return [s['id'] for s in items
            if s['client_ip'] == client and s['server_ip'] == server and s['state'] != 'ended']


def test_cti_hold_on_a_running_iperf3_session(hold_net):
    controller, net, api = hold_net()
    web, cust1 = net.get('web'), net.get('cust1')
    server = web.popen(['iperf3', '-s', '-p', '5201', '-1'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    # -R: the web host sends, cust1 receives, so the intervals are what
    # arrived through the meters. UDP at a fixed rate, like a call's media:
    # the meter alone decides what arrives. (TCP measures its own recovery
    # too: after seconds at 64 kb/s it takes many seconds to climb back,
    # the meter being at the tier's rate again from the PUT on.)
    proc = cust1.popen(['iperf3', '-c', '10.0.0.101', '-p', '5201', '-R', '-t', '13',
                        '-i', '0.5', '-J', '-u', '-b', '%dM' % UDP_MBPS, '-l', '1200'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    session_line(controller, CALLER, '10.0.0.101')
    # iperf3's clock starts when its stream does, a moment after its
    # control connection was admitted: the windows below leave room.
    t0 = time.monotonic()
    time.sleep(3.0)
    sids = sessions_between(api, CALLER, '10.0.0.101')
    assert sids, 'no session of the iperf3 traffic'
    t_hold = time.monotonic() - t0
    for sid in sids:
        s = api.call('PUT', '/sessions/%s/state' % sid, {'state': 'hold'})
        assert s['state'] == 'hold' and s['state_reason'] == 'cti', s
    time.sleep(max(0.0, 7.0 - (time.monotonic() - t0)))
    t_resume = time.monotonic() - t0
    for sid in sids:
        s = api.call('PUT', '/sessions/%s/state' % sid, {'state': 'active'})
        assert s['state'] == 'active' and s['explanation']['reason'] == 'automatic', s
    try:
        iv = iperf_intervals(proc)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
    print('hold at %.2f s, resume at %.2f s; intervals: %s' % (
        t_hold, t_resume, ' '.join('%.1f:%.2f' % (a, r) for a, b, r in iv)))
    before = mean(r for a, b, r in iv if b <= t_hold - 0.5)
    during = mean(r for a, b, r in iv if a >= t_hold + 2.0 and b <= t_resume - 0.5)
    # The end of the first whole interval at about the hold rate: by then
    # the hold was in force on the path (an upper bound of the delay).
    first_low = next((b for a, b, r in iv if b > t_hold and r < 3 * GOLD_HOLD / 1000), None)
    after = mean(r for a, b, r in iv if a >= t_resume + 1.5)
    figure('  hold: CTI on iperf3 UDP %d Mbit/s (sessions %s): active %.1f Mbit/s -> '
           'hold %.3f Mbit/s (tier hold rate %d kb/s, below 3x it within %.1f s of the PUT) '
           '-> resumed %.1f Mbit/s'
           % (UDP_MBPS, ','.join(sids), before, during, GOLD_HOLD,
              (first_low - t_hold) if first_low is not None else float('nan'), after))
    assert before >= 0.9 * UDP_MBPS, iv
    assert during <= 2.0 * GOLD_HOLD / 1000, iv
    assert first_low is not None and first_low <= t_hold + 2.0, (t_hold, iv)
    assert after >= 0.9 * UDP_MBPS, iv


def test_idle_media_puts_the_call_on_hold_and_media_resumes_it(hold_net, tmp_path):
    controller, net, api = hold_net()
    pcap = rtp_pcap(Path(tmp_path) / 'rtp.pcap', 4.0)
    uac_xml = scenario(tmp_path, 'uac_idle.xml', PCAP=pcap, TALK_MS=4500, IDLE_MS=6000)
    uas, uac = start_call(net, uac_xml)
    seen, held = [], {}
    try:
        sid = sid_of(session_line(controller, CALLER, SERVER))
        t0 = time.monotonic()
        while uac.poll() is None and time.monotonic() - t0 < 40:
            try:
                s = api.session(sid)
            except OSError:
                break
            if not seen or (s['state'], s['state_reason']) != seen[-1][1:]:
                seen.append((round(time.monotonic() - t0, 2), s['state'], s['state_reason']))
                if s['state'] == 'hold':
                    time.sleep(0.3)
                    held = path_meter_rates(CALLER, SERVER, PATH_CUST1)
            if s['state'] == 'ended':
                break
            time.sleep(0.1)
    finally:
        end_call(net, uas, uac, controller)
    states = [(st, why) for _, st, why in seen]
    figure('  hold: idle media on call %s (RTP 4 s, silence 6 s, RTP 4 s): %s'
           % (sid, ' -> '.join('%s@%.1fs%s' % (st, t, ' (%s)' % why if why else '')
                               for t, st, why in seen)))
    assert ('hold', 'idle media') in states, seen
    assert ('active', 'media resumed') in states, seen
    i_hold = states.index(('hold', 'idle media'))
    assert states.index(('active', 'media resumed')) > i_hold, seen
    # Not held while the RTP played at first.
    assert all(st == 'active' for st, _ in states[:i_hold]), seen
    # Held after the media stopped (4 s) plus the 2 s idle_after_ms, not before.
    t_hold = seen[i_hold][0]
    assert 5.0 <= t_hold <= 10.0, seen
    # While idle-held, the meters on every switch of the path are at the
    # hold rate.
    assert held and all(r == [GOLD_HOLD, GOLD_HOLD] for r in held.values()), held
    controller.wait_log('session %s ended: SIP BYE' % sid)


def test_demo_held_call(hold_net):
    """mininet/demo_hold.py's held call, as the README's demo runs it."""
    controller, net, api = hold_net()
    sid, (active, held, resumed), music = held_call(
        net, api='http://127.0.0.1:%d' % controller.api_port)
    figure('  hold: demo call %s: active %.1f Mbit/s -> hold %.3f Mbit/s -> resumed %.1f Mbit/s;'
           ' music on hold %.0f packets/s at the caller'
           % (sid, active, held, resumed, music))
    assert music >= 45, music
    # A fresh TCP stream per phase through the call's meters: the tier's
    # rate before and after, the hold rate (two orders of magnitude less)
    # between.
    assert active >= 0.9 * GOLD / 1000, (active, held, resumed)
    assert held <= 3 * GOLD_HOLD / 1000, (active, held, resumed)
    assert resumed >= 0.9 * GOLD / 1000, (active, held, resumed)
    controller.wait_log('session %s ended: SIP BYE' % sid)


ECHO = '''
import select, socket, sys
socks = []
for port in (6000, 6001):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], port))
    socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)
'''


def media_leg_flows(switch, src, dst):
    """Tierflow's media-leg flows (cookie kind 5) on `switch` from src to dst."""
    out = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', switch,
                          'udp,nw_src=%s,nw_dst=%s' % (src, dst)],
                         capture_output=True, text=True, timeout=20).stdout
    return [line for line in out.splitlines() if 'cookie=0x746605' in line]


def test_media_to_a_third_host_rides_a_media_leg_that_holds_and_ends_with_the_call(
        hold_net, tmp_path):
    """The SIP server answers with an agent phone's address (10.0.0.200,
    on the site switch) for the media: the RTP bypasses the call's IP pair
    and gets a media leg of its own."""
    controller, net, api = hold_net()
    agent = net.get('agent1')
    gw = agent.IP()
    # The controller learns where the agent's phone attaches.
    agent.cmd(['ping', '-c', '1', '-W', '1', SERVER])
    echo = agent.popen(['/usr/bin/python3', '-c', ECHO, gw],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    uas_xml = Path(tmp_path) / 'uas_gateway.xml'
    uas_xml.write_text((SIPP_DIR / 'uas_hold.xml').read_text().replace(
        'c=IN IP[media_ip_type] [media_ip]', 'c=IN IP4 %s' % gw))
    # See the first test for why the talk phase is this long.
    pcap = rtp_pcap(Path(tmp_path) / 'rtp.pcap', 6.5)
    uac_xml = scenario(tmp_path, 'uac_hold.xml', PCAP=pcap, TALK_MS=7000, HOLD_MS=4000)
    sip, cust1 = net.get('sip'), net.get('cust1')
    uas = sip.popen(['sipp', '-sf', str(uas_xml), '-i', SERVER, '-mi', SERVER, '-p', '5060',
                     '-m', '1', '-nostdin'],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    uac = cust1.popen(['sipp', SERVER + ':5060', '-sf', str(uac_xml), '-i', CALLER,
                       '-mi', CALLER, '-p', '5061', '-m', '1', '-l', '1',
                       '-timeout', '60', '-timeout_error'],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        sid = sid_of(session_line(controller, CALLER, SERVER))
        controller.wait_log('session %s: media leg %s:6000 <-> %s:6000' % (sid, CALLER, gw),
                            timeout=10)

        def leg_rates():
            out = {}
            for sw in PATH_CUST1:
                rates = meters(sw)
                ids = {int(m) for f in media_leg_flows(sw, CALLER, gw) + media_leg_flows(sw, gw, CALLER)
                       for m in re.findall(r'meter:(\d+)', f)}
                out[sw] = sorted(rates.get(i) for i in ids)
            return out

        # The leg on the tier's rate, checked first: the talk phase is
        # timed, and the hold re-INVITE comes when it ends.
        # (The log line comes as the flow-mods leave, before OVS has them.)
        deadline = time.monotonic() + 3
        while True:
            active = leg_rates()
            if all(r == [GOLD, GOLD] for r in active.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert all(r == [GOLD, GOLD] for r in active.values()), active
        # The leg's flows on every switch between caller and agent phone
        # (the same switches as the call's path here: the phone is on the
        # site switch too), both streams' RTP counted both ways.
        time.sleep(1.0)
        counts = lambda: {sw: (  # noqa: E731
            sum(int(n) for f in media_leg_flows(sw, CALLER, gw)
                for n in re.findall(r'n_packets=(\d+)', f)),
            sum(int(n) for f in media_leg_flows(sw, gw, CALLER)
                for n in re.findall(r'n_packets=(\d+)', f))) for sw in PATH_CUST1}
        before = counts()
        time.sleep(1.0)
        after = counts()
        grew = {sw: (after[sw][0] - before[sw][0], after[sw][1] - before[sw][1])
                for sw in PATH_CUST1}
        for sw, (fwd, rev) in grew.items():
            assert fwd >= 30 and rev >= 30, ('RTP not on the media leg', sw, grew)
            flows = media_leg_flows(sw, CALLER, gw)
            # RTP and RTCP, each with the call's meter and gold's queue.
            assert sorted(re.findall(r'tp_dst=(\d+)', ' '.join(flows))) == ['6000', '6001'], flows
            assert all('set_queue:1' in f and re.search(r'meter:\d+', f) for f in flows), flows
        figure('  hold: media leg %s:6000 <-> %s:6000 of call %s, RTP packets on '
               'its flows in a ~1 s sample: %s' % (CALLER, gw, sid,
                                  ', '.join('%s %d/%d' % (sw, f, r) for sw, (f, r) in grew.items())))

        # Held by the re-INVITE, not earlier by the idle-media monitor:
        # the leg's flows count as the call's media.
        s = api.wait_state(sid, 'hold', timeout=10)
        assert s['state_reason'] == 'sip re-INVITE sendonly', s
        time.sleep(0.5)
        held = leg_rates()
        assert all(r == [GOLD_HOLD, G711_WIRE] for r in held.values()), held
        api.wait_state(sid, 'active', timeout=10)
        time.sleep(0.5)
        back = leg_rates()
        assert all(r == [GOLD, GOLD] for r in back.values()), back
    finally:
        end_call(net, uas, uac, controller)
        echo.kill()
        echo.wait()
    controller.wait_log('session %s ended: SIP BYE' % sid)
    time.sleep(0.5)
    for sw in PATH_CUST1:
        assert not media_leg_flows(sw, CALLER, gw), sw
