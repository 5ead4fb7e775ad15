#!/usr/bin/python3
"""The live demo's network part: the contact-center topology against a
running Tierflow (routed: customers, agents' phones and PCs, and servers
in subnets of their own VLANs, Tierflow their router; `--flat` for the
single bridged LAN), showing what the controller does today (discovery,
loop-free flooding, shortest-path flows on every switch, re-routing around
a failed core link) and customer-value QoS: two customers of different
value measured at the same time through the same network, an operator
changing a tier through the REST API while its session runs, and a call
held and resumed; with `--failover PID --api2 ADDR` (two instances on one
Redis, `--controller A,B`), the leader killed in the middle of a measured
gold session and the other one taking the switches over. Run by
scripts/demo.sh; needs root and a controller listening on --controller, its
API on --api."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_hold import held_call  # noqa: E402
from tierflow_mn import ContactCenterTopo, RoutedContactCenterTopo, iperf_server, start_net  # noqa: E402
from mininet.log import setLogLevel  # noqa: E402


def banner(text):
    print('\n== %s' % text, flush=True)


def tierflow_flows(switch):
    """The switch's flows in Tierflow's cookie namespace (0x7466...)."""
    out = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', switch],
                         capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if 'cookie=0x7466' in line]


def pair_flows(switch, a, b, routed):
    """Tierflow's path flows on `switch` between hosts a and b: by their
    Ethernet addresses (bridged) or, routed, by their IPv4 addresses."""
    if routed:
        return [f for f in tierflow_flows(switch)
                if 'cookie=0x746602' in f and 'nw_src=%s,nw_dst=%s' % (a.IP(), b.IP()) in f]
    return [f for f in tierflow_flows(switch)
            if 'dl_src=%s,dl_dst=%s' % (a.MAC(), b.MAC()) in f]


def configure_vlans(api, topo, routed):
    """The network's VLAN records through the API: the routed topology's
    ports (its VLANs came with its CRM file); none for the flat one (a
    previous routed run's are removed)."""
    if routed:
        for p in topo.tierflow_config()['ports']:
            status, body = api_call(api, 'PUT', '/ports/%s/%d' % (p['dpid'], p['port']), p)
            if status not in (200, 201):
                print('  PUT /ports/%s/%d -> HTTP %s %s' % (p['dpid'], p['port'], status, body))
        return
    _, ports = api_call(api, 'GET', '/ports')
    for p in ports or []:
        api_call(api, 'DELETE', '/ports/%s/%d' % (p['dpid'], p['port']))
    _, vlans = api_call(api, 'GET', '/vlans')
    for v in vlans or []:
        api_call(api, 'DELETE', '/vlans/%d' % v['vid'])


def api_call(api, method, path, body=None):
    """One REST call with the operator's token; returns (status, JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request('http://%s/api/v1%s' % (api, path), data=data,
                                 method=method)
    req.add_header('Content-Type', 'application/json')
    req.add_header('Authorization', 'Bearer ' + os.environ.get('TIERFLOW_API_TOKEN', ''))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b'null')
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b'null')


def print_intervals(out):
    """iperf3 -J's rate second by second."""
    try:
        for i in json.loads(out)['intervals']:
            t = i['sum']
            print('  %4.1f-%4.1f s  %6.1f Mbit/s' % (t['start'], t['end'],
                                                    t['bits_per_second'] / 1e6))
    except (ValueError, KeyError):
        print('  iperf3 gave no result')


def live_tier_change(api, client, server):
    """Runs iperf3 from client, and 4 s in raises the client's tier
    (bronze) through the API; prints each second's rate."""
    _, bronze = api_call(api, 'GET', '/tiers/bronze')
    proc = client.popen(['iperf3', '-c', server.IP(), '-p', '5201', '-t', '9', '-i', '1',
                         '-J'], stdout=subprocess.PIPE, text=True)
    time.sleep(4)
    raised = dict(bronze, rate_kbps=20000, burst_kbits=4000)
    print('  4 s in: curl -X PUT -H "Authorization: Bearer $TIERFLOW_API_TOKEN" '
          '-d \'{"name": "bronze", "rate_kbps": 20000, ...}\' http://%s/api/v1/tiers/bronze'
          % api)
    status, _ = api_call(api, 'PUT', '/tiers/bronze', raised)
    print('  -> HTTP %s; the live session is re-metered on every switch of its path' % status)
    out, _ = proc.communicate(timeout=30)
    print_intervals(out)
    status, _ = api_call(api, 'PUT', '/tiers/bronze', bronze)
    print('  bronze put back to %d kbit/s (HTTP %s)' % (bronze['rate_kbps'], status))


def failover(net, api, api2, pid):
    """kill -9 of the leader (`pid`) 3 s into a 10 s gold iperf3 session:
    the session's rate second by second, and when the other instance said
    it leads."""
    _, cluster = api_call(api2, 'GET', '/cluster')
    banner('Two instances on one Redis: %s leads (term %s), %s follows; kill -9 the leader '
           '3 s into a gold session (cust1 -> web, iperf3 10 s)'
           % ((cluster or {}).get('leader'), (cluster or {}).get('term'),
              (cluster or {}).get('instance')))
    cust1, web = net.get('cust1', 'web')
    gold = cust1.popen(['iperf3', '-c', web.IP(), '-p', '5201', '-t', '10', '-J'],
                       stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    print('  killed the leader (pid %d)' % pid)
    leads = None
    while time.monotonic() - killed < 10:
        _, health = api_call(api2, 'GET', '/health')
        if (health or {}).get('role') == 'leader':
            leads = time.monotonic() - killed
            break
        time.sleep(0.05)
    print('  the other instance leads %s' % ('%.2f s after the kill' % leads if leads
                                              else 'not within 10 s'))
    out, _ = gold.communicate(timeout=40)
    print_intervals(out)
    _, cluster = api_call(api2, 'GET', '/cluster')
    for i in (cluster or {}).get('instances', []):
        print('  /cluster: %s %s, master of %d switches' % (i['id'], i['role'],
                                                             len(i['master_of'])))
    _, page = api_call(api2, 'GET', '/sessions?customer=c-1001')
    for s in (page or {}).get('items', [])[:3]:
        print('  the survivor has %s: %s -> %s tier %s' % (s['id'], s['client_ip'],
                                                           s['server_ip'], s['tier']))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--controller', default='127.0.0.1:6653')
    parser.add_argument('--api', default='127.0.0.1:8080')
    parser.add_argument('--keep', action='store_true',
                        help='leave the network up at the end, until Enter')
    parser.add_argument('--flat', action='store_true',
                        help='the flat contact center: one bridged LAN, no VLANs')
    parser.add_argument('--failover', type=int, metavar='PID',
                        help='last: kill -9 this controller (the leader) mid-session')
    parser.add_argument('--api2', default='127.0.0.1:8081',
                        help="the other instance's API (with --failover)")
    args = parser.parse_args()
    setLogLevel('warning')
    routed = not args.flat

    if routed:
        banner('Routed contact-center topology: customers (VLAN 100, 10.0.0.0/24), servers '
               '(VLAN 300, 10.0.3.0/24), agents\' phones (voice VLAN 200, tagged) and PCs '
               '(data VLAN 210) behind their desks; Tierflow routes between the subnets')
        topo = RoutedContactCenterTopo(customers=4, agents=2)
    else:
        banner('Contact-center topology: 2 customer edges, a triangle core (a loop), the site')
        topo = ContactCenterTopo(customers=4, agents=2)
    configure_vlans(args.api, topo, routed)
    net = start_net(topo, controller=args.controller)
    try:
        time.sleep(2)  # a couple of LLDP rounds: every link discovered
        for sw in net.switches:
            print('  %-6s dpid %s' % (sw.name, sw.dpid))
        cust1, sip = net.get('cust1', 'sip')

        banner('pingall across the loop%s: floods reach every host once, no storm'
               % (' and the router' if routed else ''))
        loss = net.pingAll(timeout=2)
        print('  loss: %.0f%%' % loss)

        banner('First and steady-state ping cust1 -> sip (%s)' % sip.IP())
        out = cust1.cmd('ping -c 5 -i 0.2 %s' % sip.IP())
        for line in out.splitlines():
            if 'time=' in line or 'rtt' in line:
                print('  ' + line)

        banner('Path flows Tierflow installed for cust1 <-> sip, on every switch of the path%s'
               % (' (routed at each direction\'s first switch)' if routed else ''))
        for name in ('edge1', 'core1', 'core3', 'site', 'core2'):
            flows = pair_flows(name, cust1, sip, routed) + pair_flows(name, sip, cust1, routed)
            print('  %s: %s' % (name, 'no flow for this pair (not on the path)' if not flows else ''))
            for f in flows:
                print('     ' + re.sub(r'duration=[^,]*, ', '', f))

        banner('Customer value at work: gold Acme (cust1) and bronze Bolt Bikes (cust2) '
               'at the same time, then best effort (cust4, not a customer); iperf3 10 s each')
        web, cust2, cust4 = net.get('web', 'cust2', 'cust4')
        for host in (web, sip):
            iperf_server(net, host)
        time.sleep(0.5)
        tiers = {t['name']: t for t in (api_call(args.api, 'GET', '/tiers')[1] or [])}

        def run(host, server):
            return host.popen(['iperf3', '-c', server.IP(), '-p', '5201', '-t', '10', '-J'],
                              stdout=subprocess.PIPE, text=True)

        runs = [('cust1 (Acme, gold) -> web', 'gold', run(cust1, web)),
                ('cust2 (Bolt Bikes, bronze) -> sip', 'bronze', run(cust2, sip))]
        runs[0][2].wait(timeout=40)
        runs.append(('cust4 (not a customer, best effort) -> web', 'best-effort',
                     run(cust4, web)))
        for name, tier, proc in runs:
            out, _ = proc.communicate(timeout=40)
            rate = tiers.get(tier, {}).get('rate_kbps')
            try:
                end = json.loads(out)['end']
                bps = end['sum_sent']['bits_per_second']
                rx = end['sum_received']['bits_per_second']
                print('  %-45s %6.1f Mbit/s  (tier %s %s kbit/s: %s of its rate; '
                      'receiver %.1f)'
                      % (name, bps / 1e6, tier, rate,
                         '%.0f %%' % (bps / 10 / rate) if rate else '?', rx / 1e6))
            except (ValueError, KeyError):
                print('  %-45s no result' % name)

        banner('The gold session on every switch of its path: meter, DSCP at the edge, queue')
        for name in ('edge1', 'core1', 'core3', 'site'):
            for f in tierflow_flows(name):
                if 'cookie=0x746603' in f and 'nw_src=%s,nw_dst=%s' % (cust1.IP(), web.IP()) in f:
                    print('  %-6s %s' % (name, re.sub(r'.*priority=', 'priority=', f)))
        meters = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-meters', 'core1'],
                                capture_output=True, text=True).stdout
        rates = sorted(set(re.findall(r'rate=(\d+)', meters)), key=int)
        print('  core1 meters (kbit/s): %s' % ', '.join(rates))
        queues = subprocess.run(['ovs-vsctl', '--columns=other_config', 'list', 'queue'],
                                capture_output=True, text=True).stdout
        maxes = sorted({int(m) // 1000 for m in re.findall(r'max-rate="(\d+)"', queues)})
        print('  OVSDB linux-htb queues (max kbit/s): %s' % (', '.join(map(str, maxes)) or 'none'))

        banner('Cut core1 <-> core3 while cust1 pings sip: traffic re-routes via core2')
        pinger = cust1.popen(['ping', '-i', '0.05', '-c', '80', sip.IP()],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        net.configLinkStatus('core1', 'core3', 'down')
        out, _ = pinger.communicate(timeout=20)
        summary = [l for l in out.splitlines() if 'packet loss' in l]
        print('  ' + (summary[0] if summary else out[-200:]))
        for name in ('core1', 'core2'):
            for f in pair_flows(name, cust1, sip, routed):
                print('  %s: %s' % (name, re.sub(r'duration=[^,]*, ', '', f)))
        net.configLinkStatus('core1', 'core3', 'up')

        banner('The operator\'s REST API (interactive docs: http://%s/docs): '
               'raise bronze to 20 Mbit/s while Bolt Bikes (cust2) runs' % args.api)
        live_tier_change(args.api, cust2, sip)
        _, page = api_call(args.api, 'GET', '/sessions?customer=c-1002')
        for s in (page or {}).get('items', [])[:3]:
            e = s['explanation']
            print('  GET /sessions/%s: %s -> %s tier %s (%s): %s'
                  % (s['id'], s['client_ip'], s['server_ip'], s['tier'], e['reason'],
                     e['detail']))

        banner('A call on hold: a SIP call (sipp, with RTP both ways) from gold Acme (cust1), '
               'put on hold by the contact center (re-INVITE a=sendonly, music on hold) and '
               'resumed; bandwidth, meters on its path, and the music at the caller')
        held_call(net, api=args.api)

        if args.failover:
            failover(net, args.api, args.api2, args.failover)
            args.api = args.api2

        if args.keep:
            banner('Network and controller stay up. cust2 (bronze) sends to sip for an hour; '
                   'open the console http://%s/ (or /docs, Authorize with the token), '
                   'raise bronze, and '
                   'watch `ovs-ofctl -O OpenFlow13 dump-meters core2` and '
                   '`GET /switches/{dpid}/meters`. Enter stops.' % args.api)
            cust2.cmd('iperf3 -c %s -p 5201 -t 3600 >/dev/null 2>&1 &' % sip.IP())
            input()
    finally:
        net.stop()


if __name__ == '__main__':
    main()
