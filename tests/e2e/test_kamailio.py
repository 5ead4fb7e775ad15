"""Sessions requested by an application server (issue 15), end to end: calls
whose signalling the switches cannot read get their customer's tier because
the contact center's SIP proxy asks for it through the REST API.

Two real Kamailio 5.6 instances (integrations/kamailio: edge.cfg and
site.cfg, certificates from make-certs.sh), real sipp phones with real
G.711 RTP, the real controller, real Open vSwitch in Mininet's
contact-center topology with one more host, the customer-side proxy:

    cust1, cust2 (sipp UAC, plain UDP SIP)
      --> cproxy 10.0.0.50 on edge1: edge Kamailio (edge.cfg)
      ==TLS==> across edge1, core1, core3, site
      --> sip 10.0.0.100 on site: the site's Kamailio (site.cfg)
      --> agent1 10.0.0.200 on site: sipp UAS (the ACD), echoing RTP
    the site's Kamailio --HTTP--> Tierflow's API (POST, PUT state, DELETE)

The controller's API listens in the root network namespace; socat relays
127.0.0.1:8080 of the `sip` host to it through a Unix socket. The CRM is
the sample one (crm/contact-center.json) without its `sip` service, so the
controller reads no SIP anywhere: every tier comes from the API, and the
tests check it (the sessions carry the Call-ID as `external_id`, were
logged as requested, and no session was started by the network).

Checks: a gold (Acme Corp, +14155550101) and a bronze (Bolt Bikes,
+14155550102) customer call at the same time, each with its tier on every
switch of its media path (flows with meters at the tier's rate both ways,
RTCP's flows on the RTP's meters, DSCP marked at the ingress and seen at
the receiver of each direction); a
re-INVITE a=sendonly holds each call (a CTI hold: both directions'
meters on every switch at the hold rate, as the session's `meters` say,
and the caller's G.711, sent on, reaches the agent at 90-110 % of the
hold rate) and a=sendrecv resumes it (the tier's rate again on every
switch, every RTP packet through both ways with the tier's DSCP); BYE
ends both sessions and their flows and meters leave every switch; Bolt Bikes calling with `X-Promo-Code: GOLDPASS` gets gold;
the edge-site hop carries TLS only (no readable SIP on the switches'
ports), while the customers' UDP leg is readable. And a session requested
before its hosts ever sent a packet is admitted when they appear, and
holds an iperf3 UDP stream at three times its tier's rate to the rate.

Run as root with Debian's python3 (scripts/setup.sh installs Kamailio,
sipp, socat, tcpdump and iperf3):
    /usr/bin/python3 -m pytest -v tests/e2e/test_kamailio.py
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, figure
from demo_hold import fill_scenario, rtp_pcap
from test_qos import CRM, PATH_CUST1, PATH_CUST2, load_crm, meters, session_flows
from tierflow_mn import ContactCenterTopo

KAMAILIO = REPO / 'integrations' / 'kamailio'
TOKEN = 'tf-e2e-kamailio.token'
EDGE_IP, SITE_IP, AGENT_IP = '10.0.0.50', '10.0.0.100', '10.0.0.200'
AGENT_MEDIA = 20000
#: Where the site's Kamailio finds the API, inside the `sip` host.
RELAY_PORT = 8080
#: Tiers of crm/contact-center.json: kbit/s, hold kbit/s, DSCP.
TIERS = {'gold': (50_000, 64, 46), 'bronze': (5_000, 32, 10)}
#: RTP packets per second of a G.711 call at 20 ms (what sipp plays).
RTP_PPS = 50
#: Ethernet, IPv4 and UDP headers: what an RTP packet's frame adds to the
#: UDP payload tcpdump gives (a meter counts whole frames).
FRAME_OVERHEAD = 14 + 20 + 8
NO_PROMO = 'X-Tierflow-Test: no promotion code'
TOOLS = ('kamailio', 'sipp', 'socat', 'tcpdump', 'iperf3', 'openssl', 'curl', 'ss')


def require_tools():
    """Missing tools fail the test (never a skip)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    assert not missing, '%s not installed: run scripts/setup.sh' % ', '.join(missing)


class KamailioTopo(ContactCenterTopo):
    """ContactCenterTopo and `cproxy` (10.0.0.50, on edge1): the host of
    the customer-side SIP proxy."""

    def build(self, customers=2, agents=1):
        super().build(customers=customers, agents=agents)
        self.add_host('cproxy', EDGE_IP, 'edge1')


class Api:
    """The test controller's REST API, with the bearer token."""

    def __init__(self, controller, token=TOKEN):
        self.base = 'http://127.0.0.1:%d/api/v1' % controller.api_port
        self.token = token

    def request(self, method, path, body=None):
        """(status, JSON answer); 4xx and 5xx are answers too."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {'Content-Type': 'application/json'}
        if self.token:
            headers['Authorization'] = 'Bearer ' + self.token
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b'null')
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b'null')

    def get(self, path):
        status, out = self.request('GET', path)
        assert status == 200, (path, status, out)
        return out

    def sessions(self):
        page = self.get('/sessions?limit=1000')
        return page['items'] if isinstance(page, dict) else page

    def by_external(self, external_id, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in self.sessions():
                if s.get('external_id') == external_id:
                    return s
            time.sleep(0.1)
        raise AssertionError('no session with external_id %s within %ss; sessions: %s'
                             % (external_id, timeout, self.sessions()))

    def wait(self, sid, pred, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        s = None
        while time.monotonic() < deadline:
            s = self.get('/sessions/' + sid)
            if pred(s):
                return s
            time.sleep(0.1)
        raise AssertionError('session %s not %s within %ss: %s' % (sid, what, timeout, s))


def names_of(net, session):
    """The switch names of a session's path, client side first."""
    by_dpid = {int(sw.dpid, 16): sw.name for sw in net.switches}
    return [by_dpid[int(d, 16)] for d in session['path']]


def meter_ids(switch, src, dst):
    """The meter ids of Tierflow's session flows src -> dst on `switch`."""
    return {int(m) for f in session_flows(switch, src, dst)
            for m in re.findall(r'meter:(\d+)', f)}


def flows_by_ports(switch, src, dst):
    """{(source port, destination port): meter id} of Tierflow's session
    flows src -> dst on `switch`."""
    out = {}
    for f in session_flows(switch, src, dst):
        sp, dp, m = (re.search(p, f) for p in (r'tp_src=(\d+)', r'tp_dst=(\d+)', r'meter:(\d+)'))
        out[(sp and int(sp.group(1)), dp and int(dp.group(1)))] = m and int(m.group(1))
    return out


def path_rates(path, client, server):
    """{switch: (rates of the client->server meters, of the server->client
    ones)} along `path`."""
    out = {}
    for sw in path:
        rates = meters(sw)
        out[sw] = (sorted(rates.get(i) for i in meter_ids(sw, client, server)),
                   sorted(rates.get(i) for i in meter_ids(sw, server, client)))
    return out


def wait_path_rates(path, client, server, up, down, secs=5.0):
    """Reads the meters along `path` until every switch shows `up` kbit/s
    client->server and `down` back (or `secs` pass); asserts it."""
    deadline, rates = time.monotonic() + secs, {}
    while time.monotonic() < deadline:
        rates = path_rates(path, client, server)
        if all(r == ([up], [down]) for r in rates.values()):
            return rates
        time.sleep(0.1)
    raise AssertionError('meters along %s are not %s/%s kbit/s: %s' % (path, up, down, rates))


def read_pcap(path):
    """(time, tos, proto, src, sport, dst, dport, payload) of every IPv4
    TCP/UDP packet of an Ethernet pcap file."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack('<I', data[:4])[0]
    endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    nano = magic in (0xa1b23c4d, 0x4d3cb2a1)
    off, out = 24, []
    while off + 16 <= len(data):
        sec, frac, incl = struct.unpack(endian + 'III', data[off:off + 12])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if len(frame) < 34 or frame[12:14] != b'\x08\x00':
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack('!H', ip[2:4])[0]
        proto, src, dst = ip[9], socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        l4 = ip[ihl:total]
        if proto == 6 and len(l4) >= 20:
            sport, dport = struct.unpack('!HH', l4[:4])
            out.append((t, ip[1], 'tcp', src, sport, dst, dport, l4[(l4[12] >> 4) * 4:]))
        elif proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack('!HH', l4[:4])
            out.append((t, ip[1], 'udp', src, sport, dst, dport, l4[8:]))
    return out


class Capture:
    """tcpdump writing a pcap file, in a host or (host None) in the root
    namespace, where the switches' ports are."""

    def __init__(self, path, intf, bpf, host=None):
        self.path = Path(path)
        self.err = self.path.with_suffix('.err')
        argv = ['tcpdump', '-i', intf, '-n', '-U', '-s', '0', '-w', str(self.path), bpf]
        with open(self.err, 'wb') as err:
            if host is None:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err)
            else:
                self.proc = host.popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 10
        while 'listening on' not in self.err.read_text(errors='replace'):
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                'tcpdump on %s did not start: %s' % (intf, self.err.read_text(errors='replace'))
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return read_pcap(self.path)


class Call:
    """One customer's sipp call through the edge proxy."""

    def __init__(self, stack, host, tag, scenario, phone, name, promo, media_port,
                 sip_port, **pauses):
        self.host = stack.net.get(host)
        self.ip = self.host.IP()
        self.tag = tag
        self.media_port = media_port
        self.call_id = '%s-1@kamailio.e2e' % tag
        work = stack.tmp / tag
        work.mkdir()
        secs = sum(pauses.values()) / 1000 + 5
        pcap = rtp_pcap(work / 'voice.pcap', secs, src=self.ip, dst=AGENT_IP, port=media_port)
        xml = fill_scenario(scenario, work, NAME=name, PHONE=phone, PROMO=promo, PCAP=pcap,
                            **pauses)
        self.stderr = work / 'sipp.err'
        with open(self.stderr, 'wb') as err:
            self.proc = self.host.popen(
                ['sipp', '%s:5060' % EDGE_IP, '-sf', str(xml), '-i', self.ip,
                 '-p', str(sip_port), '-mi', self.ip, '-mp', str(media_port), '-s', 'agent',
                 '-m', '1', '-l', '1', '-nostdin', '-cid_str', tag + '-%u@kamailio.e2e',
                 '-timeout', '60', '-timeout_error', '-trace_err',
                 '-error_file', str(work / 'errors.log')],
                cwd=str(work), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        stack.net.servers.append(self.proc)
        self.started = time.time()
        self.talk = pauses['TALK_MS'] / 1000
        self.session = None

    def wait(self, stack, timeout=60):
        rc = self.proc.wait(timeout=timeout)
        assert rc == 0, 'call %s failed (sipp rc %s): %s\n--- errors\n%s\n--- site\n%s' % (
            self.call_id, rc, self.stderr.read_text(errors='replace')[-1000:],
            stack.text(self.stderr.parent / 'errors.log')[-2000:], stack.log('site')[-3000:])


class Stack:
    """The contact center with its two proxies, its agent and the relay
    to the API; everything it starts in a host stops with the network."""

    def __init__(self, controller, net, tmp):
        self.controller, self.net, self.tmp = controller, net, tmp
        self.api = Api(controller)
        self.root_procs = []

    def text(self, path):
        path = Path(path)
        return path.read_text(errors='replace') if path.exists() else ''

    def log(self, name):
        return self.text(self.tmp / (name + '.log'))

    def spawn(self, host, name, argv):
        with open(self.tmp / (name + '.log'), 'wb') as out:
            p = host.popen(argv, cwd=str(self.tmp), stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT)
        self.net.servers.append(p)
        return p

    def kamailio(self, host, name, cfg, defines):
        run = self.tmp / ('run-' + name)
        run.mkdir()
        argv = ['kamailio', '-f', str(KAMAILIO / cfg), '-DD', '-E', '-Y', str(run),
                '-P', str(run / 'kamailio.pid'), '-w', str(run)]
        for d in defines:
            argv += ['-A', d]
        return self.spawn(host, name, argv)

    def wait_listening(self, host, proc, name, proto, port, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, '%s exited %s:\n%s' % (name, proc.returncode,
                                                                self.log(name)[-3000:])
            if host.cmd('ss -Hln%s "sport = :%d"' % (proto, port)).strip():
                return
            assert time.monotonic() < deadline, '%s not listening on %s/%d:\n%s' % (
                name, proto, port, self.log(name)[-3000:])
            time.sleep(0.1)

    def stop(self):
        for p in self.root_procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture
def kamailio_stack(tierflow_bin, redis, controller_factory, mn_net_factory, tmp_path,
                   monkeypatch):
    require_tools()
    crm = json.loads(CRM.read_text())
    crm['services'] = [s for s in crm['services'] if s['kind'] != 'sip']
    crm_path = tmp_path / 'crm-no-sip.json'
    crm_path.write_text(json.dumps(crm))
    load_crm(tierflow_bin, redis, crm_path)
    monkeypatch.setenv('TIERFLOW_API_TOKEN', TOKEN)
    controller = controller_factory()
    controller.start()
    net = mn_net_factory(controller)(KamailioTopo())
    stack = Stack(controller, net, tmp_path)
    try:
        cproxy, sip, agent = net.get('cproxy', 'sip', 'agent1')
        # The API into the `sip` host: 127.0.0.1:8080 there -> a Unix
        # socket (no namespace) -> the controller's 127.0.0.1 port here.
        sock = tmp_path / 'api.sock'
        with open(tmp_path / 'relay-root.log', 'wb') as out:
            stack.root_procs.append(subprocess.Popen(
                ['socat', 'UNIX-LISTEN:%s,fork,mode=600' % sock,
                 'TCP:127.0.0.1:%d' % controller.api_port],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, 'socat made no %s' % sock
            time.sleep(0.05)
        relay = stack.spawn(sip, 'relay-sip', [
            'socat', 'TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork' % RELAY_PORT,
            'UNIX-CONNECT:%s' % sock])
        stack.wait_listening(sip, relay, 'relay-sip', 't', RELAY_PORT)
        health = sip.cmd('curl -s -m 5 http://127.0.0.1:%d/api/v1/health' % RELAY_PORT)
        assert '"redis"' in health, 'the API is not reachable from the sip host: %r' % health

        certs = tmp_path / 'certs'
        subprocess.run([str(KAMAILIO / 'make-certs.sh'), str(certs)], check=True,
                       env=dict(os.environ, EDGE_IPS=EDGE_IP, SITE_IPS=SITE_IP),
                       stdout=subprocess.DEVNULL, timeout=60)
        site = stack.kamailio(sip, 'site', 'site.cfg', [
            'SITE_TLS_LISTEN=tls:%s:5061' % SITE_IP,
            'SITE_UDP_LISTEN=udp:%s:5060' % SITE_IP,
            'AGENTS_URI="sip:%s:5060"' % AGENT_IP,
            'TLS_CONFIG="%s"' % (certs / 'tls-site.cfg'),
            'TIERFLOW_API="http://127.0.0.1:%d/api/v1"' % RELAY_PORT,
            'TIERFLOW_API_TOKEN="%s"' % TOKEN,
        ])
        edge = stack.kamailio(cproxy, 'edge', 'edge.cfg', [
            'EDGE_UDP_LISTEN=udp:%s:5060' % EDGE_IP,
            'EDGE_TLS_LISTEN=tls:%s:5061' % EDGE_IP,
            'SITE_URI="sip:%s:5061;transport=tls"' % SITE_IP,
            'TLS_CONFIG="%s"' % (certs / 'tls-edge.cfg'),
        ])
        stack.wait_listening(sip, site, 'site', 't', 5061)
        stack.wait_listening(cproxy, edge, 'edge', 'u', 5060)
        uas = stack.spawn(agent, 'agent', [
            'sipp', '-sf', str(KAMAILIO / 'sipp' / 'uas_agent.xml'), '-i', AGENT_IP,
            '-p', '5060', '-mi', AGENT_IP, '-mp', str(AGENT_MEDIA), '-rtp_echo', '-nostdin',
            '-trace_err', '-error_file', str(tmp_path / 'agent-errors.log')])
        stack.wait_listening(agent, uas, 'agent', 'u', 5060)
        yield stack
    finally:
        stack.stop()
        print('logs: %s' % tmp_path)


def tos_of(dscp):
    return dscp << 2


def sip_time(packets, call_id, start, cseq):
    """When the first SIP message of `call_id` beginning with `start` and
    carrying `cseq` was captured."""
    for p in packets:
        if p[7].startswith(start) and cseq in p[7] and call_id.encode() in p[7]:
            return p[0]
    raise AssertionError('no %r %r of %s captured' % (start, cseq, call_id))


def rtp(packets, src, dst, dport, start, end):
    """The RTP packets src -> dst:dport seen between two epoch times."""
    return [p for p in packets if p[2] == 'udp' and p[3] == src and p[5] == dst
            and p[6] == dport and start <= p[0] < end]


def test_calls_through_kamailio_over_tls_get_their_tiers(kamailio_stack):
    s = kamailio_stack
    net, api, controller = s.net, s.api, s.controller
    edge1, site_sw, core3, cproxy = net.get('edge1', 'site', 'core3', 'cproxy')
    agent = net.get('agent1')
    # The edge-site hop where it enters the site switch, and the customers'
    # leg where it reaches the edge proxy.
    tls_intf = site_sw.connectionsTo(core3)[0][0].name
    udp_intf = edge1.connectionsTo(cproxy)[0][0].name
    tls_cap = Capture(s.tmp / 'tls-hop.pcap', tls_intf, 'tcp port 5061 or udp port 5060')
    udp_cap = Capture(s.tmp / 'customer-leg.pcap', udp_intf, 'udp port 5060')
    at_agent = Capture(s.tmp / 'at-agent.pcap', str(agent.defaultIntf()),
                       'udp port %d' % AGENT_MEDIA, host=agent)
    at_caller = {h: Capture(s.tmp / ('at-%s.pcap' % h), '%s-eth0' % h,
                            'udp port %d' % AGENT_MEDIA, host=net.get(h))
                 for h in ('cust1', 'cust2')}

    pauses = dict(TALK_MS=5000, HOLD_MS=6000, AFTER_MS=3000)
    calls = {
        'gold': Call(s, 'cust1', 'gold', 'uac_kam_hold.xml', '+14155550101', 'Acme Corp',
                     NO_PROMO, 40000, 5070, **pauses),
        'bronze': Call(s, 'cust2', 'bronze', 'uac_kam_hold.xml', '+14155550102', 'Bolt Bikes',
                       NO_PROMO, 40000, 5070, **pauses),
    }
    paths = {'gold': PATH_CUST1, 'bronze': PATH_CUST2}
    customers = {'gold': 'c-1001', 'bronze': 'c-1002'}
    seen = {}

    # Answered: the site proxy asked for each call's session.
    for tier, call in calls.items():
        sess = api.by_external(call.call_id)
        call.session, call.admitted = sess, time.time()
        rate, hold, dscp = TIERS[tier]
        assert sess['tier'] == tier, sess
        assert sess['service'] == 'voice' and sess['customer_id'] == customers[tier], sess
        assert (sess['client_ip'], sess['server_ip']) == (call.ip, AGENT_IP), sess
        assert names_of(net, sess) == paths[tier], sess['path']
        assert controller.grep('session %s requested: %s -> %s voice tier %s'
                               % (sess['id'], call.ip, AGENT_IP, tier)), controller.tail()

    # Active: the tier on every switch of each media path, both ways, and
    # only there; DSCP marked where each direction enters.
    for tier, call in calls.items():
        rate, hold, dscp = TIERS[tier]
        path = paths[tier]
        seen[tier] = wait_path_rates(path, call.ip, AGENT_IP, rate, rate)
        on = sorted(sw.name for sw in net.switches if session_flows(sw.name, call.ip, AGENT_IP))
        assert on == sorted(path), (tier, on)
        fwd = session_flows(path[0], call.ip, AGENT_IP)
        rev = session_flows(path[-1], AGENT_IP, call.ip)
        assert fwd and all('set_field:%d->ip_dscp' % dscp in f for f in fwd), fwd
        assert rev and all('set_field:%d->ip_dscp' % dscp in f for f in rev), rev
        view = api.get('/sessions/' + call.session['id'])['meters']
        assert view['to_server']['rate_kbps'] == view['to_client']['rate_kbps'] == rate, view
        call.meter_ids = {sw: meter_ids(sw, call.ip, AGENT_IP) | meter_ids(sw, AGENT_IP, call.ip)
                          for sw in path}
        # The call's RTCP (the next ports of both ends) rides on its RTP's
        # meters, on every switch, both ways.
        cp, ap = call.media_port, AGENT_MEDIA
        for sw in path:
            fwd = flows_by_ports(sw, call.ip, AGENT_IP)
            rev = flows_by_ports(sw, AGENT_IP, call.ip)
            assert set(fwd) == {(cp, ap), (cp + 1, ap + 1)}, (tier, sw, fwd)
            assert set(rev) == {(ap, cp), (ap + 1, cp + 1)}, (tier, sw, rev)
            assert len(set(fwd.values())) == 1 and None not in fwd.values(), (tier, sw, fwd)
            assert len(set(rev.values())) == 1 and None not in rev.values(), (tier, sw, rev)

    # Hold (the caller's re-INVITE a=sendonly, told to the controller as
    # PUT /state, a CTI hold: no direction in it): both directions at the
    # hold rate, in the session's `meters` and on every switch of the path.
    for tier, call in calls.items():
        rate, hold, dscp = TIERS[tier]
        held = api.wait(call.session['id'], lambda x: x['state'] == 'hold', 'on hold')
        m = held['meters']
        up, down = m['to_server']['rate_kbps'], m['to_client']['rate_kbps']
        assert up == down == hold, m
        assert held['state_reason'] == 'cti', held
        wait_path_rates(paths[tier], call.ip, AGENT_IP, hold, hold)
        # From here every switch meters the call at the hold rate.
        call.held = time.time()
        call.hold_rates = (up, down)
        call.hold_bucket = m['to_server']['bucket_kbits']

    # Resume (a=sendrecv): the tier's rate again.
    for tier, call in calls.items():
        rate, hold, dscp = TIERS[tier]
        api.wait(call.session['id'], lambda x: x['state'] == 'active', 'resumed', timeout=10)
        wait_path_rates(paths[tier], call.ip, AGENT_IP, rate, rate)
        # From here every switch meters the call at the tier's rate again.
        call.resumed = time.time()

    # BYE: both sessions end; their flows and meters leave every switch.
    for tier, call in calls.items():
        call.wait(s)
        call.ended = time.time()
        ended = api.wait(call.session['id'], lambda x: x['state'] == 'ended', 'ended')
        deadline = time.monotonic() + 5
        while True:
            left = {sw: (session_flows(sw, call.ip, AGENT_IP) + session_flows(sw, AGENT_IP, call.ip),
                         call.meter_ids[sw] & set(meters(sw)))
                    for sw in paths[tier]}
            if not any(f or m for f, m in left.values()):
                break
            assert time.monotonic() < deadline, ('left after BYE', tier, left)
            time.sleep(0.1)
        call.ended_view = ended

    # Bolt Bikes again, with a promotion code: gold.
    promo = Call(s, 'cust2', 'promo', 'uac_kam_call.xml', '+14155550102', 'Bolt Bikes',
                 'X-Promo-Code: GOLDPASS', 40010, 5072, TALK_MS=3000)
    sess = api.by_external(promo.call_id)
    promo.admitted = time.time()
    assert sess['tier'] == 'gold' and sess['customer_id'] == 'c-1002', sess
    assert 'promotion' in json.dumps(sess['explanation']).lower(), sess['explanation']
    wait_path_rates(PATH_CUST2, promo.ip, AGENT_IP, TIERS['gold'][0], TIERS['gold'][0])
    promo.wait(s)
    api.wait(sess['id'], lambda x: x['state'] == 'ended', 'ended')
    time.sleep(0.3)

    agent_pkts = at_agent.stop()
    caller_pkts = {h: c.stop() for h, c in at_caller.items()}
    tls_pkts, udp_pkts = tls_cap.stop(), udp_cap.stop()

    # Nothing the network started: every session here came from the API.
    by_network = [x for x in api.sessions() if not x.get('external_id')]
    assert not by_network, by_network
    assert not controller.grep('admitted: 10.0.0.'), controller.grep('admitted: 10.0.0.')

    # Real RTP at the receivers, both ways, with the tier's DSCP.
    for tier, call in list(calls.items()) + [('gold', promo)]:
        _, _, dscp = TIERS[tier]
        # From its admission to the first re-INVITE (or the BYE).
        start, end = call.admitted + 0.5, call.started + call.talk
        to_agent = rtp(agent_pkts, call.ip, AGENT_IP, AGENT_MEDIA, start, end)
        back = rtp(caller_pkts[call.host.name], AGENT_IP, call.ip, call.media_port, start, end)
        secs = end - start
        for name, pkts in (('to the agent', to_agent), ('back to the caller', back)):
            # The tier's rate is far above a call's: nothing may be lost.
            assert len(pkts) >= 0.9 * RTP_PPS * secs, (call.tag, name, len(pkts), secs)
            tos = {p[1] for p in pkts}
            assert tos == {tos_of(dscp)}, (call.tag, name, sorted(tos))
        call.pps = (len(to_agent) / secs, len(back) / secs)

    for tier, call in calls.items():
        rate, hold, dscp = TIERS[tier]
        # On hold the caller keeps sending (a=sendonly) G.711, above the
        # hold rate: what reaches the agent is the hold rate, counted in
        # whole frames as the meters count them. From the moment every
        # switch held the call, once the meter's bucket has drained (its
        # size over what the caller sends above the rate), to the 200 OK
        # of the resume (the PUT that resumes comes after it).
        resume_ok = sip_time(udp_pkts, call.call_id, b'SIP/2.0 200', b'CSeq: 3 INVITE')
        sent_kbps = RTP_PPS * (FRAME_OVERHEAD + 172) * 8 / 1000
        assert sent_kbps > 1.2 * hold, (sent_kbps, hold)
        start = call.held + call.hold_bucket / (sent_kbps - hold) + 0.3
        assert resume_ok - start >= 2.0, ('hold window too short', tier, start, resume_ok)
        held_pkts = rtp(agent_pkts, call.ip, AGENT_IP, AGENT_MEDIA, start, resume_ok)
        held_kbps = sum((len(p[7]) + FRAME_OVERHEAD) * 8 for p in held_pkts) / 1000 \
            / (resume_ok - start)
        assert 0.9 * hold <= held_kbps <= 1.1 * hold, (tier, held_kbps, hold, len(held_pkts),
                                                       resume_ok - start)
        # Resumed: every packet again, both ways, with the tier's DSCP,
        # until the BYE.
        bye = sip_time(udp_pkts, call.call_id, b'BYE ', b'CSeq: 4 BYE')
        after = bye - call.resumed
        assert after >= 1.0, ('resume window too short', tier, call.resumed, bye)
        to_agent = rtp(agent_pkts, call.ip, AGENT_IP, AGENT_MEDIA, call.resumed, bye)
        back = rtp(caller_pkts[call.host.name], AGENT_IP, call.ip, call.media_port,
                   call.resumed, bye)
        for name, pkts in (('to the agent', to_agent), ('back to the caller', back)):
            assert len(pkts) >= 0.9 * RTP_PPS * after, (call.tag, 'resumed', name,
                                                        len(pkts), after)
            assert {p[1] for p in pkts} == {tos_of(dscp)}, (call.tag, 'resumed', name)
        figure('  kamailio: %s call %s (%s): session %s %s via the API, tier %s on %s; '
               'RTP %.0f pkt/s to the agent, %.0f back, DSCP %d both ways; hold (CTI): '
               'meters %d/%d kbit/s on every switch, the caller\'s %.1f kbit/s arrived at '
               '%.1f kbit/s (hold rate %d, %.0f %%, %.1f s); resumed at %d kbit/s: %.0f/%.0f '
               'pkt/s; BYE: flows and %d meters gone'
               % (tier, call.call_id, call.ip, call.session['id'],
                  call.session['explanation']['reason'], tier, ' '.join(paths[tier]),
                  call.pps[0], call.pps[1], dscp, call.hold_rates[0], call.hold_rates[1],
                  sent_kbps, held_kbps, hold, 100 * held_kbps / hold, resume_ok - start, rate,
                  len(to_agent) / after, len(back) / after,
                  sum(len(v) for v in call.meter_ids.values())))
    figure('  kamailio: promotion call %s (Bolt Bikes, bronze, X-Promo-Code GOLDPASS): '
           'tier gold (%s), RTP %.0f pkt/s, DSCP 46' % (
               promo.call_id, sess['explanation']['reason'], promo.pps[0]))

    # The edge-site hop, where it enters the site switch: TLS and nothing
    # else; the customers' leg: SIP anyone can read.
    to_site = b''.join(p[7] for p in tls_pkts if p[2] == 'tcp' and p[3] == EDGE_IP
                       and p[6] == 5061)
    from_site = b''.join(p[7] for p in tls_pkts if p[2] == 'tcp' and p[3] == SITE_IP
                         and p[4] == 5061)
    sip_udp = [p for p in tls_pkts if p[2] == 'udp']
    clear = b''.join(p[7] for p in udp_pkts)
    figure('  kamailio: edge-site hop on %s: %d bytes to the site, %d back, TLS records only '
           '(no SIP readable); customers\' UDP leg on %s: %d bytes of SIP in clear'
           % (tls_intf, len(to_site), len(from_site), udp_intf, len(clear)))
    assert not sip_udp, sip_udp[:3]
    assert len(to_site) > 2000 and len(from_site) > 2000, (len(to_site), len(from_site))
    assert to_site[:2] == b'\x16\x03', to_site[:8]
    assert b'\x17\x03\x03' in to_site and b'\x17\x03\x03' in from_site
    words = [b'INVITE sip:', b'SIP/2.0', b'Call-ID', b'X-Promo-Code', b'GOLDPASS',
             b'4155550101', b'4155550102'] + [c.call_id.encode()
                                               for c in list(calls.values()) + [promo]]
    for w in words:
        assert w not in to_site and w not in from_site, w
    for c in list(calls.values()) + [promo]:
        assert c.call_id.encode() in clear, c.call_id
    assert b'X-Promo-Code: GOLDPASS' in clear


def test_session_requested_before_first_packet(tierflow_bin, redis, controller_factory,
                                              mn_net_factory):
    require_tools()
    load_crm(tierflow_bin, redis)
    controller = controller_factory()
    controller.start()
    net = mn_net_factory(controller)(ContactCenterTopo(customers=2, agents=1))
    api = Api(controller, token=None)
    client, server = net.get('cust2', 'agent1')
    rate = TIERS['bronze'][0]
    body = {'external_id': 'before-first-packet', 'proto': 'udp', 'kind': 'other',
            'client': {'ip': client.IP(), 'port': None},
            'server': {'ip': server.IP(), 'port': 5301},
            'client_data': {'phone': '+14155550102'}}
    t0 = time.monotonic()
    status, sess = api.request('POST', '/sessions', body)
    answered = time.monotonic() - t0
    assert status == 201, (status, sess)
    # Neither host has sent anything: the session waits, with no path.
    assert sess['path'] == [] and sess['tier'] == 'bronze', sess
    assert sess['external_id'] == 'before-first-packet', sess
    time.sleep(1.0)
    assert api.get('/sessions/' + sess['id'])['path'] == []
    assert not any(session_flows(sw.name, client.IP(), server.IP()) for sw in net.switches)
    again, same = api.request('POST', '/sessions', body)
    assert again == 200 and same['id'] == sess['id'], (again, same)

    # Their first packets: both located, the session goes on the path.
    t1 = time.monotonic()
    out = client.cmd('ping -c1 -W2 %s' % server.IP())
    assert ' 0% packet loss' in out, out
    placed = api.wait(sess['id'], lambda x: x['path'], 'on a path', timeout=10)
    placed_secs = time.monotonic() - t1
    assert names_of(net, placed) == PATH_CUST2, placed['path']
    wait_path_rates(PATH_CUST2, client.IP(), server.IP(), rate, rate)

    # Three times the tier's rate, UDP, from the server to the client
    # (-R: the client receives, its intervals are what arrived).
    offered = 3 * rate // 1000
    iperf = server.popen(['iperf3', '-s', '-p', '5301', '-1'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    net.servers.append(iperf)
    time.sleep(0.5)
    proc = client.popen(['iperf3', '-c', server.IP(), '-p', '5301', '-u', '-b', '%dM' % offered,
                         '-l', '1200', '-t', '7', '-i', '0.5', '-R', '-J'],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)
    try:
        iv = [(i['sum']['start'], i['sum']['bits_per_second'] / 1e6)
              for i in json.loads(out)['intervals']]
    except (ValueError, KeyError) as e:
        raise AssertionError('iperf3 gave no result (%s): %s %s' % (e, out[-500:], err[-500:]))
    # The first second drains the meter's bucket (half a second of the rate).
    steady = [r for a, r in iv if a >= 1.0]
    got = sum(steady) / len(steady)
    figure('  requested before the first packet: POST answered in %.1f ms with no path '
           '(waiting); placed on %s %.2f s after the hosts\' first packet; iperf3 UDP at %d '
           'Mbit/s arrived at %.2f Mbit/s (tier bronze %d Mbit/s, %.0f %%)'
           % (answered * 1000, ' '.join(PATH_CUST2), placed_secs, offered, got,
              rate / 1000, 100 * got / (rate / 1000)))
    assert 0.9 * rate / 1000 <= got <= 1.1 * rate / 1000, iv
