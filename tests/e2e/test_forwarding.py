"""End-to-end checks of plain forwarding: Tierflow against real Open vSwitch
(userspace datapath, OpenFlow 1.3) in Mininet.

Checks: all-pairs reachability on a chain, a tree and topologies with loops
(ring, contact center) without a broadcast storm; rerouting when a ring link
is cut; recovery after a controller restart; no OFPT_ERROR from OVS in any
of these; and the first-packet / steady-state RTT figures (printed, asserted
only for correctness).
"""

import re
import subprocess
import time

import pytest
from conftest import expected_links, figure, switch_rx_packets
from mininet.topolib import TreeTopo
from tierflow_mn import ContactCenterTopo, LinearTopo, RingTopo

TOPOLOGIES = {
    'linear4': lambda: LinearTopo(4),
    'tree2x3': lambda: TreeTopo(depth=2, fanout=3),
    'ring4x2': lambda: RingTopo(4, 2),
    'contactcenter': lambda: ContactCenterTopo(),
}

#: Quiet-time traffic allowed per switch port per second: LLDP is one probe
#: a second per port, plus the hosts' own IPv6 chatter. A storm is
#: thousands.
QUIET_PKTS_PER_PORT_SEC = 20


def assert_no_switch_errors(controller):
    lines, stats = controller.switch_errors()
    figure('  OFPT_ERROR from OVS: %d logged, switch_errors=%d in final stats'
           % (lines, stats))
    assert lines == 0 and stats == 0, 'OVS sent errors:\n' + '\n'.join(
        controller.grep('switch sent OFPT_ERROR'))


def n_switch_ports(net):
    return sum(len(sw.ports) for sw in net.switches)


def ping_rtts(host, ip, count=1, interval=0.2, wait=2):
    """Runs ping in `host`; returns the list of RTTs in ms (one per reply)."""
    out = host.cmd('ping -n -c %d -i %s -W %d %s' % (count, interval, wait, ip))
    return [float(x) for x in re.findall(r'time=([\d.]+) ms', out)]


def flow_out_port(switch, src_mac, dst_mac):
    """The output port of `switch`'s forwarding flow src -> dst, or None."""
    out = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', switch.name,
                          'dl_src=%s,dl_dst=%s' % (src_mac, dst_mac)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r'actions=output:"?([\w-]+)"?', out)
    if not m:
        return None
    port = m.group(1)
    return int(port) if port.isdigit() else switch.ports[switch.intf(port)]


def port_towards(a, b):
    """Port number of switch `a` on its link to switch `b`."""
    (ia, _ib), = a.connectionsTo(b)
    return a.ports[ia]


@pytest.mark.parametrize('name', list(TOPOLOGIES))
def test_pingall_without_storm(name, controller, mn_net):
    net = mn_net(TOPOLOGIES[name]())
    hosts, ports = len(net.hosts), n_switch_ports(net)
    pairs = hosts * (hosts - 1)
    rx0, t0 = switch_rx_packets(net), time.monotonic()
    loss = net.pingAll(timeout='2')
    ping_secs = time.monotonic() - t0
    rx1 = switch_rx_packets(net)
    time.sleep(3)
    rx2 = switch_rx_packets(net)
    quiet_rate = (rx2 - rx1) / 3.0
    assert controller.responsive(), 'controller does not answer a new connection'
    up_secs = time.monotonic() - controller.started
    stats = controller.stop()
    figure('%s: %d switches, %d hosts up in %.1fs, LLDP found its %d links %.3fs after the '
           'last handshake; pingall %.0f%% loss '
           '(%d pings in %.1fs); switch rx %d pkts during pingall, %.0f pkts/s when quiet '
           '(%d ports); packet_ins=%d floods=%d floods_suppressed=%d setups=%d'
           % (name, len(net.switches), hosts, net.startup_secs, len(expected_links(net)) // 2,
              net.discovery_secs, loss, pairs, ping_secs, rx1 - rx0, quiet_rate, ports,
              stats['packet_ins'], stats['floods'], stats['floods_suppressed'],
              stats['setups_completed']))
    assert loss == 0
    # Each ping is a few frames (ARP both ways, echo, reply) crossing every
    # switch of its path once; a loop that storms multiplies that without
    # bound.
    assert rx1 - rx0 <= pairs * 6 * len(net.switches) + 5 * ports * ping_secs, \
        'switch traffic during pingall looks like a storm'
    assert quiet_rate <= QUIET_PKTS_PER_PORT_SEC * ports, 'traffic keeps flowing when idle'
    # Packet-ins: one LLDP probe per link port per second (sent out of every
    # port, back in only on link ports), plus a handful per ping pair.
    lldp_bound = 2 * ports * (up_secs + 2)
    assert stats['packet_ins'] <= lldp_bound + 10 * pairs, stats
    assert stats['setups_abandoned'] == 0, stats
    assert stats['decode_errors'] == 0, stats
    assert_no_switch_errors(controller)


def test_ring_link_cut_reroutes(controller, mn_net):
    net = mn_net(RingTopo(4, 2))
    assert net.pingAll(timeout='2') == 0
    s1, s2, s4 = net.get('s1', 's2', 's4')
    h1, h2, h3, h4 = net.get('h1', 'h2', 'h3', 'h4')
    # h1 (on s1) to h3 (on s2): the shortest path is the direct s1-s2 link.
    assert flow_out_port(s1, h1.MAC(), h3.MAC()) == port_towards(s1, s2)

    interval, count = 0.02, 400
    pinger = h1.popen(['ping', '-n', '-D', '-i', str(interval), '-c', str(count),
                       '-W', '1', h3.IP()])
    time.sleep(2)
    t_cut = time.time()
    net.configLinkStatus('s1', 's2', 'down')
    out, _ = pinger.communicate(timeout=60)
    replies = [(int(seq), float(ts)) for ts, seq in
               re.findall(r'\[([\d.]+)\].*icmp_seq=(\d+)', out.decode())]
    assert replies, out
    assert any(ts > t_cut + 1 for _, ts in replies), \
        'no reply a second after the cut:\n' + controller.tail()
    # The outage: the longest silence between two replies from the cut on,
    # less the ping interval that separates replies anyway.
    gaps = [b - a for (_, a), (_, b) in zip(replies, replies[1:]) if b > t_cut]
    reconverge = max(0.0, max(gaps) - interval)
    lost = count - len(replies)
    new_port = flow_out_port(s1, h1.MAC(), h3.MAC())
    figure('ring4x2 link s1-s2 cut: h1->h3 (ping every %.0f ms) reconverged in %.0f ms '
           '(longest reply gap less one interval), %d of %d pings lost; path now leaves '
           's1 on port %s (towards s4: %d)'
           % (interval * 1000, reconverge * 1000, lost, count, new_port,
              port_towards(s1, s4)))
    assert new_port == port_towards(s1, s4), 'h1->h3 does not go the other way round'
    # Loose: a port-status-driven reroute takes milliseconds; even waiting
    # for LLDP to time the link out stays well under this.
    assert reconverge < 10.0
    # Every pair whose path used s1-s2 works over the other way round.
    assert net.ping([h1, h2, h3, h4], timeout='2') == 0
    assert controller.count('link down') >= 2

    net.configLinkStatus('s1', 's2', 'up')
    took = controller.wait_links(expected_links(net))
    loss = net.pingAll(timeout='2')
    figure('ring4x2 link s1-s2 restored: LLDP saw it again after %.2fs; pingall %.0f%% loss'
           % (took, loss))
    assert loss == 0
    assert controller.responsive()
    controller.stop()
    assert_no_switch_errors(controller)


def test_controller_restart_recovers(controller, mn_net):
    net = mn_net(RingTopo(4, 2))
    assert net.pingAll(timeout='2') == 0
    controller.stop()
    t0 = time.monotonic()
    controller.start()
    controller.wait_log('switch connected', n=len(net.switches), timeout=30)
    reconnected = time.monotonic() - t0
    deadline = t0 + 30
    attempts, loss = 0, 100.0
    while time.monotonic() < deadline:
        attempts += 1
        loss = net.pingAll(timeout='1')
        if loss == 0:
            break
    recovered = time.monotonic() - t0
    figure('ring4x2 controller restart: %d switches back in %.2fs; pingall 0%% loss after '
           '%.2fs (%d pingall rounds, last %.0f%% loss)'
           % (len(net.switches), reconnected, recovered, attempts, loss))
    assert loss == 0, controller.tail()
    assert controller.responsive()
    controller.stop()
    assert_no_switch_errors(controller)


def test_first_packet_and_steady_rtt_linear4(controller, mn_net):
    """h1 -> h4 on linear 4 crosses all four switches. Figures: the very
    first ping (ARP broadcast and path setup included), the steady state,
    and the first packet of a fresh path alone (flows removed from the
    switches, ARP entries static, so the echo request itself is the
    packet-in that sets up four switches)."""
    net = mn_net(LinearTopo(4))
    h1, h4 = net.get('h1', 'h4')
    cold = ping_rtts(h1, h4.IP())
    steady = ping_rtts(h1, h4.IP(), count=20, interval=0.05)
    h1.setARP(h4.IP(), h4.MAC())
    h4.setARP(h1.IP(), h1.MAC())
    fresh, runs = [], 7
    for _ in range(runs):
        for sw in net.switches:
            for mac in (h1.MAC(), h4.MAC()):
                subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'del-flows', sw.name,
                                'dl_src=%s' % mac], check=True)
        assert flow_out_port(net.get('s1'), h1.MAC(), h4.MAC()) is None
        # Let OVS's revalidators drop the datapath flows of the deleted
        # OpenFlow flows, so the ping meets a switch at rest.
        time.sleep(0.3)
        fresh += ping_rtts(h1, h4.IP())
    controller.stop()
    assert len(cold) == 1, 'first ping h1->h4 got no reply'
    assert len(steady) == 20, 'steady-state pings lost: %d of 20 replied' % len(steady)
    assert len(fresh) == runs, 'fresh-path pings lost'
    avg = sum(steady) / len(steady)
    fresh.sort()
    figure('linear4 h1->h4 (4 switches): first ping %.2f ms (ARP + path setup; target '
           '<= 20 ms); steady state avg %.3f ms (min %.3f, max %.3f, 20 pings); first '
           'packet of a fresh path (static ARP) median %.2f ms (min %.2f, max %.2f, %d runs)'
           % (cold[0], avg, min(steady), max(steady), fresh[runs // 2], fresh[0], fresh[-1],
              runs))
    assert_no_switch_errors(controller)
