"""VLANs, trunks, and Tierflow as the IP router between subnets (issue 11),
against real Open vSwitch in Mininet.

- Two switches with a trunk, VLANs 10 and 20 on both, not routed: hosts of
  one VLAN reach each other across the trunk, hosts of different VLANs
  never do, a broadcast in VLAN 10 never reaches VLAN 20 (tcpdump), and a
  host behind a desk switch, tagged on a trunk port, reaches its VLAN.
- Through the API: a port moved from VLAN 10 to VLAN 20 loses its
  reachability to VLAN 10 at once, and reaches VLAN 20.
- Routed: three subnets on three VLANs over a ring of switches: every host
  pings every other host and its gateway, the receiver sees the TTL one
  less, a cut link re-routes, a VLAN without gateways stays unreachable.
- Sessions across subnets: the routed contact center, a gold and a bronze
  customer in the customer subnet, the services in the server subnet:
  each tier's rate measured across the routed path, the tier's DSCP at
  the receiver, meters and tier flows (with the routing rewrite at the
  ingress switch) on every switch of each path; a SIP call across subnets
  with its promotion code; a session requested through POST /sessions.

Figures go to conftest's figure().
"""

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, figure
from test_qos import assert_tier_rate, mbps
from tierflow_mn import RoutedContactCenterTopo, RoutedRingTopo, VlanTrunkTopo

SIPP_DIR = Path(__file__).resolve().parent / 'sip'
ROUTED_CRM = REPO / 'crm' / 'contact-center-routed.json'
ROUTER_MAC = '0e:74:66:00:00:01'
#: Tier rates of the sample CRM, kbit/s.
GOLD, BRONZE = 50_000, 5_000
#: Customer-to-site paths of the (routed) contact center.
PATH_CUST1 = ['edge1', 'core1', 'core3', 'site']
PATH_CUST2 = ['edge2', 'core2', 'core3', 'site']


def ofctl(*args):
    r = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13'] + list(args),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, 'ovs-ofctl %s: %s' % (args, r.stderr)
    return r.stdout


def api(controller, method, path, body=None):
    """One REST call to the controller (no token configured): (status, JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request('http://127.0.0.1:%d/api/v1%s' % (controller.api_port, path),
                                 data=data, method=method)
    req.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b'null')
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b'null')


def load(tierflow_bin, redis, tmp_path, crm):
    path = tmp_path / 'crm.json'
    path.write_text(json.dumps(crm))
    r = subprocess.run([tierflow_bin, 'crm', 'load', str(path), '--redis', redis.url],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, 'crm load failed: %s %s' % (r.stdout, r.stderr)


@pytest.fixture
def vlan_net(tierflow_bin, redis, controller_factory, mn_net_factory, tmp_path):
    """vlan_net(topo, crm={}, *flags): the topology's VLANs and ports (and
    `crm`) loaded into Redis, a controller started, the network up."""
    def make(topo, crm=None, *flags):
        merged = dict(crm or {})
        merged.update(topo.tierflow_config())
        load(tierflow_bin, redis, tmp_path, merged)
        c = controller_factory(*flags)
        c.start()
        return c, mn_net_factory(c)(topo)
    return make


def ping(src, dst_ip, count=1, wait=2):
    """(received, output) of `ping -c count` from host src."""
    out = src.cmd('ping -n -c %d -W %d %s' % (count, wait, dst_ip))
    m = re.search(r'(\d+) received', out)
    return (int(m.group(1)) if m else 0), out


def reaches(src, dst_ip, tries=3):
    """src gets an answer from dst_ip (the first packets may wait while
    ARP, Tierflow's router included, resolves the way)."""
    for _ in range(tries):
        got, _ = ping(src, dst_ip, count=1, wait=2)
        if got:
            return True
    return False


def never_reaches(src, dst_ip):
    got, out = ping(src, dst_ip, count=3, wait=1)
    return got == 0


# ---------------------------------------------------------------- bridged


def test_trunk_vlans_bridge_within_a_vlan_never_between(vlan_net):
    controller, net = vlan_net(VlanTrunkTopo())
    h1, h2, h3, h4, h5, h6, h7 = net.get('h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7')
    # One VLAN, across the trunk (and to the tagged host behind the desk);
    # unconfigured ports are VLAN 1, tagged 1 on the trunk.
    for a, b in ((h1, h3), (h2, h4), (h5, h1), (h5, h3), (h3, h1), (h6, h7)):
        assert reaches(a, b.IP()), '%s -> %s:\n%s' % (a, b, controller.tail())
    # Never between VLANs, on one switch or across the trunk.
    for a, b in ((h1, h2), (h1, h4), (h3, h2), (h4, h1), (h5, h4), (h2, h5), (h6, h1),
                 (h7, h4)):
        assert never_reaches(a, b.IP()), '%s reached %s' % (a, b)
    # A broadcast in VLAN 10 (ARPs for an address nobody has) reaches
    # VLAN 10's hosts, never VLAN 20's.
    caps = {h: h.popen(['tcpdump', '-l', '-n', '-i', '%s-eth0' % h.name,
                        'arp and host 10.0.0.77'],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for h in (h2, h3, h4, h5)}
    time.sleep(1.5)
    h1.cmd('ping -c 3 -W 1 10.0.0.77')
    time.sleep(0.5)
    seen = {}
    for h, p in caps.items():
        p.terminate()
        out, _ = p.communicate(timeout=10)
        seen[h.name] = len([ln for ln in out.splitlines() if 'who-has 10.0.0.77' in ln])
    figure('  VLANs bridged: broadcast ARPs from h1 (VLAN 10) seen by h3 %d, h5 (tagged) %d; '
           'by VLAN 20: h2 %d, h4 %d' % (seen['h3'], seen['h5'], seen['h2'], seen['h4']))
    assert seen['h3'] >= 1 and seen['h5'] >= 1, seen
    assert seen['h2'] == 0 and seen['h4'] == 0, seen
    # The trunk carries VLAN 10 tagged: the flows between s1 and s2 say so.
    s1 = ofctl('dump-flows', 's1')
    assert 'push_vlan:0x8100' in s1 and 'set_field:4106->vlan_vid' in s1, s1
    assert 'set_field:4097->vlan_vid' in s1, 'VLAN 1 untagged on the trunk:\n' + s1
    stats = controller.stop()
    # Frames the desk sent before its ports were tagged (untagged, on a
    # port without a native VLAN) are dropped and counted.
    figure('  VLANs bridged: %d frames dropped at their ingress port' % stats['vlan_dropped'])
    lines, _ = controller.switch_errors()
    assert lines == 0, controller.grep('OFPT_ERROR')


def test_a_port_moved_to_another_vlan_loses_its_old_reachability_at_once(vlan_net):
    controller, net = vlan_net(VlanTrunkTopo())
    h1, h3, h4 = net.get('h1', 'h3', 'h4')
    assert reaches(h3, h1.IP())
    # Keep traffic flowing h1 -> h3 while the port moves: the installed
    # path must go with the move, not idle out later.
    pinger = h1.popen(['ping', '-n', '-i', '0.1', '-c', '40', h3.IP()],
                      stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    port = net.get('s2').ports[net.get('s2').connectionsTo(h3)[0][0]]
    t0 = time.monotonic()
    status, body = api(controller, 'PUT', '/ports/0000000000000012/%d' % port,
                       {'dpid': '0000000000000012', 'port': port, 'native_vlan': 20,
                        'tagged_vlans': []})
    answered = time.monotonic() - t0
    assert status == 200, (status, body)
    out, _ = pinger.communicate(timeout=20)
    # Replies stopped within a few probes of the change.
    seqs = [int(s) for s in re.findall(r'icmp_seq=(\d+)', out)]
    last = max(seqs) if seqs else 0
    figure('  port moved VLAN 10 -> 20: PUT answered in %.0f ms; h1 -> h3 replies stopped '
           'after icmp_seq %d of 40' % (answered * 1000, last))
    assert last < 25, out
    assert never_reaches(h1, h3.IP()), 'h3 still reached from VLAN 10'
    assert never_reaches(h3, h1.IP()), 'h3 still reaches VLAN 10'
    # In VLAN 20 now.
    assert reaches(h3, h4.IP()), controller.tail()
    # An unknown VLAN is refused, naming the field; nothing changes.
    status, body = api(controller, 'PUT', '/ports/0000000000000012/%d' % port,
                       {'dpid': '0000000000000012', 'port': port, 'native_vlan': 99})
    assert status == 422 and body.get('field') == 'native_vlan', (status, body)
    assert reaches(h3, h4.IP())


# ---------------------------------------------------------------- routed


def ttl_of(out):
    m = re.search(r'ttl=(\d+)', out)
    return int(m.group(1)) if m else None


def test_routed_ring_every_host_reaches_every_host_and_gateway(vlan_net):
    controller, net = vlan_net(RoutedRingTopo())
    routed = [net.get(n) for n in ('a10', 'a20', 'b20', 'b30', 'c30', 'c10', 't30')]
    gateway = {h: '10.%s.0.1' % h.IP().split('.')[1] for h in routed}
    t0 = time.monotonic()
    for h in routed:
        got, out = ping(h, gateway[h], count=1, wait=2)
        assert got, '%s -> its gateway %s:\n%s' % (h, gateway[h], out)
        assert ttl_of(out) == 64, out
    failed = [(a.name, b.name) for a in routed for b in routed
              if a is not b and not reaches(a, b.IP())]
    pairs = len(routed) * (len(routed) - 1)
    figure('  routed ring: %d hosts in 3 subnets, %d pairs + gateways reached in %.1f s, %d failed'
           % (len(routed), pairs, time.monotonic() - t0, len(failed)))
    assert not failed, (failed, controller.tail())
    # The receiver sees the TTL one less across subnets, unchanged within.
    a10, b30, a20, b20, c30 = net.get('a10', 'b30', 'a20', 'b20', 'c30')
    _, routed_out = ping(a10, b30.IP())
    _, bridged_out = ping(a20, b20.IP())
    assert ttl_of(routed_out) == 63, routed_out
    assert ttl_of(bridged_out) == 64, bridged_out
    # The routing hop rewrites and decrements once: a10's switch does.
    s1 = ofctl('dump-flows', 's1', 'ip,nw_src=10.10.0.11,nw_dst=10.30.0.12')
    assert 'dec_ttl' in s1 and 'set_field:%s->eth_src' % ROUTER_MAC in s1, s1
    # A VLAN without gateways is never routed.
    x40 = net.get('x40')
    for h in (a10, b30, c30):
        assert never_reaches(x40, h.IP()), 'x40 reached %s' % h
        assert never_reaches(h, x40.IP()), '%s reached x40' % h
    assert never_reaches(x40, '10.40.0.1')
    # A cut link re-routes: a10 (s1) to c30 (s3) goes s1 -> s3 directly,
    # then round through s2.
    pinger = a10.popen(['ping', '-n', '-i', '0.1', '-c', '60', c30.IP()],
                       stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    net.configLinkStatus('s1', 's3', 'down')
    out, _ = pinger.communicate(timeout=30)
    seqs = sorted(int(s) for s in re.findall(r'icmp_seq=(\d+)', out))
    lost = 60 - len(seqs)
    figure('  routed ring: s1-s3 cut during a10 -> c30 pings every 100 ms: %d of 60 lost, '
           'last reply icmp_seq %d' % (lost, seqs[-1] if seqs else 0))
    assert seqs and seqs[-1] >= 55, out
    _, after = ping(a10, c30.IP())
    assert ttl_of(after) == 63, after
    s2 = ofctl('dump-flows', 's2', 'ip,nw_src=10.10.0.11,nw_dst=10.30.0.13')
    assert s2.count('cookie=0x746602') >= 1, 'not through s2 after the cut:\n' + s2
    stats = controller.stop()
    figure('  router: %d answered (ARP, echo), %d ARP requests sent, %d packets waited, '
           '%d dropped, %d routed paths'
           % (stats['router_answered'], stats['router_arp_sent'], stats['routed_waited'],
              stats['routed_dropped'], stats['routed_paths']))
    lines, _ = controller.switch_errors()
    assert lines == 0, controller.grep('OFPT_ERROR')


# ------------------------------------------------------ sessions, routed


def session_flows(switch, src, dst):
    out = ofctl('dump-flows', switch, 'ip,nw_src=%s,nw_dst=%s' % (src, dst))
    return [line for line in out.splitlines() if 'cookie=0x746603' in line]


def meters(switch):
    out = ofctl('dump-meters', switch)
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r'meter=(\d+) .*?rate=(\d+)', out, re.S)}


def session_line(controller, client, server, timeout=15.0):
    pat = re.compile(r'session (s-[0-9a-f]+) admitted: %s -> %s .*'
                     % (re.escape(client), re.escape(server)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = pat.search(controller.text())
        if m:
            return m.group(0)
        time.sleep(0.1)
    raise AssertionError('no session %s -> %s:\n%s' % (client, server, controller.tail()))


def iperf(host, server, secs):
    return host.popen(['iperf3', '-c', server, '-p', '5201', '-t', str(secs), '-J'],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def routed_cc(vlan_net, mode='remote'):
    crm = json.loads(ROUTED_CRM.read_text())
    crm.pop('vlans')   # the topology's own, with its ports
    return vlan_net(RoutedContactCenterTopo(customers=4, agents=1), crm, '--crm-mode', mode)


@pytest.fixture
def iperf_servers():
    """iperf_servers(*hosts): an iperf3 server on port 5201 of each host,
    stopped after the test (not daemonized: the test owns them)."""
    procs = []

    def start(*hosts):
        for h in hosts:
            procs.append(h.popen(['iperf3', '-s', '-p', '5201'],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def test_routed_tiers_rates_dscp_and_flows_on_every_switch(vlan_net, iperf_servers):
    controller, net = routed_cc(vlan_net)
    cust1, cust2, web, sip = net.get('cust1', 'cust2', 'web', 'sip')
    iperf_servers(web, sip)
    # Each customer reaches the server subnet through the router first.
    assert reaches(cust1, web.IP()) and reaches(cust2, sip.IP()), controller.tail()
    gold = iperf(cust1, web.IP(), 10)
    bronze = iperf(cust2, sip.IP(), 10)
    tos = web.cmd('timeout 5 tcpdump -l -c 5 -nv -i web-eth0 '
                  '"src 10.0.0.1 and tcp dst port 5201" 2>/dev/null')
    gold_mbps, bronze_mbps = mbps(gold), mbps(bronze)
    figure('  routed QoS: gold %.1f Mbit/s (tier %d; receiver %.1f), bronze %.1f Mbit/s '
           '(tier %d; receiver %.1f), customer subnet -> server subnet, at the same time'
           % (gold_mbps[0], GOLD // 1000, gold_mbps[1], bronze_mbps[0], BRONZE // 1000,
              bronze_mbps[1]))
    assert_tier_rate('routed gold', gold_mbps, GOLD)
    assert_tier_rate('routed bronze', bronze_mbps, BRONZE)
    assert 'tos 0xb8' in tos, 'gold DSCP 46 not seen at the receiver:\n' + tos
    # TTL one less at the receiver: routed.
    assert re.search(r'\bttl 63\b', tos), tos
    assert 'tier gold' in session_line(controller, '10.0.0.1', '10.0.3.101')
    assert 'tier bronze' in session_line(controller, '10.0.0.2', '10.0.3.100')
    for client, server, path, queue, dscp, rate in (
            ('10.0.0.1', '10.0.3.101', PATH_CUST1, 1, 46, GOLD),
            ('10.0.0.2', '10.0.3.100', PATH_CUST2, 3, 10, BRONZE)):
        on = [sw.name for sw in net.switches if session_flows(sw.name, client, server)]
        assert sorted(on) == sorted(path), (client, on)
        for i, sw in enumerate(path):
            fwd = session_flows(sw, client, server)
            rev = session_flows(sw, server, client)
            assert fwd and rev, (sw, fwd, rev)
            for flow in fwd + rev:
                assert 'priority=30000' in flow, flow
                assert re.search(r'meter:\d+', flow), flow
                assert 'set_queue:%d' % queue in flow, flow
                assert 'in_port=' in flow and ('dl_vlan=' in flow or 'vlan_tci=0x0000' in flow), flow
            # The forward direction is routed at the client's edge, the
            # reverse at the site switch: rewrite and TTL there only.
            assert ('dec_ttl' in fwd[0]) == (i == 0), (sw, fwd[0])
            assert ('dec_ttl' in rev[0]) == (i == len(path) - 1), (sw, rev[0])
            assert ('set_field:%d->ip_dscp' % dscp in fwd[0]) == (i == 0), (sw, fwd[0])
            assert rate in meters(sw).values(), (sw, meters(sw))
    stats = controller.stop()
    assert stats['sessions_admitted'] >= 2, stats
    lines, _ = controller.switch_errors()
    assert lines == 0, controller.grep('OFPT_ERROR')


def test_a_sip_call_and_a_requested_session_across_subnets(vlan_net):
    assert shutil.which('sipp'), 'sipp not installed (scripts/setup.sh installs sip-tester)'
    controller, net = routed_cc(vlan_net, 'replica')
    sip, cust2, cust3 = net.get('sip', 'cust2', 'cust3')
    assert reaches(cust2, sip.IP())
    uas = sip.popen(['sipp', '-sn', 'uas', '-i', sip.IP(), '-p', '5060', '-bg', '-trace_err'],
                    cwd=str(SIPP_DIR))
    time.sleep(1)
    uac = cust2.popen(['sipp', '%s:5060' % sip.IP(), '-sf', str(SIPP_DIR / 'uac_promo.xml'),
                       '-i', cust2.IP(), '-p', '5061', '-m', '1', '-l', '1',
                       '-timeout', '20', '-timeout_error'],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    flows, deadline = [], time.monotonic() + 10
    while not flows and time.monotonic() < deadline:
        flows = session_flows('edge2', cust2.IP(), sip.IP())
        time.sleep(0.2)
    rc = uac.wait(timeout=30)
    uas.kill()
    sip.cmd('pkill -f "sipp -sn uas"')
    assert rc == 0, 'the call did not complete across subnets (sipp rc %s): %s\n%s' % (
        rc, uac.stderr.read()[-1000:], controller.tail())
    line = session_line(controller, cust2.IP(), sip.IP())
    assert 'tier gold' in line and 'promotion' in line, line
    assert flows and 'set_field:46->ip_dscp' in flows[0] and 'dec_ttl' in flows[0], flows
    sid = re.search(r'session (s-[0-9a-f]+)', line).group(1)
    controller.wait_log('session %s ended: SIP BYE' % sid)
    # A session an application server requests, across subnets: its tier
    # is on every switch of the routed path before the answer.
    assert reaches(cust3, sip.IP())
    status, s = api(controller, 'POST', '/sessions', {
        'external_id': 'routed-1', 'proto': 'udp',
        'client': {'ip': cust3.IP(), 'port': 40000},
        'server': {'ip': sip.IP(), 'port': 20000}, 'kind': 'voice'})
    assert status == 201, (status, s)
    assert s['path'] == ['%016x' % d for d in (0x101, 0x201, 0x203, 0x301)], s
    for sw in PATH_CUST1:
        fl = session_flows(sw, cust3.IP(), sip.IP())
        assert fl and 'udp' in fl[0], (sw, fl)
    figure('  across subnets: SIP call with GOLDPASS tiered gold on edge2..site, '
           'requested session %s on %d switches' % (s['id'], len(s['path'])))
