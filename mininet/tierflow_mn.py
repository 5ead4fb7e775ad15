#!/usr/bin/python3
"""Mininet helpers for running Open vSwitch against the Tierflow controller.

Owns what a user's own topology script needs to put Mininet on these
machines (userspace Open vSwitch, OpenFlow 1.3, a remote controller, TCP
that works between hosts) and the topologies the end-to-end tests and the
demo use: ``linear``, ``tree``, ``ring`` (loops) and ``contactcenter``.

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
import subprocess
import sys
import threading

from mininet.clean import cleanup
from mininet.cli import CLI
from mininet.log import info, setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController
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
    IPs 10.0.0.1.. in that order, MACs from mac_of()."""

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

#: What `mn --custom` and `--topo` accept: name,arg1,arg2,... (and key=value).
topos = {
    'linear': LinearTopo,
    'tree': TreeTopo,
    'ring': RingTopo,
    'contactcenter': ContactCenterTopo,
}

#: `mn --custom mininet/tierflow_mn.py --switch tierflow`.
switches = {'tierflow': TierflowSwitch}


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


def start_net(topo, controller=DEFAULT_CONTROLLER, wait=10.0, protocol='tcp', **kwargs):
    """Builds and starts `topo` with TierflowSwitch switches connected to the
    remote controller at `controller` ('host:port'), turns checksum offload
    off on every host interface, and (when `wait` is not None) waits up to
    `wait` seconds for every switch to be connected. `protocol` 'ssl' makes
    the switches' targets `ssl:host:port` (OpenFlow over TLS: configure
    Open vSwitch's key, certificate and CA first with `ovs-vsctl set-ssl`).
    Returns the Mininet object; the caller stops it with net.stop(). Extra
    keyword arguments go to Mininet()."""
    ip, port = parse_controller(controller)
    kwargs.setdefault('autoSetMacs', True)
    net = TierflowNet(topo=topo, switch=TierflowSwitch, controller=None,
                      build=False, **kwargs)
    net.addController(RemoteController('c0', ip=ip, port=port, protocol=protocol))
    try:
        net.build()
        net.start()
        checksum_offload_off(net)
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
                        help='host:port of the controller (default %(default)s)')
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
