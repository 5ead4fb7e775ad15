"""The Kamailio integration on loopback, end to end.

A fake Tierflow API (records every request), the site proxy (site.cfg) and
the edge proxy (edge.cfg) as two real Kamailio instances with certificates
made by make-certs.sh, a sipp UAS as the agent and sipp UACs as customers:

    customer sipp --UDP--> edge --TLS--> site --UDP--> agent sipp
                                           \\--HTTP--> fake API

Checks: a call with P-Asserted-Identity and X-Promo-Code that is held and
resumed gives exactly one POST /sessions with the call's media addresses
and the caller's data, a PUT hold, a PUT active and a DELETE of the posted
id, all with the bearer token; a call with only From gives a POST without a
promotion code and a DELETE; and the edge-to-site hop is TLS (a capture on
lo holds no SIP in clear there, while the customer's UDP leg does).

Run as root with Debian's python3 after install.sh:
    /usr/bin/python3 -m pytest -v integrations/kamailio/test_loopback.py
Nothing here touches Open vSwitch or Mininet; every address is in
127.77.0.0/24 except the fake API (127.0.0.1, a free port).
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SIPP_DIR = HERE / 'sipp'

EDGE = '127.77.0.2'
SITE = '127.77.0.3'
AGENT = '127.77.0.4'
CUSTOMER = '127.77.0.5'
SIP_PORT = 5060
TLS_PORT = 5061
AGENT_MEDIA = 20000
TOKEN = 'tf-loopback-token.42'

pytestmark = [
    pytest.mark.skipif(not shutil.which('kamailio'), reason='kamailio not installed (install.sh)'),
    pytest.mark.skipif(not shutil.which('sipp'), reason='sipp not installed (install.sh)'),
    pytest.mark.skipif(os.geteuid() != 0, reason='the capture on lo needs root'),
]


class FakeApi:
    """POST /api/v1/sessions, PUT /api/v1/sessions/{id}/state and DELETE
    /api/v1/sessions/{id}, as the contract says; every request is kept with
    its headers and JSON body."""

    def __init__(self):
        self.requests = []
        self.sessions = {}  # external_id -> id
        # Call-ID prefix -> how many more requests about such calls answer
        # 503 (-1: all of them).
        self.failing = {}
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                n = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(n) if n else b''
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode('latin-1')
                with api.lock:
                    api.requests.append({'method': self.command, 'path': self.path,
                                         'headers': {k.lower(): v for k, v in self.headers.items()},
                                         'body': body, 't': time.monotonic()})
                    status, out = api.answer(self.command, self.path, self.headers, body)
                data = json.dumps(out).encode() if out is not None else b''
                self.send_response(status)
                if out is not None:
                    self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = do_DELETE = do_GET = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, method, path, headers, body):
        if headers.get('Authorization') != 'Bearer ' + TOKEN:
            return 401, {'error': 'missing or wrong token'}
        if method == 'POST' and path == '/api/v1/sessions':
            if not isinstance(body, dict) or not isinstance(body.get('external_id'), str):
                return 422, {'error': 'external_id: missing'}
            ext = body['external_id']
            for prefix, left in self.failing.items():
                if ext.startswith(prefix) and left != 0:
                    self.failing[prefix] = left - 1 if left > 0 else left
                    return 503, {'error': 'switches busy, try again'}
            if ext in self.sessions:
                return 200, self.view(self.sessions[ext], body)
            sid = 's-%010d' % (len(self.sessions) + 1)
            self.sessions[ext] = sid
            return 201, self.view(sid, body)
        m = re.fullmatch(r'/api/v1/sessions/(s-\d{10})(/state)?', path)
        if m and m.group(1) in self.sessions.values():
            if method == 'PUT' and m.group(2):
                if not isinstance(body, dict) or body.get('state') not in ('hold', 'active'):
                    return 422, {'error': 'state: must be hold or active'}
                return 200, {'id': m.group(1), 'state': body['state']}
            if method == 'DELETE' and not m.group(2):
                return 204, None
        return 404, {'error': 'no such session'}

    @staticmethod
    def view(sid, body):
        return {'id': sid, 'external_id': body['external_id'], 'state': 'active',
                'tier': 'gold', 'client': body['client'], 'server': body['server'],
                'explanation': {'reason': 'automatic'}}

    def of_call(self, external_id):
        """The requests about one call: its POSTs, then everything naming
        the session id they got."""
        with self.lock:
            reqs = list(self.requests)
        posts = [r for r in reqs if r['method'] == 'POST'
                 and isinstance(r['body'], dict) and r['body'].get('external_id') == external_id]
        sid = self.sessions.get(external_id)
        rest = [r for r in reqs if sid and r['path'].startswith('/api/v1/sessions/%s' % sid)]
        return posts, sid, rest

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError('timed out waiting for ' + what)


def tcp_listening(addr, port):
    try:
        with socket.create_connection((addr, port), timeout=0.5):
            return True
    except OSError:
        return False


class Stack:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        self.api = None

    def spawn(self, name, argv):
        log = open(self.tmp / (name + '.log'), 'wb')
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             cwd=self.tmp)
        self.procs.append((name, p))
        return p

    def log(self, name):
        f = self.tmp / (name + '.log')
        return f.read_text(errors='replace') if f.exists() else ''

    def kamailio(self, name, cfg, defines):
        run = self.tmp / ('run-' + name)
        run.mkdir()
        argv = ['kamailio', '-f', str(HERE / cfg), '-DD', '-E', '-Y', str(run),
                '-P', str(run / 'kamailio.pid'), '-w', str(run)]
        for d in defines:
            argv += ['-A', d]
        return self.spawn(name, argv)

    def stop(self, name):
        for n, p in self.procs:
            if n == name and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def close(self):
        for name, _ in reversed(self.procs):
            self.stop(name)
        if self.api:
            self.api.close()

    def call(self, scenario, tag, media_port, pause_ms=500, timeout=30):
        """One customer call through the edge, each pause of the scenario
        lasting pause_ms; returns its Call-ID. scenario: a file name in
        sipp/, or a path."""
        p = self.spawn('uac-' + tag, [
            'sipp', '%s:%d' % (EDGE, SIP_PORT), '-sf', str(SIPP_DIR / scenario),
            '-d', str(pause_ms),
            '-i', CUSTOMER, '-p', str(5070 + media_port % 100), '-mi', CUSTOMER,
            '-mp', str(media_port), '-s', 'agent', '-m', '1', '-l', '1', '-nostdin',
            '-cid_str', tag + '-%u-%p@%s', '-timeout', str(timeout), '-timeout_error',
            '-trace_err', '-error_file', str(self.tmp / ('uac-%s-errors.log' % tag))])
        rc = p.wait(timeout=timeout + 10)
        assert rc == 0, 'the call did not complete (sipp rc %s)\n--- site\n%s\n--- edge\n%s' % (
            rc, self.log('site')[-3000:], self.log('edge')[-3000:])
        return '%s-1-%d@%s' % (tag, p.pid, CUSTOMER)


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('kamailio')
    s = Stack(tmp)
    try:
        certs = tmp / 'certs'
        subprocess.run([str(HERE / 'make-certs.sh'), str(certs)], check=True,
                       env=dict(os.environ, EDGE_IPS=EDGE, SITE_IPS=SITE),
                       stdout=subprocess.DEVNULL)
        s.api = FakeApi()

        # The capture: the edge-site TLS hop, and the customer's UDP leg to
        # show that the capture does see SIP where it is in clear.
        s.pcap = tmp / 'lo.pcap'
        tcpdump = s.spawn('tcpdump', [
            'tcpdump', '-i', 'lo', '-n', '-U', '-s', '0', '-w', str(s.pcap),
            '(tcp and host %s and port %d) or (udp and host %s and port %d)' % (
                SITE, TLS_PORT, EDGE, SIP_PORT)])
        wait_for(lambda: 'listening on' in s.log('tcpdump') or tcpdump.poll() is not None,
                 10, 'tcpdump')
        assert tcpdump.poll() is None, s.log('tcpdump')

        s.kamailio('site', 'site.cfg', [
            'SITE_TLS_LISTEN=tls:%s:%d' % (SITE, TLS_PORT),
            'SITE_UDP_LISTEN=udp:%s:%d' % (SITE, SIP_PORT),
            'AGENTS_URI="sip:%s:%d"' % (AGENT, SIP_PORT),
            'TLS_CONFIG="%s"' % (certs / 'tls-site.cfg'),
            'TIERFLOW_API="http://127.0.0.1:%d/api/v1"' % s.api.port,
            'TIERFLOW_API_TOKEN="%s"' % TOKEN,
        ])
        s.kamailio('edge', 'edge.cfg', [
            'EDGE_UDP_LISTEN=udp:%s:%d' % (EDGE, SIP_PORT),
            'EDGE_TLS_LISTEN=tls:%s:%d' % (EDGE, TLS_PORT),
            'SITE_URI="sip:%s:%d;transport=tls"' % (SITE, TLS_PORT),
            'TLS_CONFIG="%s"' % (certs / 'tls-edge.cfg'),
        ])
        for name, addr in (('site', SITE), ('edge', EDGE)):
            wait_for(lambda: tcp_listening(addr, TLS_PORT) or dict(s.procs)[name].poll() is not None,
                     20, name + ' listening')
            assert dict(s.procs)[name].poll() is None, '%s died:\n%s' % (name, s.log(name)[-3000:])

        s.spawn('uas', ['sipp', '-sf', str(SIPP_DIR / 'uas_agent.xml'), '-i', AGENT,
                        '-p', str(SIP_PORT), '-mi', AGENT, '-mp', str(AGENT_MEDIA), '-nostdin',
                        '-trace_err', '-error_file', str(tmp / 'uas-errors.log')])
        time.sleep(1)
        yield s
    finally:
        s.close()


def api_log(stack):
    with stack.api.lock:
        return '\n'.join('%s %s %s' % (r['method'], r['path'], json.dumps(r['body']))
                         for r in stack.api.requests)


def wait_ended(stack, call_id):
    def ended():
        _, sid, rest = stack.api.of_call(call_id)
        return sid and any(r['method'] == 'DELETE' for r in rest)
    try:
        wait_for(ended, 10, 'the DELETE of call ' + call_id)
    except AssertionError:
        raise AssertionError('no DELETE for %s; API saw:\n%s\n--- site\n%s' % (
            call_id, api_log(stack), stack.log('site')[-4000:]))


def test_call_held_and_resumed_with_promotion_code(stack):
    call_id = stack.call('uac_hold.xml', 'hold', 40000)
    wait_ended(stack, call_id)
    posts, sid, rest = stack.api.of_call(call_id)

    assert len(posts) == 1, api_log(stack)
    print('POST /api/v1/sessions', json.dumps(posts[0]['body'], sort_keys=True))
    assert posts[0]['body'] == {
        'external_id': call_id,
        'proto': 'udp',
        'kind': 'voice',
        'client': {'ip': CUSTOMER, 'port': 40000},
        'server': {'ip': AGENT, 'port': AGENT_MEDIA},
        # P-Asserted-Identity wins over From (4155550199).
        'client_data': {'phone': '+14155550100', 'promo_code': 'SPRING'},
    }
    assert posts[0]['headers']['content-type'] == 'application/json'

    calls = [(r['method'], r['path'], r['body']) for r in rest]
    for c in calls:
        print(*c)
    assert calls == [
        ('PUT', '/api/v1/sessions/%s/state' % sid, {'state': 'hold'}),
        ('PUT', '/api/v1/sessions/%s/state' % sid, {'state': 'active'}),
        ('DELETE', '/api/v1/sessions/%s' % sid, None),
    ], api_log(stack)
    for r in posts + rest:
        assert r['headers'].get('authorization') == 'Bearer ' + TOKEN, r
    assert 'tierflow: call %s is session %s (tier gold)' % (call_id, sid) in stack.log('site')


HOLD_OFFER = '''c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=sendonly
'''


@pytest.mark.parametrize('variant,offer', [
    ('inactive', HOLD_OFFER.replace('a=sendonly', 'a=inactive')),
    # RFC 2543 hold: the address zeroed, no direction attribute.
    ('zeroed', HOLD_OFFER.replace('c=IN IP[media_ip_type] [media_ip]', 'c=IN IP4 0.0.0.0')
     .replace('      a=sendonly\n', '')),
    # The direction at session level, before the m= line.
    ('session', HOLD_OFFER.replace('      a=sendonly\n', '')
     .replace('t=0 0\n', 't=0 0\n      a=sendonly\n')),
], ids=['inactive', 'zeroed', 'session-level'])
def test_other_ways_of_holding(stack, variant, offer):
    xml = (SIPP_DIR / 'uac_hold.xml').read_text()
    assert HOLD_OFFER in xml
    scenario = stack.tmp / ('uac_hold_%s.xml' % variant)
    scenario.write_text(xml.replace(HOLD_OFFER, offer))
    call_id = stack.call(scenario, variant, 40060 + 2 * len(variant))
    wait_ended(stack, call_id)
    posts, sid, rest = stack.api.of_call(call_id)
    assert len(posts) == 1, api_log(stack)
    calls = [(r['method'], r['body']) for r in rest]
    print(variant, calls)
    assert calls == [('PUT', {'state': 'hold'}), ('PUT', {'state': 'active'}), ('DELETE', None)]


def test_call_with_from_only_and_no_promotion_code(stack):
    call_id = stack.call('uac_from_only.xml', 'plain', 40010)
    wait_ended(stack, call_id)
    posts, sid, rest = stack.api.of_call(call_id)

    assert len(posts) == 1, api_log(stack)
    print('POST /api/v1/sessions', json.dumps(posts[0]['body'], sort_keys=True))
    assert posts[0]['body'] == {
        'external_id': call_id,
        'proto': 'udp',
        'kind': 'voice',
        'client': {'ip': CUSTOMER, 'port': 40010},
        'server': {'ip': AGENT, 'port': AGENT_MEDIA},
        'client_data': {'phone': '4155550177'},
    }
    calls = [(r['method'], r['path']) for r in rest]
    print(calls)
    assert calls == [('DELETE', '/api/v1/sessions/%s' % sid)], api_log(stack)
    for r in posts + rest:
        assert r['headers'].get('authorization') == 'Bearer ' + TOKEN, r


def test_late_offer_call_posted_on_the_ack(stack):
    # INVITE without SDP: the agent's media comes in the 200 OK's offer, the
    # caller's in the ACK's answer; the POST waits for the ACK.
    call_id = stack.call('uac_late_offer.xml', 'late', 40050)
    wait_ended(stack, call_id)
    posts, sid, rest = stack.api.of_call(call_id)
    assert len(posts) == 1, api_log(stack)
    print('POST /api/v1/sessions', json.dumps(posts[0]['body'], sort_keys=True))
    assert posts[0]['body'] == {
        'external_id': call_id,
        'proto': 'udp',
        'kind': 'voice',
        'client': {'ip': CUSTOMER, 'port': 40050},
        'server': {'ip': AGENT, 'port': AGENT_MEDIA},
        'client_data': {'phone': '4155550177'},
    }
    assert [(r['method'], r['path']) for r in rest] == [
        ('DELETE', '/api/v1/sessions/%s' % sid)], api_log(stack)


def test_api_refusing_a_session_does_not_break_the_call(stack):
    # Every POST about this call answers 503: the call still completes (sipp
    # checked every reply), the proxy logs the failure and retries.
    stack.api.failing['down-'] = -1
    call_id = stack.call('uac_from_only.xml', 'down', 40030)
    posts, sid, _ = stack.api.of_call(call_id)
    assert posts and sid is None
    line = 'tierflow: POST /sessions for call %s failed (503), attempt 0' % call_id
    print(line)
    assert line in stack.log('site')
    # The call ended before a retry was due: the retry is dropped, nothing
    # is asked for a call that is gone.
    wait_for(lambda: 'tierflow: call %s ended before its session was asked for' % call_id
             in stack.log('site'), 10, 'the dropped retry')
    time.sleep(0.5)
    posts, sid, _ = stack.api.of_call(call_id)
    assert len(posts) == 1 and sid is None, api_log(stack)


def test_post_retried_and_hold_that_came_meanwhile_applied(stack):
    # The first POST answers 503; the retry, 2 s later, comes after the hold
    # re-INVITE (1.5 s into the call) and before the resume (3 s): the hold
    # is put as soon as the session exists, then the resume and the DELETE
    # follow in order.
    stack.api.failing['retry-'] = 1
    call_id = stack.call('uac_hold.xml', 'retry', 40040, pause_ms=1500)
    wait_ended(stack, call_id)
    posts, sid, rest = stack.api.of_call(call_id)
    assert len(posts) == 2, api_log(stack)
    assert posts[0]['body'] == posts[1]['body']
    assert 1.9 <= posts[1]['t'] - posts[0]['t'] <= 3.0
    calls = [(r['method'], r['path'], r['body']) for r in rest]
    for c in calls:
        print(*c)
    assert calls == [
        ('PUT', '/api/v1/sessions/%s/state' % sid, {'state': 'hold'}),
        ('PUT', '/api/v1/sessions/%s/state' % sid, {'state': 'active'}),
        ('DELETE', '/api/v1/sessions/%s' % sid, None),
    ], api_log(stack)
    # The hold was asked for while the POST waited for its retry: it goes
    # out right after the session exists, not with a later re-INVITE.
    assert rest[0]['t'] - posts[1]['t'] < 0.5
    assert rest[1]['t'] - rest[0]['t'] > 0.5


def read_pcap(path):
    """(proto, src, sport, dst, dport, payload) of every IPv4 TCP/UDP packet."""
    data = path.read_bytes()
    magic = struct.unpack('<I', data[:4])[0]
    endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    linktype = struct.unpack(endian + 'I', data[20:24])[0]
    link_len = {1: 14, 113: 16, 276: 20}[linktype]
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(endian + 'I', data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack('!H', ip[2:4])[0]
        proto, src, dst = ip[9], socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        l4 = ip[ihl:total]
        if proto == 6 and len(l4) >= 20:
            sport, dport = struct.unpack('!HH', l4[:4])
            out.append(('tcp', src, sport, dst, dport, l4[(l4[12] >> 4) * 4:]))
        elif proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack('!HH', l4[:4])
            out.append(('udp', src, sport, dst, dport, l4[8:]))
    return out


def test_edge_to_site_hop_is_tls(stack):
    # A call of its own, so this test stands alone too.
    call_id = stack.call('uac_from_only.xml', 'tls', 40020)
    wait_ended(stack, call_id)
    time.sleep(0.5)
    stack.stop('tcpdump')
    packets = read_pcap(stack.pcap)

    udp = b''.join(p[5] for p in packets if p[0] == 'udp')
    # Towards the site: from the edge to the site's TLS port.
    to_site = b''.join(p[5] for p in packets
                       if p[0] == 'tcp' and p[1] == EDGE and p[3] == SITE and p[4] == TLS_PORT)
    from_site = b''.join(p[5] for p in packets
                         if p[0] == 'tcp' and p[1] == SITE and p[2] == TLS_PORT)
    print('customer UDP leg: %d bytes, INVITE in clear: %s' % (len(udp), b'INVITE sip:' in udp))
    print('edge->site TLS: %d bytes, first record type 0x%02x; site->edge: %d bytes' % (
        len(to_site), to_site[0] if to_site else 0, len(from_site)))
    print('SIP in clear on the TLS hop: %s' % any(
        s in to_site + from_site for s in (b'INVITE sip:', b'SIP/2.0', call_id.encode())))

    # The capture works: the customer's leg shows this call in clear...
    assert b'INVITE sip:' in udp and call_id.encode() in udp
    # ...and the same call crossed the edge-site hop, where nothing is readable.
    assert len(to_site) > 1000 and len(from_site) > 1000
    for s in (b'INVITE sip:', b'SIP/2.0', b'Call-ID', call_id.encode(), b'X-Promo-Code'):
        assert s not in to_site and s not in from_site, s
    # TLS records: the first bytes the edge sent are a handshake (0x16, 3.x),
    # and the call itself went as application data (0x17).
    assert to_site[0] == 0x16 and to_site[1] == 0x03, to_site[:8]
    assert b'\x17\x03\x03' in to_site and b'\x17\x03\x03' in from_site
