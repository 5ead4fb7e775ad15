#!/usr/bin/python3
"""Mininet helpers for running Open vSwitch against the Tierflow controller.

Owns what a user's own topology script needs to put Mininet on these
machines (userspace Open vSwitch, OpenFlow 1.3, a remote controller, TCP
that works between hosts) and the topologies the end-to-end tests and the
demo use: ``linear``, ``tree``, ``ring`` (loops) and ``contactcenter``;
and, with VLANs and subnets (Tierflow as the router between them):
``vlantrunk``, ``routedring`` and ``routedcc`` (the contact center, routed).
A VLAN topology knows the ``/vlans`` and ``/ports`` records Tierflow needs
for it (``topo.tierflow_config()``), port numbers included.

Run with Debian's interpreter, which has the ``mininet`` module::

    /usr/bin/python3 mininet/tierflow_mn.py --topo ring,4,2 [--controller 127.0.0.1:6653] [--cli]

or through ``mn`` (``topos`` and ``switches`` below are what ``--custom``
reads)::

    mn --custom mininet/tierflow_mn.py --topo ring,4,2 --switch tierflow \
       --controller remote,ip=127.0.0.1,port=6653

From Python::

    sys.path.insert(0, 'mininet')   # this directory
    from tierflow_mn import start_net, RingTopo
    net = start_net(RingTopo(4, 2), controller='127.0.0.1:6653')
    ...
    net.stop()

See README.md beside this file for the addressing plan.
"""

import argparse
import signal
import socket
import subprocess
import sys
import threading

from mininet.clean import cleanup
from mininet.cli import CLI
from mininet.log import info, setLogLevel, warn
from mininet.net import Mininet
from mininet.node import OVSBridge, OVSSwitch, RemoteController
from mininet.topo import Topo
from mininet.topolib import TreeTopo
from mininet.util import buildTopo

DEFAULT_CONTROLLER = '127.0.0.1:6653'


class TierflowSwitch(OVSSwitch):
    """Open vSwitch as these machines need it: the kernel has no openvswitch
    module, so the bridge runs the userspace datapath (datapath_type=netdev);
    Tierflow speaks OpenFlow 1.3 only. fail_mode stays 'secure' so that a
    switch that lost its controller never falls back to learning-switch
    flooding, which would storm on the topologies with loops."""

    def __init__(self, name, datapath='user', protocols='OpenFlow13',
                 failMode='secure', **params):
        super().__init__(name, datapath=datapath, protocols=protocols,
                         failMode=failMode, **params)


def mac_of(ip):
    """The MAC every topology here gives the host with IPv4 address `ip`:
    the address's last three octets, so 10.0.0.200 is 00:00:00:00:00:c8
    (the same rule as Mininet's autoSetMacs)."""
    octets = [int(x) for x in ip.split('/')[0].split('.')]
    return '00:00:00:%02x:%02x:%02x' % (octets[1], octets[2], octets[3])


class LinearTopo(Topo):
    """k switches in a chain s1 - s2 - ... - sk, n hosts on each.
    Hosts: h1..hk with n=1 (hi on si); h<j>s<i> with n>1 (Mininet's names).
    IPs 10.0.0.1.. in the order of the names (Mininet sorts them: with n=2,
    h1s1 .. h1sk, then h2s1 .. h2sk), MACs from mac_of()."""

    def build(self, k=2, n=1):
        last = None
        for i in range(1, k + 1):
            sw = self.addSwitch('s%d' % i)
            for j in range(1, n + 1):
                name = 'h%d' % i if n == 1 else 'h%ds%d' % (j, i)
                self.addLink(self.addHost(name), sw)
            if last:
                self.addLink(sw, last)
            last = sw


class RingTopo(Topo):
    """n switches in a ring s1 - s2 - ... - sn - s1 (a loop: every pair of
    switches has two disjoint paths), k hosts on each. Hosts h1..h(n*k):
    s1 has h1..hk, s2 has h(k+1)..h(2k), ...; host hm has IP 10.0.0.m."""

    def build(self, n=4, k=2):
        if n < 3:
            raise ValueError('a ring needs at least 3 switches (got %d)' % n)
        switches = [self.addSwitch('s%d' % i) for i in range(1, n + 1)]
        m = 0
        for sw in switches:
            for _ in range(k):
                m += 1
                self.addLink(self.addHost('h%d' % m), sw)
        for i, sw in enumerate(switches):
            self.addLink(sw, switches[(i + 1) % n])


class ContactCenterTopo(Topo):
    """A contact center and its customers.

    Switches (explicit dpids, since Mininet would derive clashing ones from
    the digits of the names):

    - edge1, edge2 (dpid 0x101, 0x102): customer edges;
    - core1, core2, core3 (0x201..0x203): a triangle, so every
      customer-to-site path has a direct and a two-hop alternative;
    - site (0x301): the contact-center site switch.

    edge1 hangs off core1, edge2 off core2, site off core3.

    Hosts (IP/8, MAC = mac_of(IP)):

    - cust1..custC: customers, 10.0.0.1.. (odd on edge1, even on edge2);
    - sip (10.0.0.100), web (10.0.0.101): the contact center's SIP server and
      web front end, on site;
    - agent1..agentA: agents' phones/desktops, 10.0.0.200.., on site.
    """

    def build(self, customers=4, agents=2):
        if not 1 <= customers <= 99 or not 1 <= agents <= 55:
            raise ValueError('customers must be 1..99 and agents 1..55')
        edges = [self.addSwitch('edge%d' % i, dpid='%016x' % (0x100 + i))
                 for i in (1, 2)]
        core = [self.addSwitch('core%d' % i, dpid='%016x' % (0x200 + i))
                for i in (1, 2, 3)]
        site = self.addSwitch('site', dpid='%016x' % 0x301)
        self.addLink(core[0], core[1])
        self.addLink(core[1], core[2])
        self.addLink(core[2], core[0])
        self.addLink(edges[0], core[0])
        self.addLink(edges[1], core[1])
        self.addLink(site, core[2])
        for i in range(1, customers + 1):
            self.add_host('cust%d' % i, '10.0.0.%d' % i, edges[(i - 1) % 2])
        for name, ip in SERVICES.items():
            self.add_host(name, ip, site)
        for i in range(1, agents + 1):
            self.add_host('agent%d' % i, '10.0.0.%d' % (199 + i), site)

    def add_host(self, name, ip, switch):
        self.addLink(self.addHost(name, ip=ip + '/8', mac=mac_of(ip)), switch)


#: Service hosts of the contact-center topology: name -> IP.
SERVICES = {'sip': '10.0.0.100', 'web': '10.0.0.101'}


class DeskSwitch(OVSBridge):
    """A desk's own little switch, as an IP phone with a PC port has: a
    standalone userspace Open vSwitch bridge (no controller, MAC learning)
    whose host ports are access ports of a VLAN each, and whose uplink to
    the Tierflow switch is a trunk: what its tagged hosts send reaches
    Tierflow with an 802.1Q tag. (These machines' kernel has no 802.1Q
    interfaces, so a host that sends tagged frames is a host behind one of
    these.) It forwards no LLDP (OVS drops 802.1D reserved addresses), so
    Tierflow sees the uplink as an edge port."""

    def __init__(self, name, **params):
        params.pop('desk', None)
        super().__init__(name, datapath='user', protocols='OpenFlow13', **params)


def is_desk(switch):
    return isinstance(switch, DeskSwitch)


class VlanTopo(Topo):
    """A topology whose hosts sit in VLANs and subnets. Subclasses declare
    VLANs (`vlan`) and hosts (`vlan_host`, `desk`); `tierflow_config()`
    gives the `/vlans` and `/ports` records (the CRM file's `vlans` and
    `ports`) with the port numbers Mininet will give the links. Hosts get
    their gateway as default route; tagged hosts sit behind a `DeskSwitch`
    whose uplink is a trunk port."""

    def __init__(self, *args, **params):
        self.vlan_list = {}
        self.access = []   # (switch, host, vid)
        self.desks = []    # (desk, switch, native vid or None, [(host, vid, tagged)])
        super().__init__(*args, **params)

    def vlan(self, vid, *gateways, name=''):
        self.vlan_list[vid] = {'vid': vid, 'name': name, 'gateways': list(gateways)}

    def _host(self, name, ip, gateway):
        opts = {'ip': ip, 'mac': mac_of(ip)}
        if gateway:
            opts['defaultRoute'] = 'via %s' % gateway
        return self.addHost(name, **opts)

    def vlan_host(self, name, switch, ip, vid=None, gateway=None):
        """A host on an access port of `switch` in VLAN `vid` (None: the
        port is left unconfigured, VLAN 1). `ip` is 'a.b.c.d/len'."""
        h = self._host(name, ip, gateway)
        self.addLink(h, switch)
        if vid is not None:
            self.access.append((switch, h, vid))
        return h

    def desk(self, name, switch, dpid, hosts, native=None):
        """A desk switch on `switch`: `hosts` is [(name, ip, vid, gateway)];
        the one in VLAN `native` is untagged on the uplink, the others
        tagged."""
        d = self.addSwitch(name, cls=DeskSwitch, dpid='%016x' % dpid)
        self.addLink(d, switch)
        members = []
        for hname, ip, vid, gateway in hosts:
            h = self._host(hname, ip, gateway)
            self.addLink(h, d)
            members.append((h, vid, vid != native))
        self.desks.append((d, switch, native, members))
        return d

    def dpid_of(self, switch):
        dpid = self.nodeInfo(switch).get('dpid')
        return dpid if dpid else '%016x' % int(''.join(c for c in switch if c.isdigit()))

    def tierflow_config(self):
        """{'vlans': [...], 'ports': [...]}: the records Tierflow needs."""
        ports = []
        for sw, h, vid in self.access:
            ports.append({'dpid': self.dpid_of(sw), 'port': self.port(sw, h)[0],
                          'native_vlan': vid, 'tagged_vlans': []})
        for d, sw, native, members in self.desks:
            ports.append({'dpid': self.dpid_of(sw), 'port': self.port(sw, d)[0],
                          'native_vlan': native,
                          'tagged_vlans': sorted({vid for _, vid, tagged in members if tagged})})
        return {'vlans': [self.vlan_list[v] for v in sorted(self.vlan_list)], 'ports': ports}


def configure_desks(net):
    """Sets the VLAN tags of every desk switch's ports (after start)."""
    topo = getattr(net, 'topo', None)
    for d, sw, native, members in getattr(topo, 'desks', []):
        desk = net.get(d)
        uplink = desk.connectionsTo(net.get(sw))[0][0]
        trunks = sorted({vid for _, vid, _ in members})
        if native is not None:
            desk.vsctl('set port %s vlan_mode=native-untagged tag=%d trunks=%s'
                       % (uplink, native, ','.join(map(str, trunks))))
        else:
            desk.vsctl('set port %s vlan_mode=trunk trunks=%s'
                       % (uplink, ','.join(map(str, trunks))))
        for h, vid, _ in members:
            intf = desk.connectionsTo(net.get(h))[0][0]
            desk.vsctl('set port %s tag=%d' % (intf, vid))


class VlanTrunkTopo(VlanTopo):
    """Two switches and a trunk between them; VLANs 10 and 20 on both, not
    routed (one subnet, 10.0.0.0/24, split in two VLANs):

        h1 (VLAN 10), h2 (VLAN 20) -- s1 ==trunk== s2 -- h3 (VLAN 10), h4 (VLAN 20)
                                                   s2 -- d5 (desk) -- h5 (VLAN 10, tagged)
        h6 (port left unconfigured: VLAN 1) -- s1        s2 -- h7 (VLAN 1)

    s1 and s2 have dpids 0x11 and 0x12; hosts are 10.0.0.1..7."""

    def build(self):
        s1 = self.addSwitch('s1', dpid='%016x' % 0x11)
        s2 = self.addSwitch('s2', dpid='%016x' % 0x12)
        self.addLink(s1, s2)
        self.vlan(10, name='ten')
        self.vlan(20, name='twenty')
        self.vlan_host('h1', s1, '10.0.0.1/24', 10)
        self.vlan_host('h2', s1, '10.0.0.2/24', 20)
        self.vlan_host('h3', s2, '10.0.0.3/24', 10)
        self.vlan_host('h4', s2, '10.0.0.4/24', 20)
        self.desk('d5', s2, 0xd5, [('h5', '10.0.0.5/24', 10, None)])
        self.vlan_host('h6', s1, '10.0.0.6/24')
        self.vlan_host('h7', s2, '10.0.0.7/24')


class RoutedRingTopo(VlanTopo):
    """Three switches in a ring (a loop), three routed subnets on three
    VLANs, and a VLAN without gateways:

    - VLAN 10: 10.10.0.0/24, gateway 10.10.0.1: a10 (s1), c10 (s3);
    - VLAN 20: 10.20.0.0/24, gateway 10.20.0.1: a20 (s1), b20 (s2);
    - VLAN 30: 10.30.0.0/24, gateway 10.30.0.1: b30 (s2), c30 (s3), and t30
      (tagged, behind desk d7 on s1);
    - VLAN 40: 10.40.0.0/24, no gateway (never routed): x40 (s3), whose
      default route points at 10.40.0.1 all the same.

    Host x.y.0.N: the switch's number is N - 10 (a: s1, b: s2, c: s3).
    Switch dpids 0x21, 0x22, 0x23."""

    def build(self):
        s = [self.addSwitch('s%d' % i, dpid='%016x' % (0x20 + i)) for i in (1, 2, 3)]
        for i in range(3):
            self.addLink(s[i], s[(i + 1) % 3])
        for vid in (10, 20, 30):
            self.vlan(vid, '10.%d.0.1/24' % vid, name='net%d' % vid)
        self.vlan(40, name='bridged')
        for name, sw, vid in (('a10', 0, 10), ('a20', 0, 20), ('b20', 1, 20),
                              ('b30', 1, 30), ('c30', 2, 30), ('c10', 2, 10)):
            self.vlan_host(name, s[sw], '10.%d.0.%d/24' % (vid, 11 + sw), vid,
                           gateway='10.%d.0.1' % vid)
        self.vlan_host('x40', s[2], '10.40.0.13/24', 40, gateway='10.40.0.1')
        self.desk('d7', s[0], 0xd7, [('t30', '10.30.0.14/24', 30, '10.30.0.1')])


class RoutedContactCenterTopo(VlanTopo):
    """The contact center of ContactCenterTopo (same switches, dpids and
    links), routed: customers, agents and servers in different subnets,
    Tierflow the router between them.

    - VLAN 100 "customers": 10.0.0.0/24, gateway 10.0.0.254: cust1..custC
      at 10.0.0.1.. (odd on edge1, even on edge2);
    - VLAN 300 "servers": 10.0.3.0/24, gateway 10.0.3.1: sip 10.0.3.100,
      web 10.0.3.101, on site;
    - VLAN 200 "voice" (10.0.2.0/24, gateway 10.0.2.1) and VLAN 210 "data"
      (10.0.4.0/24, gateway 10.0.4.1): each agent's desk (deskN, on site)
      has a phone, agentN (10.0.2.(9+N), VLAN 200, tagged on the trunk),
      and a PC, pcN (10.0.4.(9+N), VLAN 210, untagged)."""

    def build(self, customers=4, agents=2):
        if not 1 <= customers <= 99 or not 1 <= agents <= 55:
            raise ValueError('customers must be 1..99 and agents 1..55')
        edges = [self.addSwitch('edge%d' % i, dpid='%016x' % (0x100 + i)) for i in (1, 2)]
        core = [self.addSwitch('core%d' % i, dpid='%016x' % (0x200 + i)) for i in (1, 2, 3)]
        site = self.addSwitch('site', dpid='%016x' % 0x301)
        self.addLink(core[0], core[1])
        self.addLink(core[1], core[2])
        self.addLink(core[2], core[0])
        self.addLink(edges[0], core[0])
        self.addLink(edges[1], core[1])
        self.addLink(site, core[2])
        self.vlan(100, '10.0.0.254/24', name='customers')
        self.vlan(200, '10.0.2.1/24', name='voice')
        self.vlan(210, '10.0.4.1/24', name='data')
        self.vlan(300, '10.0.3.1/24', name='servers')
        for i in range(1, customers + 1):
            self.vlan_host('cust%d' % i, edges[(i - 1) % 2], '10.0.0.%d/24' % i, 100,
                           gateway='10.0.0.254')
        for name, ip in ROUTED_SERVICES.items():
            self.vlan_host(name, site, ip + '/24', 300, gateway='10.0.3.1')
        for i in range(1, agents + 1):
            self.desk('desk%d' % i, site, 0xd00 + i,
                      [('agent%d' % i, '10.0.2.%d/24' % (9 + i), 200, '10.0.2.1'),
                       ('pc%d' % i, '10.0.4.%d/24' % (9 + i), 210, '10.0.4.1')],
                      native=210)


#: Service hosts of the routed contact center: name -> IP.
ROUTED_SERVICES = {'sip': '10.0.3.100', 'web': '10.0.3.101'}

#: What `mn --custom` and `--topo` accept: name,arg1,arg2,... (and key=value).
topos = {
    'linear': LinearTopo,
    'tree': TreeTopo,
    'ring': RingTopo,
    'contactcenter': ContactCenterTopo,
    'vlantrunk': VlanTrunkTopo,
    'routedring': RoutedRingTopo,
    'routedcc': RoutedContactCenterTopo,
}

#: `mn --custom mininet/tierflow_mn.py --switch tierflow`.
switches = {'tierflow': TierflowSwitch, 'desk': DeskSwitch}


def parse_controller(addr):
    """'host:port' (or 'host', port 6653) -> (host, port)."""
    host, _, port = addr.rpartition(':')
    if not host:
        return addr, 6653
    return host, int(port)


def checksum_offload_off(net):
    """On the userspace datapath, TCP between hosts only works with transmit
    checksum offload off: the veth never computes the checksums it was
    asked to and OVS forwards the packets as they are."""
    for host in net.hosts:
        for intf in host.intfList():
            if intf.name != 'lo':
                host.cmd('ethtool -K %s tx off' % intf.name)


class TierflowNet(Mininet):
    """Mininet that also stops the servers started in its hosts
    (`serve`): a daemon outlives its host's namespace otherwise."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.servers = []

    def serve(self, host, args):
        """Starts `args` (a list) in `host` in the background, stopped with
        the network."""
        proc = host.popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.servers.append(proc)
        return proc

    def stop(self):
        for proc in self.servers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.servers = []
        super().stop()


def iperf_server(net, host, port=5201):
    """An iperf3 server in `host` on `port`, stopped with `net` (a
    TierflowNet)."""
    return net.serve(host, ['iperf3', '-s', '-p', str(port)])


def tierflow_switches(net):
    """The switches Tierflow controls (desk switches are not)."""
    return [s for s in net.switches if not is_desk(s)]


class TierflowController(RemoteController):
    """Mininet's RemoteController without its start-up probe: that probe
    runs `echo A | telnet -e A IP PORT` in the controller node's shell, and
    once in a CI run the shell never gave its prompt back after it (telnet
    sets the terminal's modes), which hung the whole suite in
    `Node.read`. This one asks with a socket, from Python, with a timeout;
    a controller that is not listening is only warned about, as before."""

    def isListening(self, ip, port):
        try:
            socket.create_connection((ip, port), timeout=1.0).close()
            return True
        except OSError as e:
            warn('Unable to contact the remote controller at %s:%d: %s\n' % (ip, port, e))
            return False


def start_net(topo, controller=DEFAULT_CONTROLLER, wait=10.0, protocol='tcp', **kwargs):
    """Builds and starts `topo` with TierflowSwitch switches connected to the
    remote controller at `controller` ('host:port'), turns checksum offload
    off on every host interface, and (when `wait` is not None) waits up to
    `wait` seconds for every switch to be connected. `protocol` 'ssl' makes
    the switches' targets `ssl:host:port` (OpenFlow over TLS: configure
    Open vSwitch's key, certificate and CA first with `ovs-vsctl set-ssl`).
    Returns the Mininet object; the caller stops it with net.stop(). Extra
    keyword arguments go to Mininet().

    Several controllers (a Tierflow cluster: instances sharing one Redis)
    are a list or a comma-separated string, 'host:port,host:port': every
    switch connects to all of them, and they agree which one is master."""
    if isinstance(controller, str):
        controller = [c for c in controller.split(',') if c]
    kwargs.setdefault('autoSetMacs', True)
    net = TierflowNet(topo=topo, switch=TierflowSwitch, controller=None,
                      build=False, **kwargs)
    for i, c in enumerate(controller):
        ip, port = parse_controller(c)
        net.addController(TierflowController('c%d' % i, ip=ip, port=port,
                                              protocol=protocol))
    try:
        net.build()
        net.start()
        checksum_offload_off(net)
        configure_desks(net)
        if wait is not None and not net.waitConnected(timeout=wait):
            raise RuntimeError('switches did not connect to %s within %ss'
                               % (controller, wait))
    except BaseException:
        net.stop()
        raise
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Bring a Mininet topology up against a running Tierflow '
                    'controller (userspace OVS, OpenFlow 1.3).')
    parser.add_argument('--topo', default='ring,4,2',
                        help='name[,arg...]: one of %s (default ring,4,2)'
                             % ', '.join(sorted(topos)))
    parser.add_argument('--controller', default=DEFAULT_CONTROLLER,
                        help='host:port of the controller, or several, comma '
                             'separated (a cluster) (default %(default)s)')
    parser.add_argument('--cli', action='store_true',
                        help='open the Mininet CLI; otherwise stay up until '
                             'SIGINT/SIGTERM')
    parser.add_argument('--pingall', action='store_true',
                        help='ping all pairs once the switches are connected; '
                             'exit status 1 on any loss (then exit unless --cli)')
    parser.add_argument('--clean', action='store_true',
                        help='run `mn -c` first (removes stale Mininet state)')
    parser.add_argument('--loglevel', default='info')
    args = parser.parse_args(argv)
    setLogLevel(args.loglevel)
    if args.clean:
        cleanup()
    net = start_net(buildTopo(topos, args.topo), controller=args.controller)
    status = 0
    try:
        for h in net.hosts:
            link = h.intf().link
            peer = link.intf2 if link.intf1.node is h else link.intf1
            info('%s %s %s on %s\n' % (h.name, h.IP(), h.MAC(), peer))
        if args.pingall:
            status = 1 if net.pingAll(timeout='2') > 0 else 0
        if args.cli:
            CLI(net)
        elif not args.pingall:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            info('*** Up; SIGINT or SIGTERM stops it\n')
            while not stop.wait(1.0):
                pass
    finally:
        net.stop()
    return status


if __name__ == '__main__':
    sys.exit(main())
