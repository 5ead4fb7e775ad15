"""OpenFlow over TLS end to end (issue 12): Open vSwitch switches with
`ovs-pki` certificates (`ovs-vsctl set-ssl KEY CERT CACERT`) connect to
Tierflow's TLS listener through `ssl:` controller targets, with plain
OpenFlow off.

Checks: every switch connects over TLS and LLDP finds every link; hosts
ping each other; a gold customer's session gets its tier (meter at the
tier's rate, session flows with meters on every switch of the path); a
switch whose certificate another CA signed never connects and is counted
(`tierflow_tls_unverified_total`), and connects once given a certificate of
the switch CA; nothing was counted as unverified in the good case.

Open vSwitch's SSL settings are global (the Open_vSwitch table): each test
removes them (`ovs-vsctl del-ssl`) when it ends.
"""

import re
import subprocess
import time
import urllib.request

import pytest
from conftest import Controller, expected_links, figure, mn_clean
from test_qos import GOLD, PATH_CUST1, iperf, iperf_servers, load_crm, mbps, meters, \
    session_flows, session_line
from tierflow_mn import ContactCenterTopo, LinearTopo, start_net


def ovs_pki(workdir, pkidir, *args):
    r = subprocess.run(['ovs-pki', '--dir=%s' % pkidir, '--log=%s' % (workdir / 'ovs-pki.log')]
                       + list(args), cwd=workdir, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, 'ovs-pki %s: %s' % (args, r.stderr)


@pytest.fixture
def pki(tmp_path):
    """A PKI as an OVS operator makes one: controllerca and switchca, the
    controller's certificate (ctl-*), a switch certificate (sc-*), and a
    switch certificate of another PKI (rogue-*)."""
    ovs_pki(tmp_path, tmp_path / 'pki', 'init')
    ovs_pki(tmp_path, tmp_path / 'pki', 'req+sign', 'ctl', 'controller')
    ovs_pki(tmp_path, tmp_path / 'pki', 'req+sign', 'sc', 'switch')
    ovs_pki(tmp_path, tmp_path / 'other-pki', 'init')
    ovs_pki(tmp_path, tmp_path / 'other-pki', 'req+sign', 'rogue', 'switch')
    return tmp_path


def vsctl(*args):
    r = subprocess.run(['ovs-vsctl', '--timeout=10'] + list(args),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, 'ovs-vsctl %s: %s' % (args, r.stderr)
    return r.stdout


@pytest.fixture
def ovs_ssl(pki):
    """set_ssl(name): Open vSwitch shows NAME-cert.pem (key NAME-privkey.pem)
    and trusts the controller CA. Removed after the test."""
    def set_ssl(name):
        vsctl('del-ssl')
        vsctl('set-ssl', str(pki / ('%s-privkey.pem' % name)), str(pki / ('%s-cert.pem' % name)),
              str(pki / 'pki' / 'controllerca' / 'cacert.pem'))
    yield set_ssl
    vsctl('del-ssl')


class TlsController(Controller):
    """`tierflow run` with plain OpenFlow off and the TLS listener on the
    port the switches' `ssl:` targets name."""

    def __init__(self, binary, workdir, redis_url, pki, extra=()):
        super().__init__(binary, workdir, redis_url, extra)
        self.pki = pki

    def argv(self):
        return [self.binary, 'run', '--openflow', 'off', '--openflow-tls', self.addr,
                '--tls-cert', str(self.pki / 'ctl-cert.pem'),
                '--tls-key', str(self.pki / 'ctl-privkey.pem'),
                '--tls-ca', str(self.pki / 'pki' / 'switchca' / 'cacert.pem'),
                '--api', '127.0.0.1:%d' % self.api_port,
                '--redis', self.redis_url] + self.extra

    def listening(self):
        # A bare TCP probe would count as a failed TLS handshake: the log
        # says when the listener is up.
        return bool(self.logs) and 'OpenFlow over TLS listener on' in self.text()

    def metrics(self):
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % self.api_port,
                                    timeout=10) as r:
            return r.read().decode()

    def counter(self, name):
        m = re.search(r'^tierflow_%s_total (\d+)$' % name, self.metrics(), re.M)
        assert m, 'no tierflow_%s_total in /metrics' % name
        return int(m.group(1))


@pytest.fixture
def tls_controller(tierflow_bin, tmp_path, redis, pki):
    made = []

    def make(*extra):
        c = TlsController(tierflow_bin, tmp_path, redis.url, pki, extra)
        made.append(c)
        c.start()
        return c
    yield make
    for c in made:
        if c.running():
            c.stop()
        print('controller logs: %s' % ', '.join(map(str, c.logs)))


@pytest.fixture
def ssl_net():
    """ssl_net(controller, topo, connect=True): a Mininet network whose
    switches' targets are ssl:127.0.0.1:PORT; with `connect`, waits for
    every switch and every link. Stopped after the test."""
    nets = []

    def make(controller, topo, connect=True):
        mn_clean()
        net = start_net(topo, controller=controller.addr, wait=None, protocol='ssl')
        nets.append(net)
        if connect:
            if not net.waitConnected(timeout=30):
                raise AssertionError('switches did not connect over TLS:\n' + controller.tail())
            controller.wait_log('switch connected', n=len(net.switches))
            controller.wait_links(expected_links(net))
        return net
    yield make
    for net in nets:
        net.stop()


def test_tls_switches_forward_and_get_tiers(tierflow_bin, redis, tls_controller, ovs_ssl,
                                             ssl_net):
    load_crm(tierflow_bin, redis)
    ovs_ssl('sc')
    controller = tls_controller('--crm-mode', 'replica')
    t0 = time.monotonic()
    net = ssl_net(controller, ContactCenterTopo(customers=2, agents=1))
    figure('  TLS: %d switches connected over ssl: and %d links found in %.1f s'
           % (len(net.switches), len(expected_links(net)), time.monotonic() - t0))
    for sw in net.switches:
        target = vsctl('get-controller', sw.name).strip()
        assert target == 'ssl:%s' % controller.addr, (sw.name, target)
        assert sw.connected(), sw.name

    # Forwarding over switches that talk to the controller over TLS only.
    cust1, web = net.get('cust1'), net.get('web')
    out = cust1.cmd('ping -c 3 -W 2 %s' % web.IP())
    assert ' 0% packet loss' in out, out
    assert net.ping([net.get('cust2'), net.get('sip')], timeout='2') == 0

    # Tiers: the gold customer's session, its meter on the path.
    iperf_servers(net)
    gold_mbps = mbps(iperf(cust1, '10.0.0.101', 4))[0]
    line = session_line(controller, '10.0.0.1', '10.0.0.101')
    assert 'tier gold' in line, line
    for sw in PATH_CUST1:
        flows = session_flows(sw, '10.0.0.1', '10.0.0.101')
        assert flows, 'no session flow on %s' % sw
        assert all(re.search(r'meter:\d+', f) for f in flows), flows
    rates = meters(PATH_CUST1[1])
    assert GOLD in rates.values(), rates
    figure('  TLS: gold session %.1f Mbit/s (tier %d)' % (gold_mbps, GOLD // 1000))
    assert gold_mbps <= 1.1 * GOLD / 1000, gold_mbps

    assert controller.counter('tls_unverified') == 0
    assert controller.counter('switches_refused') == 0
    stats = controller.stop()
    assert stats['tls_unverified'] == 0, stats
    assert stats['switch_errors'] == 0, stats


def test_a_switch_with_a_foreign_certificate_never_connects(tierflow_bin, redis, tls_controller,
                                                            ovs_ssl, ssl_net):
    # The switch shows a certificate another PKI's switch CA signed.
    ovs_ssl('rogue')
    controller = tls_controller()
    net = ssl_net(controller, LinearTopo(1, 1), connect=False)
    controller.wait_log('certificate not accepted', timeout=30)
    time.sleep(2)
    assert not net.switches[0].connected(), 'a switch of another CA got in'
    assert controller.count('switch connected') == 0, controller.tail()
    assert controller.counter('tls_unverified') >= 1

    # Given a certificate of the switch CA, the same switch connects.
    ovs_ssl('sc')
    controller.wait_log('switch connected', timeout=40)
    assert net.waitConnected(timeout=20), controller.tail()
