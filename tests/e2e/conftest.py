"""Fixtures of the end-to-end tests: the real `tierflow` binary against real
Open vSwitch (userspace datapath) in Mininet.

Owns: the environment check (root, OVS, Mininet: missing ones FAIL every
test, they never skip), building and running the controller (one fresh
process per test, logging at RUST_LOG=info into a file under the test's temp
dir, stopped with SIGTERM), Mininet networks (`mn -c` before each, stopped
after), reading the controller's log (switches, LLDP links, OFPT_ERRORs, the
final stats line) and the figures printed at the end of the run.

Run with Debian's interpreter, which has the mininet module:
    /usr/bin/python3 -m pytest -v tests/e2e
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Keep the checkout clean of __pycache__ (mininet/ and tests/ are source).
sys.dont_write_bytecode = True
sys.path.insert(0, str(REPO / 'mininet'))
# Mininet's Node.popen(shell=True) reads $SHELL, which CI (no login shell)
# leaves unset.
os.environ.setdefault('SHELL', '/bin/sh')

#: Figures the tests measured, printed in the terminal summary (pytest
#: captures the tests' own output when they pass).
FIGURES = []


def figure(text):
    """Records a measured figure for the end-of-run summary."""
    FIGURES.append(text)
    print(text)


def pytest_configure(config):
    # Mininet 2.3.0 compares OVS versions with distutils, deprecated in 3.11.
    config.addinivalue_line('filterwarnings', 'ignore::DeprecationWarning:mininet.node')


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section('Tierflow e2e figures')
        for line in FIGURES:
            terminalreporter.write_line(line)


def _environment_problems():
    problems = []
    if os.geteuid() != 0:
        problems.append('not root (Mininet and OVS need root)')
    for cmd in ('ovs-vsctl', 'ovs-ofctl', 'mn', 'ping', 'ethtool'):
        if shutil.which(cmd) is None:
            problems.append('%s not installed (run scripts/setup.sh)' % cmd)
    try:
        import mininet.net  # noqa: F401
    except ImportError as e:
        problems.append('no mininet module in %s (%s): run with /usr/bin/python3'
                        % (sys.executable, e))
    if shutil.which('ovs-vsctl'):
        try:
            r = subprocess.run(['ovs-vsctl', '--timeout=5', 'show'],
                               capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                problems.append('Open vSwitch is not running: %s (start it with '
                                '/usr/share/openvswitch/scripts/ovs-ctl start)'
                                % r.stderr.strip())
        except subprocess.TimeoutExpired:
            problems.append('ovs-vsctl show timed out: ovsdb-server hung?')
    return problems


@pytest.fixture(scope='session', autouse=True)
def environment():
    """Every test needs root, a running OVS and Mininet: without them the
    run fails, loudly, instead of passing on nothing."""
    problems = _environment_problems()
    if problems:
        pytest.fail('e2e environment unusable:\n  ' + '\n  '.join(problems),
                    pytrace=False)
    from mininet.log import setLogLevel
    setLogLevel('warning')


@pytest.fixture(scope='session')
def tierflow_bin():
    """target/debug/tierflow, built now (a no-op when cargo test built it);
    TIERFLOW_BIN overrides."""
    if os.environ.get('TIERFLOW_BIN'):
        return os.environ['TIERFLOW_BIN']
    r = subprocess.run(['cargo', 'build', '--quiet', '--bin', 'tierflow'],
                       cwd=REPO, capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        pytest.fail('cargo build failed:\n' + r.stderr[-4000:], pytrace=False)
    return str(REPO / 'target' / 'debug' / 'tierflow')


class RedisServer:
    """A private redis-server for the end-to-end tests, on a free port (the
    system Redis on 6379 is the demo's): stoppable and restartable on the
    same port, for the tests of Redis outages."""

    def __init__(self, workdir):
        if shutil.which('redis-server') is None:
            pytest.fail('redis-server not installed (run scripts/setup.sh)', pytrace=False)
        self.port = free_port()
        self.workdir = Path(workdir)
        self.proc = None

    @property
    def url(self):
        return 'redis://127.0.0.1:%d' % self.port

    def start(self, timeout=10.0):
        assert self.proc is None, 'redis-server already running'
        self.proc = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--dir', str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.cli('PING', check=False) == 'PONG':
                return
            time.sleep(0.05)
        pytest.fail('redis-server on port %d did not answer PING' % self.port, pytrace=False)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def cli(self, *args, check=True):
        r = subprocess.run(['redis-cli', '-p', str(self.port)] + list(args),
                           capture_output=True, text=True, timeout=10)
        if check:
            assert r.returncode == 0, 'redis-cli %s: %s' % (args, r.stderr)
        return r.stdout.strip()


@pytest.fixture(scope='session')
def redis_server(tmp_path_factory):
    """The tests' own Redis, emptied before each test that uses it."""
    r = RedisServer(tmp_path_factory.mktemp('redis'))
    r.start()
    yield r
    r.stop()


@pytest.fixture
def redis(redis_server):
    if redis_server.proc is None:
        redis_server.start()
    redis_server.cli('FLUSHALL')
    return redis_server


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


LINK_RE = re.compile(r'link (up|down) ([0-9a-f]+):(\d+) -> ([0-9a-f]+):(\d+)')
#: tracing's default timestamp, e.g. 2026-11-23T21:43:12.016109Z.
TS_RE = re.compile(r'^\S*?(\d\d):(\d\d):(\d\d(?:\.\d+)?)Z')
STATS_RE = re.compile(r'stopped stats=(\{.*\})')
SWITCH_ERROR = 'switch sent OFPT_ERROR'


class Controller:
    """One `tierflow run` on a fixed OpenFlow port, restartable. Each start
    logs to its own file (run1.log, run2.log, ...), so counts are per run."""

    def __init__(self, binary, workdir, redis_url, extra=()):
        self.binary = binary
        self.redis_url = redis_url
        self.extra = list(extra)
        self.workdir = Path(workdir)
        self.port = free_port()
        self.api_port = free_port()
        self.proc = None
        self.started = None
        self.logs = []
        self.stats = []

    @property
    def addr(self):
        return '127.0.0.1:%d' % self.port

    @property
    def log(self):
        return self.logs[-1]

    def start(self, timeout=20.0):
        assert self.proc is None, 'controller already running'
        log = self.workdir / ('run%d.log' % (len(self.logs) + 1))
        self.logs.append(log)
        self.started = time.monotonic()
        env = dict(os.environ, RUST_LOG=os.environ.get('TIERFLOW_E2E_LOG', 'info'))
        with open(log, 'wb') as out:
            self.proc = subprocess.Popen(
                self.argv(),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                pytest.fail('controller exited at start:\n' + self.tail(), pytrace=False)
            if self.listening():
                return
            time.sleep(0.05)
        pytest.fail('controller not listening on %s after %ss:\n%s'
                    % (self.addr, timeout, self.tail()), pytrace=False)

    def argv(self):
        """The `tierflow run` command line."""
        return [self.binary, 'run', '--openflow', self.addr,
                '--api', '127.0.0.1:%d' % self.api_port,
                '--redis', self.redis_url] + self.extra

    def listening(self):
        """Whether the OpenFlow listener accepts connections yet."""
        try:
            socket.create_connection(('127.0.0.1', self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self, timeout=15.0):
        """SIGTERM, wait, and return the stats of the final log line."""
        if self.proc is None:
            return self.stats[-1] if self.stats else None
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError('controller ignored SIGTERM for %ss:\n%s'
                                 % (timeout, self.tail()))
        m = STATS_RE.search(self.text())
        stats = json.loads(m.group(1)) if m else None
        self.stats.append(stats)
        assert rc == 0, 'controller exited %s on SIGTERM:\n%s' % (rc, self.tail())
        assert stats is not None, 'no final stats line:\n' + self.tail()
        return stats

    def kill(self):
        """SIGKILL (a crash: nothing is flushed, no lease given up)."""
        assert self.proc is not None, 'controller not running'
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait()
        self.stats.append(None)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def text(self, log=None):
        return Path(log or self.log).read_text(errors='replace')

    def tail(self, n=40):
        return '\n'.join(self.text().splitlines()[-n:]) if self.logs else ''

    def count(self, needle, all_runs=False):
        logs = self.logs if all_runs else self.logs[-1:]
        return sum(self.text(log).count(needle) for log in logs)

    def grep(self, needle, all_runs=True, limit=10):
        logs = self.logs if all_runs else self.logs[-1:]
        lines = [ln for log in logs for ln in self.text(log).splitlines() if needle in ln]
        return lines[:limit]

    def links(self):
        """Directed links currently up by this run's log:
        {((dpid, port), (dpid, port))}."""
        up = set()
        for state, a, pa, b, pb in LINK_RE.findall(self.text()):
            link = ((int(a, 16), int(pa)), (int(b, 16), int(pb)))
            if state == 'up':
                up.add(link)
            else:
                up.discard(link)
        return up

    def log_seconds(self, needle):
        """Timestamps (seconds in the day, from the log) of this run's lines
        containing `needle`."""
        out = []
        for line in self.text().splitlines():
            m = TS_RE.match(line)
            if m and needle in line:
                h, mi, sec = m.groups()
                out.append(int(h) * 3600 + int(mi) * 60 + float(sec))
        return out

    def discovery_secs(self, expected):
        """From the last switch's handshake to the last link of `expected`
        being logged up (the controller's own clock)."""
        connected = self.log_seconds('switch connected')
        ups = []
        seen = set()
        for line in self.text().splitlines():
            m = LINK_RE.search(line)
            t = TS_RE.match(line)
            if not (m and t) or m.group(1) != 'up':
                continue
            _, a, pa, b, pb = m.groups()
            link = ((int(a, 16), int(pa)), (int(b, 16), int(pb)))
            if link in expected and link not in seen:
                seen.add(link)
                h, mi, sec = t.groups()
                ups.append(int(h) * 3600 + int(mi) * 60 + float(sec))
        if not connected or not ups:
            return 0.0
        return max(0.0, max(ups) - max(connected))

    def wait_links(self, expected, timeout=20.0):
        """Waits until every directed link in `expected` is logged up.
        Returns the seconds it took."""
        t0 = time.monotonic()
        while True:
            missing = expected - self.links()
            if not missing:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError('LLDP did not find %s within %ss:\n%s'
                                     % (sorted(missing), timeout, self.tail()))
            if not self.running():
                raise AssertionError('controller died:\n' + self.tail())
            time.sleep(0.1)

    def wait_log(self, needle, n=1, timeout=20.0):
        t0 = time.monotonic()
        while self.count(needle) < n:
            if time.monotonic() - t0 > timeout:
                raise AssertionError('%r seen %d times, wanted %d, within %ss:\n%s'
                                     % (needle, self.count(needle), n, timeout, self.tail()))
            time.sleep(0.05)
        return time.monotonic() - t0

    def responsive(self, timeout=2.0):
        """A fresh TCP connection to the OpenFlow port gets the controller's
        OpenFlow 1.3 HELLO within `timeout`: the accept loop and the
        runtime are not wedged."""
        with socket.create_connection(('127.0.0.1', self.port), timeout=timeout) as s:
            s.settimeout(timeout)
            hdr = b''
            while len(hdr) < 8:
                chunk = s.recv(8 - len(hdr))
                if not chunk:
                    return False
                hdr += chunk
        return hdr[0] == 4 and hdr[1] == 0

    def switch_errors(self):
        """OFPT_ERRORs over every run: log lines, and the final stats'
        switch_errors of every run that stopped."""
        lines = self.count(SWITCH_ERROR, all_runs=True)
        stats = sum((s or {}).get('switch_errors', 0) for s in self.stats)
        return lines, stats


@pytest.fixture
def controller_factory(tierflow_bin, tmp_path, redis):
    """Factory: a controller on the tests' Redis with extra `tierflow run`
    flags (not started: call .start()); stopped (SIGTERM) after the test."""
    made = []

    def make(*extra):
        # Each controller of a test logs in a directory of its own.
        workdir = tmp_path if not made else tmp_path / ('controller%d' % (len(made) + 1))
        workdir.mkdir(exist_ok=True)
        c = Controller(tierflow_bin, workdir, redis.url, extra)
        made.append(c)
        return c

    yield make
    for c in made:
        if c.running():
            c.stop()
        print('controller logs: %s' % ', '.join(map(str, c.logs)))


@pytest.fixture
def controller(controller_factory):
    """A running controller with an empty CRM (plain forwarding), fresh for
    each test."""
    c = controller_factory()
    c.start()
    return c


def mn_clean():
    r = subprocess.run(['mn', '-c'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, 'mn -c failed:\n' + r.stderr[-2000:]


def expected_links(net):
    """The directed switch-to-switch links of a started Mininet network,
    as the controller logs them: ((dpid, port), (dpid, port)). Desk
    switches (standalone, behind an edge port) make none."""
    from tierflow_mn import tierflow_switches
    switches = tierflow_switches(net)
    links = set()
    for link in net.links:
        a, b = link.intf1, link.intf2
        if a.node in switches and b.node in switches:
            pa = (int(a.node.dpid, 16), a.node.ports[a])
            pb = (int(b.node.dpid, 16), b.node.ports[b])
            links.add((pa, pb))
            links.add((pb, pa))
    return links


@pytest.fixture
def mn_net_factory():
    """mn_net_factory(controller)(topo): cleans stale Mininet state, starts
    `topo` against `controller`, waits until every switch is connected and
    LLDP found every link; every network is stopped after the test."""
    nets = []

    def for_controller(controller):
        def make(topo, discover=True):
            from tierflow_mn import start_net
            mn_clean()
            t0 = time.monotonic()
            net = start_net(topo, controller=controller.addr, wait=None)
            nets.append(net)
            if not net.waitConnected(timeout=20):
                raise AssertionError('switches did not connect:\n' + controller.tail())
            from tierflow_mn import tierflow_switches
            controller.wait_log('switch connected', n=len(tierflow_switches(net)))
            if discover:
                links = expected_links(net)
                controller.wait_links(links)
                net.discovery_secs = controller.discovery_secs(links)
            net.startup_secs = time.monotonic() - t0
            return net
        return make

    yield for_controller
    for net in nets:
        net.stop()


@pytest.fixture
def mn_net(controller, mn_net_factory):
    """Factory: mn_net(topo) against the test's controller (see
    mn_net_factory)."""
    return mn_net_factory(controller)


def switch_rx_packets(net):
    """rx_packets summed over every switch port (the switch ends of the
    veths live in the root namespace)."""
    total = 0
    for sw in net.switches:
        for intf in sw.intfList():
            if intf.name == 'lo':
                continue
            path = Path('/sys/class/net/%s/statistics/rx_packets' % intf.name)
            if path.exists():
                total += int(path.read_text())
    return total
