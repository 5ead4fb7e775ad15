// The network as an SVG picture: switches placed by a small force-directed
// layout (kept between polls, so nothing jumps), hosts fanned out around
// the switch they attach to, links drawn up, or down when a link or a
// switch the page saw earlier is gone. The selected session's path (its
// list of datapath ids) and its two hosts are highlighted.

const W = 800;
const H = 420;
const PAD = 56;
/** Room left around the switches for their hosts and the hosts' labels. */
const MARGIN_X = 140;
const MARGIN_Y = 80;
const HOST_RADIUS = 50;

let positions = new Map(); // dpid -> {x, y}
let layoutKey = '';
let drawn = '';
const seenSwitches = new Set();
const seenLinks = new Map(); // "a|b" with a < b -> [a, b]

/** Short label of a datapath id: its hex digits without leading zeros. */
export function shortDpid(dpid) {
  return dpid.replace(/^0+(?=.)/, '');
}

function linkKey(a, b) {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/**
 * Draws `topo` (GET /topology) into `svg`. `view` says what to highlight:
 * `path` (datapath ids), `endpoints` (host IPs), `alarmed` (datapath ids
 * with an alarm), `focus` (a switch the sessions are filtered by);
 * `onSwitch(dpid)` is called when a switch is clicked.
 */
export function drawTopology(svg, topo, view) {
  for (const s of topo.switches) seenSwitches.add(s);
  const live = new Set(topo.switches);
  const up = new Set();
  for (const l of topo.links) {
    const key = linkKey(l.src_dpid, l.dst_dpid);
    up.add(key);
    seenLinks.set(key, key.split('|'));
  }
  const sig = JSON.stringify([topo, [...seenSwitches], [...seenLinks.keys()],
    view.path, view.endpoints, view.alarmed, view.focus]);
  if (sig === drawn) return;
  drawn = sig;

  const nodes = [...seenSwitches].sort();
  const edges = [...seenLinks.values()];
  const key = JSON.stringify([nodes, [...seenLinks.keys()].sort()]);
  if (key !== layoutKey) {
    positions = layout(nodes, edges);
    layoutKey = key;
  }

  const onPath = new Set();
  const path = view.path ?? [];
  for (let i = 0; i + 1 < path.length; i++) onPath.add(linkKey(path[i], path[i + 1]));
  const pathSwitches = new Set(path);
  const endpoints = new Set(view.endpoints ?? []);
  const alarmed = new Set(view.alarmed ?? []);

  const ns = svg.namespaceURI;
  const el = (tag, attrs = {}, ...children) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
    }
    for (const c of children) e.append(c);
    return e;
  };
  const title = (text) => el('title', {}, text);

  const links = el('g', { class: 'links' });
  for (const [k, [a, b]] of seenLinks) {
    const pa = positions.get(a);
    const pb = positions.get(b);
    if (!pa || !pb) continue;
    const isUp = up.has(k) && live.has(a) && live.has(b);
    const cls = ['link', isUp ? 'up' : 'down', onPath.has(k) ? 'on-path' : ''].join(' ').trim();
    links.append(el('line', {
      class: cls, 'data-link': k, 'data-state': isUp ? 'up' : 'down',
      x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y,
    }, title(`${shortDpid(a)} – ${shortDpid(b)}: ${isUp ? 'up' : 'down'}`)));
  }

  const hostLinks = el('g', { class: 'host-links' });
  const hosts = el('g', { class: 'hosts' });
  for (const [h, p, s] of placeHosts(topo.hosts)) {
    const hi = h.ip && endpoints.has(h.ip);
    hostLinks.append(el('line', {
      class: `host-link${hi ? ' on-path' : ''}`, x1: s.x, y1: s.y, x2: p.x, y2: p.y,
    }));
    const label = h.ip ?? h.mac;
    // The label continues outward from the switch: beside the host when
    // the fan points sideways, above or below it otherwise.
    const dx = Math.cos(p.angle);
    const dy = Math.sin(p.angle);
    const side = Math.abs(dx) > 0.45;
    const text = side
      ? { x: dx > 0 ? 10 : -10, y: 4, 'text-anchor': dx > 0 ? 'start' : 'end' }
      : { x: 0, y: dy > 0 ? 19 : -11, 'text-anchor': 'middle' };
    hosts.append(el('g', {
      class: `host${hi ? ' on-path' : ''}`, 'data-host': h.mac, 'data-ip': h.ip ?? '',
      transform: `translate(${p.x} ${p.y})`,
    },
    el('circle', { r: 6 }),
    el('text', text, label),
    title(`${label} (${h.mac}) on ${shortDpid(h.dpid)} port ${h.port}`)));
  }

  const switches = el('g', { class: 'switches' });
  for (const dpid of nodes) {
    const p = positions.get(dpid);
    const isLive = live.has(dpid);
    const cls = ['switch', isLive ? 'up' : 'down', pathSwitches.has(dpid) ? 'on-path' : '',
      alarmed.has(dpid) ? 'alarm' : '', view.focus === dpid ? 'focus' : ''].join(' ')
      .replace(/\s+/g, ' ').trim();
    const label = shortDpid(dpid);
    const w = Math.max(34, 9 * label.length + 16);
    const g = el('g', {
      class: cls, 'data-switch': dpid, 'data-state': isLive ? 'up' : 'down',
      transform: `translate(${p.x} ${p.y})`, tabindex: 0,
    },
    el('rect', { x: -w / 2, y: -13, width: w, height: 26, rx: 5 }),
    el('text', { y: 4.5, 'text-anchor': 'middle' }, label),
    title(`switch ${dpid}${isLive ? '' : ' (disconnected)'}${alarmed.has(dpid) ? ' – alarm' : ''}\nclick: sessions crossing it`));
    g.addEventListener('click', () => view.onSwitch?.(dpid));
    g.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') view.onSwitch?.(dpid);
    });
    switches.append(g);
  }

  svg.replaceChildren(links, hostLinks, hosts, switches);
  if (nodes.length === 0) {
    svg.append(el('text', { x: W / 2, y: H / 2, class: 'placeholder', 'text-anchor': 'middle' },
      'No switch connected'));
  }
}

/** [host, its position, its switch's position] for every host. */
function placeHosts(hosts) {
  const bySwitch = new Map();
  for (const h of hosts) {
    if (!positions.has(h.dpid)) continue;
    if (!bySwitch.has(h.dpid)) bySwitch.set(h.dpid, []);
    bySwitch.get(h.dpid).push(h);
  }
  const neighbours = new Map();
  for (const [a, b] of seenLinks.values()) {
    if (!neighbours.has(a)) neighbours.set(a, []);
    if (!neighbours.has(b)) neighbours.set(b, []);
    neighbours.get(a).push(b);
    neighbours.get(b).push(a);
  }
  const out = [];
  for (const [dpid, list] of bySwitch) {
    list.sort((x, y) => (x.ip ?? x.mac).localeCompare(y.ip ?? y.mac, 'en', { numeric: true }));
    const s = positions.get(dpid);
    // Away from the switch's neighbours (or from the middle of the picture).
    const near = (neighbours.get(dpid) ?? []).map((d) => positions.get(d)).filter(Boolean);
    const from = near.length
      ? { x: near.reduce((t, p) => t + p.x, 0) / near.length, y: near.reduce((t, p) => t + p.y, 0) / near.length }
      : { x: W / 2, y: H / 2 };
    let angle = Math.atan2(s.y - from.y, s.x - from.x);
    if (Math.hypot(s.y - from.y, s.x - from.x) < 1) angle = Math.PI / 2;
    const step = Math.min(0.6, (2 * Math.PI) / list.length);
    list.forEach((h, i) => {
      const a = angle + (i - (list.length - 1) / 2) * step;
      // Every other host a little further out, so neighbours' labels clear.
      const r = HOST_RADIUS + (list.length > 1 ? (i % 2) * 22 : 0);
      const p = {
        x: clamp(s.x + r * Math.cos(a), 12, W - 12),
        y: clamp(s.y + r * Math.sin(a), 14, H - 22),
        angle: a,
      };
      out.push([h, p, s]);
    });
  }
  return out;
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

/**
 * Fruchterman–Reingold: switches repel each other, links pull their ends
 * together, a weak pull to the middle keeps separate parts in view. Starts
 * from the previous positions, so an added switch moves the others little.
 */
function layout(nodes, edges) {
  const pos = new Map();
  const n = nodes.length;
  nodes.forEach((id, i) => {
    const old = positions.get(id);
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
    pos.set(id, old ? { ...old } : { x: W / 2 + (W / 3) * Math.cos(a), y: H / 2 + (H / 3) * Math.sin(a) });
  });
  if (n === 1) pos.set(nodes[0], { x: W / 2, y: H / 2 - 30 });
  if (n <= 1) return pos;
  const k = Math.sqrt(((W - 2 * PAD) * (H - 2 * PAD)) / n);
  let temp = W / 10;
  for (let iter = 0; iter < 300; iter++) {
    const disp = new Map(nodes.map((id) => [id, { x: 0, y: 0 }]));
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const a = pos.get(nodes[i]);
        const b = pos.get(nodes[j]);
        let dx = a.x - b.x;
        let dy = a.y - b.y;
        let d = Math.hypot(dx, dy);
        if (d < 0.01) { dx = 0.01 * (i - j); dy = 0.01; d = Math.hypot(dx, dy); }
        const f = (k * k) / d;
        const da = disp.get(nodes[i]);
        const db = disp.get(nodes[j]);
        da.x += (dx / d) * f; da.y += (dy / d) * f;
        db.x -= (dx / d) * f; db.y -= (dy / d) * f;
      }
    }
    for (const [u, v] of edges) {
      const a = pos.get(u);
      const b = pos.get(v);
      if (!a || !b || u === v) continue;
      const dx = a.x - b.x;
      const dy = a.y - b.y;
      const d = Math.max(Math.hypot(dx, dy), 0.01);
      const f = (d * d) / k;
      const da = disp.get(u);
      const db = disp.get(v);
      da.x -= (dx / d) * f; da.y -= (dy / d) * f;
      db.x += (dx / d) * f; db.y += (dy / d) * f;
    }
    for (const id of nodes) {
      const p = pos.get(id);
      const d = disp.get(id);
      d.x += (W / 2 - p.x) * 0.02 * k / 10;
      d.y += (H / 2 - p.y) * 0.02 * k / 10;
      const len = Math.max(Math.hypot(d.x, d.y), 0.01);
      p.x += (d.x / len) * Math.min(len, temp);
      p.y += (d.y / len) * Math.min(len, temp);
    }
    temp = Math.max(temp * 0.97, 0.5);
  }
  // Fit the picture into the box, leaving room for the hosts around it.
  const xs = nodes.map((id) => pos.get(id).x);
  const ys = nodes.map((id) => pos.get(id).y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = x1 - x0 > 1 ? (W - 2 * MARGIN_X) / (x1 - x0) : 0;
  const sy = y1 - y0 > 1 ? (H - 2 * MARGIN_Y) / (y1 - y0) : 0;
  for (const id of nodes) {
    const p = pos.get(id);
    p.x = sx ? MARGIN_X + (p.x - x0) * sx : W / 2;
    p.y = sy ? MARGIN_Y + (p.y - y0) * sy : H / 2;
  }
  return pos;
}
