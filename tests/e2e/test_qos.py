"""Customer-value QoS end to end (issue 4): Tierflow with the sample CRM
(crm/contact-center.json) in a real Redis, against real Open vSwitch in
Mininet's contact-center topology.

Checks: a gold and a bronze customer measured at the same time through the
same network get their tiers' rates; an unknown client gets the default
tier; a promotion code in a real SIP INVITE (sipp) lifts the caller; the
receiver sees the tier's DSCP; every switch of the path carries the session
flow with meter and set_queue, and OVSDB the tiers' HTB queues; with Redis
stopped, new sessions get the default tier and old ones keep theirs, and
everything resumes when Redis returns; after a switch reconnects, its
meters are back.
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, figure
from tierflow_mn import ContactCenterTopo, iperf_server

CRM = REPO / 'crm' / 'contact-center.json'
SIPP_DIR = Path(__file__).resolve().parent / 'sip'
#: Tier rates of the sample CRM, kbit/s.
GOLD, BRONZE, BEST_EFFORT = 50_000, 5_000, 2_000
#: The path every customer-to-site session takes in ContactCenterTopo:
#: edge, its core, the site's core (the triangle's direct side), site.
PATH_CUST1 = ['edge1', 'core1', 'core3', 'site']
PATH_CUST2 = ['edge2', 'core2', 'core3', 'site']


def ofctl(*args):
    r = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13'] + list(args),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, 'ovs-ofctl %s: %s' % (args, r.stderr)
    return r.stdout


def session_flows(switch, src, dst):
    """Tierflow's session flows (cookie kind 3) on `switch` from src to dst."""
    out = ofctl('dump-flows', switch, 'ip,nw_src=%s,nw_dst=%s' % (src, dst))
    return [line for line in out.splitlines() if 'cookie=0x746603' in line]


def meters(switch):
    """{meter_id: rate_kbps} read from the switch."""
    out = ofctl('dump-meters', switch)
    found = {}
    for m in re.finditer(r'meter=(\d+) .*?rate=(\d+)', out, re.S):
        found[int(m.group(1))] = int(m.group(2))
    return found


def load_crm(tierflow_bin, redis, path=CRM):
    r = subprocess.run([tierflow_bin, 'crm', 'load', str(path), '--redis', redis.url],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, 'crm load failed: %s %s' % (r.stdout, r.stderr)
    return r.stdout


def session_line(controller, client, server, timeout=10.0):
    """The controller's log line admitting client -> server."""
    pat = re.compile(r'session (s-[0-9a-f]+) admitted: %s -> %s .*' % (
        re.escape(client), re.escape(server)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = pat.search(controller.text())
        if m:
            return m.group(0)
        time.sleep(0.1)
    raise AssertionError('no session admitted %s -> %s:\n%s'
                         % (client, server, controller.tail()))


def iperf_servers(net):
    """iperf3 servers on the web and SIP hosts, stopped with the network
    (a daemonised one would outlive its host)."""
    for name in ('web', 'sip'):
        iperf_server(net, net.get(name))
    time.sleep(0.5)


def iperf(host, server, secs):
    """Starts iperf3 TCP from host to server:5201; returns the Popen."""
    return host.popen(['iperf3', '-c', server, '-p', '5201', '-t', str(secs), '-J'],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mbps(proc, timeout=60):
    """(iperf3's figure, the sender's; the receiver's) in Mbit/s."""
    out, err = proc.communicate(timeout=timeout)
    try:
        j = json.loads(out)
        return (j['end']['sum_sent']['bits_per_second'] / 1e6,
                j['end']['sum_received']['bits_per_second'] / 1e6)
    except (ValueError, KeyError) as e:
        raise AssertionError('iperf3 gave no result (%s): %s %s' % (e, out[-500:], err[-500:]))


def assert_tier_rate(label, got, tier_kbps):
    """PRODUCT.md's promise: 90-110 % of the tier's rate, as iperf3 (its
    sender, as PRODUCT.md's measurements) reports it over the transfer.
    The receiver's figure is lower by what was still in flight or queued
    in the sender's socket when the transfer ended (BENCHMARKS.md "Meter
    buckets"); it may not fall far below either."""
    sent, received = got
    want = tier_kbps / 1000
    assert 0.9 * want <= sent <= 1.1 * want, (label, got, tier_kbps)
    assert 0.85 * want <= received <= 1.1 * want, (label, got, tier_kbps)


@pytest.fixture
def qos_net(tierflow_bin, redis, controller_factory, mn_net_factory):
    """Sample CRM loaded, controller started with `mode`, contact-center
    network up; returns (controller, net)."""
    def make(mode='remote', customers=4):
        load_crm(tierflow_bin, redis)
        c = controller_factory('--crm-mode', mode, *os.environ.get('TF_EXTRA', '').split())
        c.start()
        net = mn_net_factory(c)(ContactCenterTopo(customers=customers, agents=1))
        return c, net
    return make


def test_gold_and_bronze_measured_at_once_with_dscp_meters_and_queues(qos_net):
    controller, net = qos_net('remote')
    cust1, cust2, cust4 = net.get('cust1'), net.get('cust2'), net.get('cust4')
    iperf_servers(net)
    # Same network, same time: gold to the web host, bronze to the SIP host.
    gold = iperf(cust1, '10.0.0.101', 10)
    bronze = iperf(cust2, '10.0.0.100', 10)
    # While both run, the receiver sees each tier's DSCP (TOS = DSCP << 2).
    web = net.get('web')
    tos = web.cmd('timeout 5 tcpdump -l -c 5 -nv -i web-eth0 '
                  '"src 10.0.0.1 and tcp dst port 5201" 2>/dev/null')
    gold_mbps, bronze_mbps = mbps(gold), mbps(bronze)
    figure('  QoS: gold %.1f Mbit/s (tier %d; receiver %.1f), bronze %.1f Mbit/s (tier %d; '
           'receiver %.1f), at the same time'
           % (gold_mbps[0], GOLD // 1000, gold_mbps[1], bronze_mbps[0], BRONZE // 1000,
              bronze_mbps[1]))
    assert_tier_rate('gold', gold_mbps, GOLD)
    assert_tier_rate('bronze', bronze_mbps, BRONZE)
    assert 'tos 0xb8' in tos, 'gold DSCP 46 not seen at the receiver:\n' + tos

    line = session_line(controller, '10.0.0.1', '10.0.0.101')
    assert 'tier gold' in line, line
    assert 'tier bronze' in session_line(controller, '10.0.0.2', '10.0.0.100')

    # Every switch of each path carries the session flow, both directions,
    # with its meter and the tier's queue; the ingress edge marks DSCP.
    for client, server, path, queue, dscp in (
            ('10.0.0.1', '10.0.0.101', PATH_CUST1, 1, 46),
            ('10.0.0.2', '10.0.0.100', PATH_CUST2, 3, 10)):
        on = [sw.name for sw in net.switches if session_flows(sw.name, client, server)]
        assert sorted(on) == sorted(path), (client, on)
        for i, sw in enumerate(path):
            for flow in session_flows(sw, client, server) + session_flows(sw, server, client):
                assert 'priority=30000' in flow, flow
                assert re.search(r'meter:\d+', flow), flow
                assert 'set_queue:%d' % queue in flow, flow
            fwd = session_flows(sw, client, server)[0]
            assert ('set_field:%d->ip_dscp' % dscp in fwd) == (i == 0), (sw, fwd)
        rates = meters(path[1])
        assert (GOLD if queue == 1 else BRONZE) in rates.values(), (path[1], rates)

    # The tiers' queues exist in OVSDB, on the switches' ports.
    q = subprocess.run(['ovs-vsctl', 'list', 'queue'], capture_output=True, text=True).stdout
    for rate in (GOLD, BRONZE):
        assert 'max-rate="%d"' % (rate * 1000) in q, q[-2000:]
    qos_port = subprocess.run(['ovs-vsctl', 'get', 'port', 'core1-eth1', 'qos'],
                              capture_output=True, text=True).stdout.strip()
    assert qos_port not in ('', '[]'), 'core1-eth1 has no QoS'

    # An unknown client gets the default tier.
    cust4.cmd('iperf3 -c 10.0.0.101 -p 5201 -t 1 >/dev/null 2>&1')
    line = session_line(controller, '10.0.0.4', '10.0.0.101')
    assert 'tier best-effort' in line and 'default' in line, line


def test_promotion_code_in_a_sip_invite_lifts_the_caller(qos_net):
    assert shutil.which('sipp'), 'sipp not installed (scripts/setup.sh installs sip-tester)'
    controller, net = qos_net('replica')
    sip, cust2 = net.get('sip'), net.get('cust2')
    uas = sip.popen(['sipp', '-sn', 'uas', '-i', '10.0.0.100', '-p', '5060', '-bg',
                     '-trace_err'], cwd=str(SIPP_DIR))
    time.sleep(1)
    # A list, not shell=True: Mininet's shell form needs $SHELL, which CI's
    # environment does not set.
    uac = cust2.popen(['sipp', '10.0.0.100:5060', '-sf', str(SIPP_DIR / 'uac_promo.xml'),
                       '-i', '10.0.0.2', '-p', '5061', '-m', '1', '-l', '1',
                       '-timeout', '20', '-timeout_error'],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # During the call (the scenario holds it 3 s) the caller's edge carries
    # the tier flow, marking gold's DSCP.
    flows, deadline = [], time.monotonic() + 10
    while not flows and time.monotonic() < deadline:
        flows = session_flows('edge2', '10.0.0.2', '10.0.0.100')
        time.sleep(0.2)
    rc = uac.wait(timeout=30)
    uas.kill()
    sip.cmd('pkill -f "sipp -sn uas"')
    assert rc == 0, 'the call did not complete through Tierflow (sipp rc %s): %s\n%s' % (
        rc, uac.stderr.read()[-1000:], controller.tail())
    # Caller +14155550102 is Bolt Bikes (bronze); GOLDPASS is a gold floor.
    line = session_line(controller, '10.0.0.2', '10.0.0.100')
    assert 'tier gold' in line and 'promotion' in line, line
    assert 'matched by phone' in line, line
    assert flows and 'set_field:46->ip_dscp' in flows[0], flows
    # BYE ended the call's session: its flows left the switches.
    sid = re.search(r'session (s-[0-9a-f]+)', line).group(1)
    controller.wait_log('session %s ended: SIP BYE' % sid)
    assert not session_flows('edge2', '10.0.0.2', '10.0.0.100')
    # The API lists the ended call, with why it ended.
    with urllib.request.urlopen('http://127.0.0.1:%d/api/v1/sessions?state=ended'
                                % controller.api_port, timeout=10) as r:
        ended = {x['id']: x for x in json.loads(r.read())['items']}
    assert ended.get(sid, {}).get('state_reason') == 'SIP BYE', ended


def test_redis_outage_default_tier_for_new_sessions_old_ones_kept(qos_net, redis):
    controller, net = qos_net('remote')
    cust1, cust3 = net.get('cust1'), net.get('cust3')
    iperf_servers(net)
    cust1.cmd('iperf3 -c 10.0.0.101 -p 5201 -t 1 >/dev/null 2>&1')
    assert 'tier gold' in session_line(controller, '10.0.0.1', '10.0.0.101')

    redis.stop()
    # Cedar Dental (silver) asks while Redis is down: the default tier.
    cust3.cmd('iperf3 -c 10.0.0.101 -p 5201 -t 1 >/dev/null 2>&1')
    line = session_line(controller, '10.0.0.3', '10.0.0.101')
    assert 'tier best-effort' in line, line
    # The gold session's flows are untouched.
    flows = session_flows('edge1', '10.0.0.1', '10.0.0.101')
    assert flows and 'set_field:46->ip_dscp' in flows[0], flows
    assert GOLD in meters('edge1').values()

    redis.start()
    # Redis is back (this one keeps nothing on disk: reload the CRM, as a
    # persistent Redis would have kept it): a new session is scored again.
    load_crm(controller.binary, redis)
    cust1.cmd('iperf3 -c 10.0.0.100 -p 5201 -t 1 >/dev/null 2>&1')
    session_line(controller, '10.0.0.1', '10.0.0.100')
    # Whether that session was decided before or after the controller's
    # Redis connection came back, it ends up gold: sessions decided by the
    # fallback are re-scored once the replica resyncs.
    deadline = time.monotonic() + 20
    flows = []
    while time.monotonic() < deadline:
        flows = session_flows('edge1', '10.0.0.1', '10.0.0.100')
        if flows and 'set_field:46->ip_dscp' in flows[0]:
            break
        time.sleep(0.25)
    assert flows and 'set_field:46->ip_dscp' in flows[0], (flows, controller.tail())
    stats = controller.stop()
    figure('  Redis outage: decisions_fallback=%d redis_errors=%d'
           % (stats['decisions_fallback'], stats['redis_errors']))
    assert stats['decisions_fallback'] >= 1, stats


def test_switch_reconnect_puts_meters_and_flows_back(qos_net):
    controller, net = qos_net('replica')
    cust1 = net.get('cust1')
    iperf_servers(net)
    long_run = iperf(cust1, '10.0.0.101', 20)
    try:
        session_line(controller, '10.0.0.1', '10.0.0.101')
        time.sleep(1)
        before = meters('core1')
        assert GOLD in before.values(), before
        # A controller configuration change: OVS drops every meter.
        subprocess.run(['ovs-vsctl', 'del-controller', 'core1'], check=True)
        deadline = time.monotonic() + 5
        while meters('core1') and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not meters('core1'), 'OVS kept its meters'
        subprocess.run(['ovs-vsctl', 'set-controller', 'core1', 'tcp:' + controller.addr],
                       check=True)
        deadline = time.monotonic() + 15
        after = {}
        while time.monotonic() < deadline:
            after = meters('core1')
            if GOLD in after.values() and session_flows('core1', '10.0.0.1', '10.0.0.101'):
                break
            time.sleep(0.2)
        assert GOLD in after.values(), (after, controller.tail())
        assert session_flows('core1', '10.0.0.1', '10.0.0.101')
        # The session never left its path: the switch kept forwarding, and
        # the controller put its meters and flows back.
        admitted = controller.text().count('admitted: 10.0.0.1 -> 10.0.0.101 ')
        assert admitted == 1, controller.tail()
        assert 'put back 1 sessions' in controller.text(), controller.tail()
    finally:
        rate = mbps(long_run)[1]
    figure('  switch reconnect: meters back on core1; session still %.1f Mbit/s' % rate)
