"""Several controllers, one network (PRODUCT.md "Several controllers"):
two `tierflow run` instances on one Redis, every switch of the contact
center connected to both.

Checks: one instance is master of every switch (OVS says so: the role of
each controller connection), the other slave; `/cluster` on either shows
the leader, its term and both instances; an API call to the follower acts
on the cluster (it is the leader's answer). `kill -9` of the leader during
a gold iperf3 session: the follower is master of every switch within 3 s
(each switch confirmed the role; OVS's database shows it a few seconds
later), the gold session keeps its rate through the failover (every second of it
at least half the tier's rate, the whole run 90-110 %: the flows and
meters the dead leader installed keep forwarding), a voice-like stream of another customer started at the kill
is admitted as a new session with its tier within 3 s of the kill, the
survivor lists both sessions (the gold one under its id) and changes the
gold session's rate when the gold tier is edited through it. A leader cut
off from Redis (its relay killed) while the follower still reaches it:
the follower takes over, the old leader stops writing once its lease is
over, and exits when Redis answers again and shows the other leading;
the gold session flows throughout.
"""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time

from conftest import SWITCH_ERROR, figure, free_port
from test_api import Api
from test_qos import (GOLD, iperf_servers, load_crm, meters,
                      session_line)
from tierflow_mn import ContactCenterTopo


def vsctl_rows(table, columns):
    out = subprocess.run(['ovs-vsctl', '--format=json', '--columns=' + columns, 'list', table],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    return json.loads(out)['data']


def uuids(cell):
    """The uuids of an OVSDB JSON cell: ["uuid", u] or ["set", [...]]."""
    if cell[0] == 'uuid':
        return [cell[1]]
    return [u[1] for u in cell[1]] if cell[0] == 'set' else []


def roles():
    """{switch: {controller target: role}} as OVS has them."""
    rows = {r[0][1]: (r[1], r[2]) for r in vsctl_rows('controller', '_uuid,target,role')}
    got = {}
    for name, ctls in vsctl_rows('bridge', 'name,controller'):
        got[name] = {}
        for u in uuids(ctls):
            if u in rows:
                target, role = rows[u]
                got[name][target] = role if isinstance(role, str) else ''
    return got


def masters(net, controller):
    """The switches whose connection to `controller` has the MASTER role."""
    target = 'tcp:' + controller.addr
    have = roles()
    return {sw.name for sw in net.switches if have.get(sw.name, {}).get(target) == 'master'}


#: Sends 160-byte UDP datagrams every 20 ms (a G.711 call's media) to
#: argv[1]:argv[2] for argv[3] seconds.
VOICE = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    s.sendto(bytes(160), (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.02)
"""


def log_time(stamp):
    """A controller log line's UTC timestamp, as time.time() counts."""
    return datetime.datetime.strptime(stamp[:26], '%Y-%m-%dT%H:%M:%S.%f').replace(
        tzinfo=datetime.timezone.utc).timestamp()


def per_second(halves):
    """Mbit/s per whole second, from iperf3's half-second intervals."""
    return [(a + b) / 2 for a, b in zip(halves[0::2], halves[1::2])]


def iperf_intervals(proc, timeout=60):
    """iperf3 -J's interval rates, Mbit/s, and its sender's total."""
    out, err = proc.communicate(timeout=timeout)
    j = json.loads(out)
    return ([i['sum']['bits_per_second'] / 1e6 for i in j['intervals']],
            j['end']['sum_sent']['bits_per_second'] / 1e6)


def test_two_instances_one_master_and_a_leader_killed_mid_session(
        tierflow_bin, redis, controller_factory, mn_net_factory):
    load_crm(tierflow_bin, redis)
    a = controller_factory('--crm-mode', 'replica')
    a.start()
    a.wait_log('leads (term')
    b = controller_factory('--crm-mode', 'replica')
    b.start()
    b.wait_log('follows')
    topo = ContactCenterTopo(customers=4, agents=1)

    class Both:
        """The network's controller targets: both instances, A waited on."""
        addr = a.addr + ',' + b.addr

        def __getattr__(self, name):
            return getattr(a, name)

    net = mn_net_factory(Both())(topo)
    b.wait_log('switch connected', n=len(net.switches))
    names = {sw.name for sw in net.switches}
    deadline = time.monotonic() + 10
    while masters(net, a) != names and time.monotonic() < deadline:
        time.sleep(0.2)
    assert masters(net, a) == names, roles()
    assert not masters(net, b), roles()

    api_a, api_b = Api(a.api_port), Api(b.api_port)
    cluster = api_b.get('/cluster')
    ids = {i['id'] for i in cluster['instances']}
    assert cluster['leader'] in ids and len(ids) == 2, cluster
    lead = next(i for i in cluster['instances'] if i['id'] == cluster['leader'])
    assert len(lead['master_of']) == len(names), cluster
    assert api_b.get('/health')['role'] == 'follower'
    assert api_a.get('/health')['role'] == 'leader'
    # The follower answers with the leader's view: its switches and links.
    assert len(api_b.get('/topology')['switches']) == len(names)

    iperf_servers(net)
    cust1, cust2 = net.get('cust1'), net.get('cust2')
    gold = cust1.popen(['iperf3', '-c', '10.0.0.101', '-p', '5201', '-t', '12', '-i', '0.5',
                        '-J'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = session_line(a, '10.0.0.1', '10.0.0.101')
    assert 'tier gold' in line, line
    gold_id = line.split()[1]
    time.sleep(3.5)
    assert GOLD in meters('core1').values()

    # A voice-like stream of another customer (160-byte datagrams every
    # 20 ms to the iperf-udp service) starts with the kill: its first
    # packet after the takeover is a new session for the survivor.
    voice = cust2.popen(['/usr/bin/python3', '-c', VOICE, '10.0.0.101', '5201', '5'],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, killed_wall = time.monotonic(), time.time()
    a.kill()
    admitted = None
    while time.monotonic() - killed < 10:
        if 'admitted: 10.0.0.2 -> 10.0.0.101 ' in b.text():
            admitted = time.monotonic() - killed
            break
        time.sleep(0.05)
    assert admitted is not None, b.tail()
    line = session_line(b, '10.0.0.2', '10.0.0.101')
    assert 'tier bronze' in line, line
    took = re.search(r'^(\S+) .*took over (\d+) switches', b.text(), re.M)
    assert took and int(took.group(2)) == len(names), b.tail()
    taken = log_time(took.group(1)) - killed_wall
    # OVS publishes its connections' roles every few seconds: the survivor
    # shows as master of every switch there too.
    deadline = time.monotonic() + 10
    while masters(net, b) != names and time.monotonic() < deadline:
        time.sleep(0.2)
    assert masters(net, b) == names, roles()
    intervals, sent = iperf_intervals(gold)
    voice.communicate(timeout=30)

    figure('  cluster: 2 instances, %d switches; leader killed (-9) during a gold session: '
           'survivor master of every switch (roles confirmed) %.2f s after the kill, a new '
           'session admitted %.2f s after it; gold 0.5 s intervals %s Mbit/s (sender %.1f)'
           % (len(names), taken, admitted, ' '.join('%.0f' % x for x in intervals), sent))
    assert taken <= 3.0, taken
    assert admitted <= 3.0, admitted
    # The gold session never stopped: every second of it carried at least
    # half its tier's rate (a drop meter makes TCP's half seconds uneven
    # before the kill as after it), and the whole run its rate.
    assert min(per_second(intervals)) >= 0.5 * GOLD / 1000, intervals
    assert 0.9 * GOLD / 1000 <= sent <= 1.1 * GOLD / 1000, sent

    # The survivor knows both sessions; the gold one under its id.
    sessions = {s['id']: s for s in api_b.get('/sessions')['items']}
    assert gold_id in sessions and sessions[gold_id]['tier'] == 'gold', sessions
    assert any(s['client_ip'] == '10.0.0.2' and s['tier'] == 'bronze'
               for s in sessions.values()), sessions
    # A tier edit through the survivor re-meters the adopted session.
    g = api_b.get('/tiers/gold')
    api_b.call('PUT', '/tiers/gold', dict(g, rate_kbps=40_000))
    deadline = time.monotonic() + 5
    while 40_000 not in meters('core1').values() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert 40_000 in meters('core1').values(), meters('core1')
    assert b.count(SWITCH_ERROR) == 0, b.grep(SWITCH_ERROR)


def redis_proxy(port, redis_port):
    """socat relaying 127.0.0.1:port to the tests' Redis: what one
    instance reaches Redis through, to cut it off alone."""
    proc = subprocess.Popen(
        ['socat', 'TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork' % port,
         'TCP:127.0.0.1:%d' % redis_port],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise AssertionError('socat did not listen on %d' % port)


def cut(proc):
    """Stops a relay and every connection it carries."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_leader_cut_from_redis_stops_writing_and_stops_when_it_sees_another_lead(
        tierflow_bin, redis, controller_factory, mn_net_factory):
    load_crm(tierflow_bin, redis)
    port = free_port()
    relay = redis_proxy(port, redis.port)
    try:
        a = controller_factory('--crm-mode', 'replica')
        a.redis_url = 'redis://127.0.0.1:%d' % port
        a.start()
        a.wait_log('leads (term')
        b = controller_factory('--crm-mode', 'replica')
        b.start()
        b.wait_log('follows')

        class Both:
            addr = a.addr + ',' + b.addr

            def __getattr__(self, name):
                return getattr(a, name)

        net = mn_net_factory(Both())(ContactCenterTopo(customers=4, agents=1))
        names = {sw.name for sw in net.switches}
        b.wait_log('switch connected', n=len(names))
        iperf_servers(net)
        gold = net.get('cust1').popen(
            ['iperf3', '-c', '10.0.0.101', '-p', '5201', '-t', '10', '-i', '0.5', '-J'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert 'tier gold' in session_line(a, '10.0.0.1', '10.0.0.101')
        time.sleep(2)
        # The leader loses Redis; the follower still has it.
        t0 = time.monotonic()
        cut(relay)
        b.wait_log('took over', timeout=10)
        taken = time.monotonic() - t0
        a.wait_log('no longer acting as leader', timeout=10)
        fenced = time.monotonic() - t0
        deadline = time.monotonic() + 10
        while masters(net, b) != names and time.monotonic() < deadline:
            time.sleep(0.2)
        assert masters(net, b) == names, roles()
        assert not masters(net, a), roles()
        # Redis back for the old leader: it sees another lead, and stops.
        relay = redis_proxy(port, redis.port)
        rc = a.proc.wait(timeout=15)
        assert rc == 3, a.tail()
        assert 'leads the cluster now; this instance stops' in a.text(), a.tail()
        intervals, sent = iperf_intervals(gold)
        figure('  cluster: leader cut from Redis: the other took over after %.2f s, the old one '
               'stopped writing after %.2f s and exited (3) once Redis answered again; gold '
               '0.5 s intervals %s Mbit/s (sender %.1f)'
               % (taken, fenced, ' '.join('%.0f' % x for x in intervals), sent))
        assert min(per_second(intervals)) >= 0.5 * GOLD / 1000, intervals
        assert b.count(SWITCH_ERROR) == 0, b.grep(SWITCH_ERROR)
    finally:
        cut(relay)
