"""A tier's rate is what the session gets (issue 10), measured end to end:
the real controller, real Open vSwitch (userspace datapath) in a Mininet
chain of four switches, real Redis, iperf3 and sipp.

Checks, against PRODUCT.md's promise:
- the goodput matrix: one TCP session alone on the chain gets 90-110 % of
  its tier's rate over 10 s, for tiers of 1,000 to 50,000 kbit/s, with a
  burst of a tenth of a second of the rate and with none given; the bucket
  Tierflow used is shown in the session's view and in
  /switches/{dpid}/meters;
- hold on a running TCP session, from CTI and from a SIP re-INVITE, at hold
  rates of 100 and 1,000 kbit/s: goodput during the hold at least 70 % of
  the hold rate (and not far above it), back above 90 % of the tier's rate
  within 3 s of the resume;
- music on hold: a sipp call that the server side holds with a=sendonly
  keeps the server's RTP arriving at the codec's packet rate, while the
  caller's side is cut to the hold rate; the session's meters say so.
"""

import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import figure
from demo_hold import fill_scenario, rtp_pcap
from test_qos import load_crm
from tierflow_mn import LinearTopo

#: LinearTopo(k=4, n=2): Mininet numbers hosts in name order, h1s1
#: 10.0.0.1 ... h1s4 .4, h2s1 .5 ... h2s4 .8.
BULK_CLIENT, BULK_SERVER = '10.0.0.1', '10.0.0.4'
CALLER, SIP_SERVER = '10.0.0.5', '10.0.0.8'
SWITCHES = ['s1', 's2', 's3', 's4']

CRM = {
    'tiers': [{'name': 'measured', 'min_benefit': 0.0, 'rate_kbps': 10000, 'burst_kbits': 1000,
               'dscp': 10, 'queue_id': 0, 'hold_rate_kbps': 100}],
    'customers': [],
    'promotions': [],
    'services': [
        {'name': 'bulk', 'ip': BULK_SERVER, 'proto': 'tcp', 'port': 5201, 'kind': 'other'},
        {'name': 'sip', 'ip': SIP_SERVER, 'proto': 'udp', 'port': 5060, 'kind': 'sip'},
    ],
    'policy': {'weights': {'margin': 1.0, 'opportunity': 1.0, 'retention': 1.0},
               'default_tier': 'measured'},
}
#: Idle media off: these calls' media may pause (a held caller), and the
#: hold under test is the SIP one.
TOML = """
[hold]
idle_media = false
"""


class Api:
    def __init__(self, controller):
        self.base = 'http://127.0.0.1:%d/api/v1' % controller.api_port

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b'null')

    def tier(self, rate, burst=None, hold=100):
        body = dict(CRM['tiers'][0], rate_kbps=rate, hold_rate_kbps=hold)
        if burst is None:
            body.pop('burst_kbits')
        else:
            body['burst_kbits'] = burst
        return self.call('PUT', '/tiers/measured', body)

    def session_between(self, client, server, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            page = self.call('GET', '/sessions?limit=1000')
            for s in page['items']:
                if (s['client_ip'], s['server_ip'], s['state']) != (client, server, 'ended') \
                        and (s['client_ip'], s['server_ip']) == (client, server):
                    return s
            if time.monotonic() > deadline:
                raise AssertionError('no session %s -> %s: %s' % (client, server, page))
            time.sleep(0.1)


@pytest.fixture
def rates_net(tierflow_bin, redis, controller_factory, mn_net_factory, tmp_path):
    """The chain of four switches with two hosts on each, the measured
    tier as the default, a controller; returns (controller, net, api)."""
    crm = Path(tmp_path) / 'crm.json'
    crm.write_text(json.dumps(CRM))
    load_crm(tierflow_bin, redis, crm)
    cfg = Path(tmp_path) / 'tierflow.toml'
    cfg.write_text(TOML)
    c = controller_factory('--config', str(cfg), '--crm-mode', 'replica')
    c.start()
    net = mn_net_factory(c)(LinearTopo(k=4, n=2))
    return c, net, Api(c)


def iperf_json(proc, timeout=90):
    out, err = proc.communicate(timeout=timeout)
    try:
        return json.loads(out)
    except ValueError as e:
        raise AssertionError('iperf3 gave no result (%s): %s %s' % (e, out[-500:], err[-500:]))


def received_kbps(j):
    try:
        return j['end']['sum_received']['bits_per_second'] / 1000
    except KeyError as e:
        raise AssertionError('iperf3 result without %s: %s' % (e, json.dumps(j)[-800:]))


def sent_kbps(j):
    try:
        return j['end']['sum_sent']['bits_per_second'] / 1000
    except KeyError as e:
        raise AssertionError('iperf3 result without %s: %s' % (e, json.dumps(j)[-800:]))


def intervals(j):
    """[(start s, end s, kbit/s)] of an iperf3 -J result."""
    return [(i['sum']['start'], i['sum']['end'], i['sum']['bits_per_second'] / 1000)
            for i in j['intervals']]


def mean(xs):
    xs = list(xs)
    assert xs, 'no intervals in that window'
    return sum(xs) / len(xs)


def switch_buckets(api, switch_dpid):
    return {m['meter_id']: (m['rate_kbps'], m['bucket_kbits'])
            for m in api.call('GET', '/switches/%s/meters' % switch_dpid)}


def test_goodput_matrix_every_tier_gets_its_rate(rates_net):
    controller, net, api = rates_net
    client, server = net.get('h1s1'), net.get('h1s4')
    net.serve(server, ['iperf3', '-s', '-p', '5201'])
    time.sleep(0.5)
    rows = []
    for rate in (1000, 3000, 10000, 50000):
        for burst in (rate // 10, None):
            api.tier(rate, burst)
            j = iperf_json(client.popen(
                ['iperf3', '-c', BULK_SERVER, '-p', '5201', '-t', '10', '-J'],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            got, rx = sent_kbps(j), received_kbps(j)
            s = api.session_between(BULK_CLIENT, BULK_SERVER)
            m = s['meters']
            assert s['tier'] == 'measured' and m is not None, s
            assert m['to_server']['rate_kbps'] == rate, m
            bucket = m['to_server']['bucket_kbits']
            # The bucket is the one on the switches, on every switch.
            for dpid in s['path']:
                assert (rate, bucket) in switch_buckets(api, dpid).values(), dpid
            assert len(s['path']) == 4, s['path']
            rows.append((rate, burst, bucket, got, got / rate, rx / rate))
    figure('  rates: goodput matrix, TCP alone on 4 switches, iperf3 10 s '
           '(tier kbit/s, burst_kbits, bucket used kbit, iperf3 kbit/s, ratio; receiver ratio):')
    for rate, burst, bucket, got, ratio, rx_ratio in rows:
        figure('    %6d  %6s  %6d  %9.0f  %.3f  %.3f'
               % (rate, burst if burst is not None else '-', bucket, got, ratio, rx_ratio))
    for rate, burst, bucket, got, ratio, rx_ratio in rows:
        # iperf3's figure (its sender's, as PRODUCT.md's measurements and
        # an operator's iperf3 read it): the promise, 90-110 %. The
        # receiver's is lower by what was still in flight or queued in the
        # sender's socket when the 10 s ended (0.06-0.15 of the rate at
        # this bucket, BENCHMARKS.md "Meter buckets"); it may not fall
        # far below either.
        assert 0.9 <= ratio <= 1.1, (rate, burst, bucket, got, rows)
        assert 0.85 <= rx_ratio <= 1.1, (rate, burst, bucket, rx_ratio, rows)
        assert bucket >= (burst or 0)


class StatePoller:
    """Records when a session's state changes (epoch seconds), polling the
    API every 50 ms in a thread."""

    def __init__(self, api, sid):
        self.api, self.sid = api, sid
        self.changes, self.stop, self.errors = [], threading.Event(), []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        last = None
        self.errors = []
        while not self.stop.is_set():
            try:
                s = self.api.call('GET', '/sessions/' + self.sid)
            except OSError as e:
                self.errors.append((time.time(), str(e)))
                time.sleep(0.05)
                continue
            if s['state'] != last:
                self.changes.append((time.time(), s['state'], s['state_reason'], s['meters']))
                last = s['state']
            time.sleep(0.05)

    def at(self, state, after=0.0):
        for t, st, _, _ in self.changes:
            if st == state and t >= after:
                return t
        raise AssertionError('never %s after %s: %s (API errors: %s)'
                             % (state, after, self.changes, self.errors[-5:]))

    def done(self):
        self.stop.set()
        self.thread.join(timeout=5)


#: The hold tests' senders run CUBIC, Linux's default congestion control.
#: This machine's default, BBR (v1), recognises a policer and then paces at
#: the policed rate for 48 round trips after the policer is lifted; at a
#: hold rate of 100 kbit/s a round trip is about a packet's time (~150 ms),
#: so a BBR sender takes 7-10 s to take the rate back (1-3.5 s after a hold
#: at 1,000), however fast the meters change. That is the sender's choice,
#: measured and recorded in BENCHMARKS.md ("Hold and resume").
HOLD_CC = ['-C', 'cubic']


def sender_intervals(j):
    """The sending server's intervals of an `iperf3 -R --get-server-output`
    result (the server started with -J -i 0.5)."""
    try:
        return intervals(j['server_output_json'])
    except (KeyError, TypeError) as e:
        raise AssertionError('iperf3 result without the server\'s intervals (%s): %s'
                             % (e, json.dumps(j)[-800:]))


def hold_figures(label, ivs, t0, t_hold, t_resume, rate, hold):
    """`ivs`: (the receiver's, the sender's) 0.5 s intervals. The rate
    before the hold and the seconds from the resume to the first whole
    second above 90 % of the tier's rate are iperf3's figures (its
    sender's, as the goodput matrix); the rate during the hold (from 2 s
    in) is what arrived: a sender's intervals then count what it could
    write into a socket whose buffer the hold left full."""
    received, iv = ivs
    rel_hold, rel_resume = t_hold - t0, t_resume - t0
    before = mean(k for a, b, k in iv if b <= rel_hold - 0.2 and a >= 2.0)
    during = mean(k for a, b, k in received if a >= rel_hold + 2.0 and b <= rel_resume)
    back = None
    pairs = list(zip(iv, iv[1:]))
    for (a, _, k1), (_, b, k2) in pairs:
        if a >= rel_resume - 0.5 and (k1 + k2) / 2 >= 0.9 * rate:
            back = max(0.0, b - rel_resume)
            break
    after = ' '.join('%.0f' % k for a, _, k in iv if rel_resume - 0.5 <= a < rel_resume + 4)
    figure('  rates: %s: tier %d kbit/s, hold %d: before %.0f kbit/s, on hold %.0f (%.2f of the '
           'hold rate), back above 90 %% %s after the resume (0.5 s intervals from the resume: '
           '%s)'
           % (label, rate, hold, before, during, during / hold,
              '%.1f s' % back if back is not None else 'never', after))
    return before, during, back


def assert_hold(label, ivs, t0, t_hold, t_resume, rate, hold):
    before, during, back = hold_figures(label, ivs, t0, t_hold, t_resume, rate, hold)
    trace = ' | '.join(' '.join('%.1f:%.0f' % (a, k) for a, _, k in iv) for iv in ivs)
    assert before >= 0.85 * rate, (label, before, trace)
    assert 0.7 * hold <= during <= 1.5 * hold, (label, during, trace)
    assert back is not None and back <= 3.0, (label, back, t_resume - t0, trace)


@pytest.mark.parametrize('hold', [100, 1000])
def test_cti_hold_slows_a_tcp_session_and_the_resume_restores_it(rates_net, hold):
    controller, net, api = rates_net
    rate = 20000
    api.tier(rate, 2000, hold)
    client, server = net.get('h1s1'), net.get('h1s4')
    net.serve(server, ['iperf3', '-s', '-p', '5201', '-J', '-i', '0.5'])
    time.sleep(0.5)
    t0 = time.time()
    # -R: the server sends and the client's intervals are what arrived
    # (a sender's intervals count what it wrote into its socket, and
    # the buffer a 20 Mbit/s transfer filled takes the whole hold to drain).
    proc = client.popen(['iperf3', '-c', BULK_SERVER, '-p', '5201', '-R', '-t', '24', '-i',
                         '0.5', '-J', '--get-server-output'] + HOLD_CC,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sid = api.session_between(BULK_CLIENT, BULK_SERVER)['id']
    poll = StatePoller(api, sid)
    try:
        time.sleep(max(0.0, t0 + 8 - time.time()))
        s = api.call('PUT', '/sessions/%s/state' % sid, {'state': 'hold'})
        assert s['state'] == 'hold', s
        assert s['meters']['to_client']['rate_kbps'] == hold, s['meters']
        time.sleep(max(0.0, t0 + 18 - time.time()))
        s = api.call('PUT', '/sessions/%s/state' % sid, {'state': 'active'})
        assert s['state'] == 'active', s
        j = iperf_json(proc)
        iv = (intervals(j), sender_intervals(j))
    finally:
        poll.done()
    assert_hold('CTI hold on TCP', iv, t0, poll.at('hold'), poll.at('active', poll.at('hold')),
                rate, hold)


@pytest.mark.parametrize('hold', [100, 1000])
def test_sip_hold_slows_tcp_between_caller_and_server_and_the_resume_restores_it(
        rates_net, tmp_path, hold):
    """A call's flows carry all traffic between the caller and the SIP
    server: TCP between them slows when the caller holds (a=sendonly: the
    server's direction, where this TCP's data runs, drops to the hold
    rate) and comes back on the resume."""
    controller, net, api = rates_net
    rate = 20000
    api.tier(rate, 2000, hold)
    caller, sip = net.get('h2s1'), net.get('h2s4')
    pcap = rtp_pcap(Path(tmp_path) / 'rtp.pcap', 7.5, src=CALLER, dst=SIP_SERVER)
    uac_xml = fill_scenario('uac_hold.xml', tmp_path, PCAP=pcap, TALK_MS=8000, HOLD_MS=10000)
    net.serve(sip, ['iperf3', '-s', '-p', '5202', '-J', '-i', '0.5'])
    net.serve(sip, ['sipp', '-sf', str(Path(__file__).parent / 'sip' / 'uas_hold.xml'),
                    '-i', SIP_SERVER, '-mi', SIP_SERVER, '-p', '5060', '-rtp_echo',
                    '-m', '1', '-nostdin'])
    time.sleep(1)
    uac = caller.popen(['sipp', SIP_SERVER + ':5060', '-sf', str(uac_xml), '-i', CALLER,
                        '-mi', CALLER, '-p', '5061', '-m', '1', '-l', '1', '-timeout', '60',
                        '-timeout_error', '-nostdin'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sid = api.session_between(CALLER, SIP_SERVER)['id']
    poll = StatePoller(api, sid)
    try:
        t0 = time.time()
        # -R: the server sends, through the direction the hold slows.
        proc = caller.popen(['iperf3', '-c', SIP_SERVER, '-p', '5202', '-R', '-t', '24',
                             '-i', '0.5', '-J', '--get-server-output'] + HOLD_CC,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        j = iperf_json(proc)
        iv = (intervals(j), sender_intervals(j))
        rc = uac.wait(timeout=60)
        assert rc == 0, 'sipp caller failed (rc %s): %s' % (rc, uac.stderr.read()[-800:])
    finally:
        poll.done()
        if uac.poll() is None:
            uac.kill()
            uac.wait()
    t_hold = poll.at('hold')
    held = [c for c in poll.changes if c[1] == 'hold'][0]
    assert held[2] == 'sip re-INVITE sendonly', poll.changes
    # The caller holds and keeps sending (its music on hold) to the
    # server: its direction keeps what G.711 needs, the other is held.
    assert held[3]['to_client']['rate_kbps'] == hold, held
    assert held[3]['to_server']['rate_kbps'] == max(hold, 88), held
    assert_hold('SIP hold on TCP', iv, t0, t_hold, poll.at('active', t_hold), rate, hold)


def rtp_times(path, src):
    """Epoch times of the RTP packets from `src` in a tcpdump -tt text file."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[2].startswith(src + '.'):
            out.append(float(parts[0]))
    return out


def per_second(times, start, end):
    n = sum(1 for t in times if start <= t < end)
    return n / (end - start)


def test_music_on_hold_keeps_the_codecs_rate_one_way(rates_net, tmp_path):
    controller, net, api = rates_net
    hold = 16
    api.tier(2000, 200, hold)
    caller, sip = net.get('h2s1'), net.get('h2s4')
    talk_ms, hold_ms, after_ms = 4000, 8000, 3000
    secs = (talk_ms + hold_ms + after_ms) / 1000 + 3
    caller_pcap = rtp_pcap(Path(tmp_path) / 'caller.pcap', secs, src=CALLER, dst=SIP_SERVER)
    music = rtp_pcap(Path(tmp_path) / 'music.pcap', secs, src=SIP_SERVER, dst=CALLER)
    uac_xml = fill_scenario('uac_moh.xml', tmp_path, PCAP=caller_pcap, AFTER_MS=after_ms)
    uas_dir = Path(tmp_path) / 'uas'
    uas_dir.mkdir()
    uas_xml = fill_scenario('uas_moh.xml', uas_dir, PCAP=music, TALK_MS=talk_ms,
                            HOLD_MS=hold_ms)
    # Each receiver counts what reaches it (epoch timestamps).
    at_caller, at_server = Path(tmp_path) / 'caller.txt', Path(tmp_path) / 'server.txt'
    dumps = []
    for host, src, path in ((caller, SIP_SERVER, at_caller), (sip, CALLER, at_server)):
        with open(path, 'w') as out:
            dumps.append(host.popen(['tcpdump', '-tt', '-n', '-l', '-i', str(host.defaultIntf()),
                                     'udp and src %s and dst port 6000' % src],
                                    stdout=out, stderr=subprocess.DEVNULL))
    time.sleep(1)
    net.serve(sip, ['sipp', '-sf', str(uas_xml), '-i', SIP_SERVER, '-mi', SIP_SERVER,
                    '-p', '5060', '-m', '1', '-nostdin'])
    time.sleep(1)
    uac = caller.popen(['sipp', SIP_SERVER + ':5060', '-sf', str(uac_xml), '-i', CALLER,
                        '-mi', CALLER, '-p', '5061', '-m', '1', '-l', '1', '-timeout', '60',
                        '-timeout_error', '-nostdin'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        sid = api.session_between(CALLER, SIP_SERVER)['id']
        poll = StatePoller(api, sid)
        rc = uac.wait(timeout=60)
        poll.done()
        assert rc == 0, 'sipp caller failed (rc %s): %s\n%s' % (
            rc, uac.stderr.read()[-800:], controller.tail())
    finally:
        if uac.poll() is None:
            uac.kill()
            uac.wait()
        time.sleep(0.5)
        for d in dumps:
            d.terminate()
            d.wait(timeout=5)
    t_hold = poll.at('hold')
    t_resume = poll.at('active', t_hold)
    held = [c for c in poll.changes if c[1] == 'hold'][0]
    assert held[2] == 'sip re-INVITE sendonly', poll.changes
    m = held[3]
    assert (m['to_server']['rate_kbps'], m['to_client']['rate_kbps'], m['need_kbps']) == \
        (hold, 88, 88), m
    music_at_caller = rtp_times(at_caller, SIP_SERVER)
    voice_at_server = rtp_times(at_server, CALLER)
    # From a second into the hold (the bucket drained) to its end.
    w = (t_hold + 1.0, t_resume - 0.2)
    moh_pps = per_second(music_at_caller, *w)
    held_pps = per_second(voice_at_server, *w)
    before = (per_second(music_at_caller, t_hold - 3.0, t_hold - 0.5),
              per_second(voice_at_server, t_hold - 3.0, t_hold - 0.5))
    # G.711 at 20 ms: 50 packets a second of 214 bytes (Ethernet header
    # included, as meters count): the hold rate lets through this many.
    hold_pps = hold * 1000 / (214 * 8)
    figure('  rates: music on hold (G.711, tier hold rate %d kbit/s): before %.1f/%.1f pps '
           '(server->caller/caller->server), on hold %.1f pps of music, %.1f pps of the held '
           'caller (%.1f at the hold rate)'
           % (hold, before[0], before[1], moh_pps, held_pps, hold_pps))
    assert min(before) >= 45, before
    assert moh_pps >= 45, (moh_pps, w)
    assert 0.5 * hold_pps <= held_pps <= 1.5 * hold_pps, (held_pps, hold_pps, w)
    # Resumed: both ways at the codec's rate again.
    after = per_second(voice_at_server, t_resume + 1.0, t_resume + 2.5)
    assert after >= 45, after
