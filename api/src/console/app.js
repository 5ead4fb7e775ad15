// The operator console: polls the REST API every second and shows the
// network, the alarms, the tiers with their live session counts and the
// sessions with their tier, state, measured rates and explanation; acts
// through the same API (tier override, hold and resume, tier edits) with
// the operator's token. Every failed request is shown on the page.
//
// Rows are keyed (data-session-id, data-tier) and updated in place, so a
// poll never resets a field the operator is editing or a list that is open.

import * as api from './api.js';
import { drawTopology, shortDpid } from './topology.js';

const POLL_MS = 1000;
/** Live data older than this is flagged stale. */
const STALE_MS = 3000;
/** A measurement older than this is shown greyed (a live session's is
 * at most 2 s old, and the page polls every second). */
const MEASURE_STALE_MS = 3500;
const MAX_ERRORS = 6;

const state = {
  health: null,
  topology: { switches: [], links: [], hosts: [] },
  sessions: [],
  sessionsTotal: 0,
  tiers: [],
  alarms: [],
  selected: null, // session id
  focus: null, // dpid the sessions are filtered by
  lastOk: 0,
  seq: 0,
  applied: 0,
};

const $ = (sel) => document.querySelector(sel);
const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden']);

/** A DOM element: `on*` attributes are listeners, PROPS are properties. */
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) e[k] = v;
    else if (v !== false) e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

function fmtRate(kbps) {
  if (kbps === null || kbps === undefined) return '—';
  if (kbps >= 1000) return `${nf1.format(kbps / 1000)} Mbit/s`;
  return `${nf.format(kbps)} kbit/s`;
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${nf1.format(s / 3600)} h ago`;
  return `${nf1.format(s / 86400)} d ago`;
}

const STATUS_TEXT = {
  0: 'no answer', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Content', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

// ------------------------------------------------------------ messages

function failure(e) {
  return e instanceof api.ApiFailure ? e : new api.ApiFailure('', '', 0, String(e?.message ?? e));
}

function describe(f) {
  const parts = [h('strong', { class: 'error-status' }, `${f.status || ''} ${STATUS_TEXT[f.status] ?? ''}`.trim()),
    ` ${f.method} ${f.path}: `, h('span', { class: 'error-text' }, f.error)];
  if (f.field) parts.push(' ', h('span', { class: 'error-field', 'data-field': f.field }, `field: ${f.field}`));
  if (f.status === 401) parts.push(h('span', { class: 'hint' }, ' — set the API token at the top right.'));
  return parts;
}

/** A failed action: stays until dismissed. */
function showError(e) {
  const f = failure(e);
  console.error(f);
  const box = h('div', { class: 'error', role: 'alert', 'data-status': f.status, 'data-field': f.field ?? '' },
    ...describe(f),
    h('button', { class: 'dismiss', type: 'button', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: () => box.remove() }, '×'));
  const list = $('#errors');
  list.prepend(box);
  while (list.children.length > MAX_ERRORS) list.lastElementChild.remove();
}

/** Failed polls: one banner, gone once every resource answers again. */
function showPollErrors(failures) {
  const box = $('#poll-error');
  if (!failures.length) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const f = failures.map(failure);
  box.dataset.status = f[0].status;
  box.replaceChildren(h('strong', {}, 'Live data is not updating. '),
    ...f.flatMap((x, i) => [i ? h('br') : '', ...describe(x)]));
  box.hidden = false;
}

let noticeTimer = 0;
function notice(text) {
  const box = $('#notice');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

/** Runs an API action from a control: disabled meanwhile, errors shown. */
async function act(control, what, fn) {
  if (control) control.disabled = true;
  try {
    await fn();
    notice(what);
    await poll();
  } catch (e) {
    showError(e);
  } finally {
    if (control) control.disabled = false;
  }
}

// ------------------------------------------------------------ polling

async function poll() {
  const seq = ++state.seq;
  const results = await Promise.allSettled([
    api.get('/health'), api.get('/topology'), api.get('/sessions?limit=1000'),
    api.get('/tiers'), api.get('/alarms'),
  ]);
  if (seq < state.applied) return; // a later poll already drew newer data
  state.applied = seq;
  const [health, topology, sessions, tiers, alarms] = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
  if (health) state.health = health;
  if (topology) state.topology = topology;
  if (sessions) {
    state.sessions = sessions.items;
    state.sessionsTotal = sessions.total;
  }
  if (tiers) state.tiers = tiers;
  if (alarms) state.alarms = alarms;
  const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  showPollErrors(failures);
  if (!failures.length) state.lastOk = Date.now();
  render();
}

async function loop() {
  const t0 = Date.now();
  try {
    await poll();
  } catch (e) {
    showPollErrors([e]);
  }
  setTimeout(loop, Math.max(50, POLL_MS - (Date.now() - t0)));
}

// ------------------------------------------------------------ rendering

function render() {
  renderStatus();
  renderAlarms();
  renderTiers();
  renderSessions();
  renderDetail();
  renderTopology();
}

function pill(id, ok, text, title) {
  const p = $(id);
  p.dataset.state = ok === null ? 'unknown' : ok ? 'ok' : 'bad';
  p.textContent = text;
  p.title = title;
}

function renderStatus() {
  const hl = state.health;
  if (hl) {
    pill('#health-redis', hl.redis, hl.redis ? 'Redis up' : 'Redis down', 'the CRM store');
    const up = hl.ovsdb.filter((o) => o.connected).length;
    pill('#health-ovsdb', hl.ovsdb.length ? up === hl.ovsdb.length : null,
      hl.ovsdb.length ? `OVSDB ${up}/${hl.ovsdb.length}` : 'no OVSDB',
      hl.ovsdb.map((o) => `${o.endpoint}: ${o.connected ? 'connected' : 'down'}`).join('\n') || 'no OVSDB endpoint configured');
    pill('#health-switches', hl.switches > 0 ? true : null, `${hl.switches} switch${hl.switches === 1 ? '' : 'es'}`,
      'switches connected over OpenFlow');
  }
  const f = $('#freshness');
  if (state.lastOk) {
    const stale = Date.now() - state.lastOk > STALE_MS;
    f.dataset.state = stale ? 'stale' : 'live';
    f.textContent = `${stale ? 'stale since' : 'updated'} ${new Date(state.lastOk).toLocaleTimeString()}`;
  }
}

function renderAlarms() {
  const list = $('#alarms');
  $('#alarm-count').textContent = state.alarms.length ? String(state.alarms.length) : '';
  $('#alarm-count').dataset.severity = state.alarms.some((a) => a.severity === 'critical') ? 'critical'
    : state.alarms.length ? 'warning' : '';
  if (!state.alarms.length) {
    list.replaceChildren(h('li', { class: 'empty', id: 'no-alarms' }, 'No alarms.'));
    return;
  }
  list.replaceChildren(...state.alarms.map((a) => h('li', {
    class: `alarm ${a.severity}`, 'data-alarm-kind': a.kind, 'data-severity': a.severity, 'data-dpid': a.dpid ?? '',
  },
  h('span', { class: 'badge' }, a.severity),
  h('span', { class: 'kind' }, a.kind.replace(/_/g, ' ')),
  a.count > 1 ? h('span', { class: 'times', title: 'times seen since' }, `×${nf.format(a.count)}`) : '',
  h('span', { class: 'since', title: new Date(a.since).toLocaleString() }, ago(a.since)),
  h('div', { class: 'message' }, a.message))));
}

function tierCounts() {
  const counts = new Map();
  for (const s of state.sessions) {
    if (s.state === 'ended') continue;
    const c = counts.get(s.tier) ?? { live: 0, hold: 0 };
    c.live += 1;
    if (s.state === 'hold') c.hold += 1;
    counts.set(s.tier, c);
  }
  return counts;
}

// Tiers --------------------------------------------------------------

const tierRows = new Map(); // name -> {row, cells, inputs}
const EDITABLE = ['rate_kbps', 'burst_kbits', 'hold_rate_kbps'];

function tierRow(name) {
  const inputs = {};
  const row = h('tr', { 'data-tier': name });
  const save = () => saveTier(name, r, button);
  const revert = () => {
    const current = state.tiers.find((t) => t.name === name);
    for (const [f, inp] of Object.entries(inputs)) {
      delete inp.dataset.dirty;
      if (current) inp.value = String(current[f]);
    }
    row.classList.remove('dirty');
  };
  for (const f of EDITABLE) {
    inputs[f] = h('input', {
      type: 'number', min: 1, step: 1, class: 'num-input', 'data-field': f, 'aria-label': `${name} ${f}`,
      oninput: (e) => { e.target.dataset.dirty = '1'; row.classList.add('dirty'); },
      onkeydown: (e) => {
        if (e.key === 'Enter') save();
        if (e.key === 'Escape') revert();
      },
    });
  }
  const button = h('button', { type: 'button', class: 'apply', 'data-action': 'save-tier', onclick: save,
    title: 'PUT /tiers/{name}: applies to every live session of the tier' }, 'Apply');
  const cells = {
    name: h('td', { class: 'name' }),
    min: h('td', { class: 'num' }),
    dscp: h('td', { class: 'num' }),
    queue: h('td', { class: 'num' }),
    count: h('td', { class: 'num count-cell' }),
  };
  row.append(cells.name, cells.min, h('td', { class: 'num' }, inputs.rate_kbps),
    h('td', { class: 'num' }, inputs.burst_kbits), h('td', { class: 'num' }, inputs.hold_rate_kbps),
    cells.dscp, cells.queue, cells.count, h('td', {}, button));
  const r = { row, cells, inputs };
  return r;
}

async function saveTier(name, r, button) {
  const current = state.tiers.find((t) => t.name === name);
  if (!current) return;
  const body = { ...current };
  for (const [f, inp] of Object.entries(r.inputs)) {
    body[f] = inp.value.trim() === '' ? null : Number(inp.value);
  }
  await act(button, `Tier ${name}: ${fmtRate(body.rate_kbps)}, burst ${nf.format(body.burst_kbits)} kbit, hold ${fmtRate(body.hold_rate_kbps)}`, async () => {
    await api.put(`/tiers/${encodeURIComponent(name)}`, body);
    for (const inp of Object.values(r.inputs)) delete inp.dataset.dirty;
    r.row.classList.remove('dirty');
  });
}

function renderTiers() {
  const tbody = $('#tiers tbody');
  const counts = tierCounts();
  const names = new Set(state.tiers.map((t) => t.name));
  for (const [name, r] of tierRows) {
    if (!names.has(name)) {
      r.row.remove();
      tierRows.delete(name);
    }
  }
  const sorted = [...state.tiers].sort((a, b) => b.min_benefit - a.min_benefit || a.name.localeCompare(b.name));
  sorted.forEach((t, i) => {
    let r = tierRows.get(t.name);
    if (!r) {
      r = tierRow(t.name);
      tierRows.set(t.name, r);
    }
    if (tbody.children[i] !== r.row) tbody.insertBefore(r.row, tbody.children[i] ?? null);
    const c = counts.get(t.name) ?? { live: 0, hold: 0 };
    r.cells.name.replaceChildren(h('span', { class: 'tier-name' }, t.name));
    r.cells.min.textContent = nf.format(t.min_benefit);
    r.cells.dscp.textContent = String(t.dscp);
    r.cells.queue.textContent = String(t.queue_id);
    r.cells.queue.title = `queue ${t.queue_id}, at least ${fmtRate(t.queue_min_kbps)}`;
    r.cells.count.dataset.count = String(c.live);
    r.cells.count.replaceChildren(String(c.live), c.hold ? h('span', { class: 'muted' }, ` (${c.hold} held)`) : '');
    for (const [f, inp] of Object.entries(r.inputs)) {
      if (!inp.dataset.dirty && document.activeElement !== inp) inp.value = String(t[f]);
    }
  });
}

// Sessions -----------------------------------------------------------

const sessionRows = new Map(); // id -> {row, cells, select, auto, hold, resume}

function visibleSessions() {
  return state.sessions.filter((s) => ($('#show-ended').checked || s.state !== 'ended')
    && (!state.focus || s.path.includes(state.focus)));
}

function sessionRow(id) {
  const row = h('tr', { 'data-session-id': id, tabindex: 0 });
  const path = `/sessions/${encodeURIComponent(id)}`;
  const select = h('select', {
    'data-action': 'override', 'aria-label': 'Override the tier',
    title: 'PUT /sessions/{id}/tier: the session keeps this tier until returned to automatic',
    onchange: () => act(select, `Session ${id}: tier ${select.value} (manual override)`,
      () => api.put(`${path}/tier`, { tier: select.value })),
  });
  const auto = h('button', {
    type: 'button', 'data-action': 'auto', title: 'DELETE /sessions/{id}/tier: back to the automatic choice',
    onclick: () => act(auto, `Session ${id}: back to the automatic tier`, () => api.del(`${path}/tier`)),
  }, 'Auto');
  const hold = h('button', {
    type: 'button', 'data-action': 'hold', title: 'PUT /sessions/{id}/state hold: the tier\'s hold rate applies',
    onclick: () => act(hold, `Session ${id}: on hold`, () => api.put(`${path}/state`, { state: 'hold' })),
  }, 'Hold');
  const resume = h('button', {
    type: 'button', 'data-action': 'resume', title: 'PUT /sessions/{id}/state active',
    onclick: () => act(resume, `Session ${id}: resumed`, () => api.put(`${path}/state`, { state: 'active' })),
  }, 'Resume');
  const cells = {
    client: h('td', { 'data-cell': 'client' }),
    service: h('td', { 'data-cell': 'service' }),
    tier: h('td', { 'data-cell': 'tier' }),
    state: h('td', { 'data-cell': 'state' }),
    measured: h('td', { 'data-cell': 'measured', class: 'measured' }),
    explanation: h('td', { 'data-cell': 'explanation', class: 'explanation' }),
  };
  row.append(...Object.values(cells), h('td', { class: 'actions' }, select, auto, hold, resume));
  const toggle = (e) => {
    if (e.target.closest('button, select, input, a')) return;
    state.selected = state.selected === id ? null : id;
    render();
  };
  row.addEventListener('click', toggle);
  row.addEventListener('keydown', (e) => { if (e.key === 'Enter' && e.target === row) toggle(e); });
  return { row, cells, select, auto, hold, resume };
}

function rateBar(dir, kbps, rate, at) {
  const stale = at && Date.now() - Date.parse(at) > MEASURE_STALE_MS;
  const frac = kbps === null || !rate ? 0 : kbps / rate;
  const bar = h('span', { class: 'fill' });
  bar.style.width = `${Math.min(frac, 1) * 100}%`;
  return h('div', {
    class: `rate${stale ? ' stale' : ''}${frac > 1.1 ? ' over' : ''}`, 'data-direction': dir,
    'data-kbps': kbps ?? '', title: at ? `measured ${ago(at)}` : 'not measured yet',
  },
  h('span', { class: 'dir' }, dir === 'to_server' ? '↑' : '↓'),
  h('span', { class: 'gauge' }, bar),
  h('span', { class: 'figure' }, `${fmtRate(kbps)} / ${fmtRate(rate)}`));
}

function termsLine(e) {
  const t = e.terms;
  const part = (label, v, title) => h('span', { class: 'term', 'data-term': label, title }, `${label} ${nf.format(v)}`);
  return h('div', { class: 'terms' },
    part('margin', t.margin, 'weights.margin × annual_revenue × margin_pct / 100'), ' + ',
    part('opportunity', t.opportunity, 'weights.opportunity × open_opportunity_value × win_probability'), ' + ',
    part('retention', t.retention, 'weights.retention × lifetime_value × churn_risk'), ' + ',
    part('promotion', t.promotion, 'benefit_boost of a valid promotion code'), ' = ',
    h('strong', { 'data-term': 'benefit' }, nf.format(e.benefit)));
}

function tierOptions(select, current) {
  const names = state.tiers.map((t) => t.name);
  if (!names.includes(current)) names.push(current);
  const have = [...select.options].map((o) => o.value);
  if (have.join('\n') !== names.join('\n')) {
    select.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
  }
  if (document.activeElement !== select) select.value = current;
}

function renderSessions() {
  const tbody = $('#sessions tbody');
  const tiers = new Map(state.tiers.map((t) => [t.name, t]));
  const shown = visibleSessions();
  const ids = new Set(shown.map((s) => s.id));
  for (const [id, r] of sessionRows) {
    if (!ids.has(id)) {
      r.row.remove();
      sessionRows.delete(id);
    }
  }
  if (state.selected && !state.sessions.some((s) => s.id === state.selected)) state.selected = null;
  const live = state.sessions.filter((s) => s.state !== 'ended').length;
  const more = state.sessionsTotal > state.sessions.length ? ` (first ${state.sessions.length} of ${state.sessionsTotal})` : '';
  const count = $('#session-count');
  count.replaceChildren(`${live} live${more}`, state.focus ? h('button', {
    type: 'button', class: 'chip', id: 'clear-focus', title: 'Show every session',
    onclick: () => { state.focus = null; render(); },
  }, `crossing ${shortDpid(state.focus)} ×`) : '');
  $('#no-sessions').hidden = shown.length > 0;

  shown.forEach((s, i) => {
    let r = sessionRows.get(s.id);
    if (!r) {
      r = sessionRow(s.id);
      sessionRows.set(s.id, r);
    }
    if (tbody.children[i] !== r.row) tbody.insertBefore(r.row, tbody.children[i] ?? null);
    const t = tiers.get(s.tier);
    const ended = s.state === 'ended';
    r.row.dataset.state = s.state;
    r.row.dataset.tier = s.tier;
    r.row.classList.toggle('selected', state.selected === s.id);

    r.cells.client.replaceChildren(h('div', { class: 'ip' }, s.client_ip),
      h('div', { class: 'muted', 'data-customer': s.customer_id ?? '' }, s.customer_id ?? 'unknown client'));
    r.cells.service.replaceChildren(h('div', {}, s.service), h('div', { class: 'muted' }, `→ ${s.server_ip}`));
    r.cells.tier.dataset.tier = s.tier;
    r.cells.tier.replaceChildren(h('span', { class: 'tier-name' }, s.tier),
      s.override_tier ? h('span', { class: 'tag override', title: 'set by an operator' }, 'override') : '');
    r.cells.state.dataset.state = s.state;
    r.cells.state.replaceChildren(h('span', { class: `state ${s.state}` }, s.state),
      s.state_reason ? h('div', { class: 'muted reason' }, s.state_reason) : '');
    const rate = t ? (s.state === 'hold' ? t.hold_rate_kbps : t.rate_kbps) : null;
    const m = s.measured_kbps;
    r.cells.measured.replaceChildren(
      rateBar('to_server', m ? m.to_server : null, rate, m?.at),
      rateBar('to_client', m ? m.to_client : null, rate, m?.at),
      s.state === 'hold' ? h('div', { class: 'muted' }, 'against the hold rate') : '');
    const e = s.explanation;
    r.cells.explanation.replaceChildren(
      h('div', {}, h('span', { class: `reason-tag ${e.reason}`, 'data-reason': e.reason }, e.reason.replace(/_/g, ' ')),
        ' ', h('span', { class: 'detail-text' }, e.detail)),
      termsLine(e));

    tierOptions(r.select, s.override_tier ?? s.tier);
    r.select.disabled = ended;
    r.auto.hidden = !s.override_tier;
    r.auto.disabled = ended;
    r.hold.hidden = s.state !== 'active';
    r.resume.hidden = s.state !== 'hold';
  });
}

function renderDetail() {
  const box = $('#session-detail');
  const s = state.sessions.find((x) => x.id === state.selected);
  if (!s) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const e = s.explanation;
  const w = e.weights;
  const kv = (k, ...v) => [h('dt', {}, k), h('dd', {}, ...v)];
  const inputs = Object.entries(e.inputs).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const m = s.measured_kbps;
  box.dataset.sessionId = s.id;
  box.replaceChildren(
    h('div', { class: 'detail-head' }, h('h3', {}, `Session ${s.id}`),
      h('button', { type: 'button', class: 'dismiss', title: 'Close', 'aria-label': 'Close',
        onclick: () => { state.selected = null; render(); } }, '×')),
    h('div', { class: 'detail-grid' },
      h('dl', {},
        ...kv('client', `${s.client_ip}`, e.inputs.mac ? ` (${e.inputs.mac})` : ''),
        ...kv('customer', s.customer_id ?? 'none', e.matched_by ? ` — matched by ${e.matched_by}` : ''),
        ...kv('service', `${s.service} → ${s.server_ip}`),
        ...kv('state', s.state, s.state_reason ? ` — ${s.state_reason}` : ''),
        ...kv('tier', s.tier, s.override_tier ? ' (manual override)' : ''),
        ...kv('path', h('span', { 'data-path': s.path.join(',') }, s.path.map(shortDpid).join(' → ') || 'none')),
        ...kv('measured', m ? `↑ ${fmtRate(m.to_server)}, ↓ ${fmtRate(m.to_client)} (${ago(m.at)})` : 'not yet'),
        ...kv('meters', s.meters
          ? h('span', { 'data-meters': '' }, `↑ ${fmtRate(s.meters.to_server.rate_kbps)} (bucket ${nf.format(s.meters.to_server.bucket_kbits)} kbit), ↓ ${fmtRate(s.meters.to_client.rate_kbps)} (bucket ${nf.format(s.meters.to_client.bucket_kbits)} kbit)${s.meters.need_kbps ? `; codec needs ${fmtRate(s.meters.need_kbps)}` : ''}`)
          : 'none'),
        ...(e.warnings && e.warnings.length ? kv('warnings', h('ul', { class: 'warnings' }, ...e.warnings.map((x) => h('li', {}, x)))) : []),
        ...kv('client data', inputs),
        ...kv('since', new Date(s.created_at).toLocaleString(), `, updated ${ago(s.updated_at)}`)),
      h('table', { class: 'terms-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'term'), h('th', { class: 'num' }, 'weight'), h('th', { class: 'num' }, 'value'))),
        h('tbody', {},
          h('tr', {}, h('td', {}, 'margin'), h('td', { class: 'num' }, String(w.margin)), h('td', { class: 'num' }, nf.format(e.terms.margin))),
          h('tr', {}, h('td', {}, 'opportunity'), h('td', { class: 'num' }, String(w.opportunity)), h('td', { class: 'num' }, nf.format(e.terms.opportunity))),
          h('tr', {}, h('td', {}, 'retention'), h('td', { class: 'num' }, String(w.retention)), h('td', { class: 'num' }, nf.format(e.terms.retention))),
          h('tr', {}, h('td', {}, `promotion${e.promotion ? ` ${e.promotion}` : ''}`), h('td', { class: 'num' }, ''), h('td', { class: 'num' }, nf.format(e.terms.promotion))),
          h('tr', { class: 'total' }, h('td', {}, 'benefit'), h('td', {}), h('td', { class: 'num' }, nf.format(e.benefit)))),
        h('caption', {}, `${e.reason.replace(/_/g, ' ')}: ${e.detail}`))));
  box.hidden = false;
}

function renderTopology() {
  const s = state.sessions.find((x) => x.id === state.selected);
  const t = state.topology;
  const links = new Set(t.links.map((l) => [l.src_dpid, l.dst_dpid].sort().join('|'))).size;
  $('#topology-summary').textContent = `${t.switches.length} switches, ${links} links, ${t.hosts.length} hosts`;
  drawTopology($('#topology'), t, {
    path: s ? s.path : [],
    endpoints: s ? [s.client_ip, s.server_ip] : [],
    alarmed: state.alarms.map((a) => a.dpid).filter(Boolean),
    focus: state.focus,
    onSwitch: (dpid) => {
      state.focus = state.focus === dpid ? null : dpid;
      render();
    },
  });
}

// ------------------------------------------------------------ start

function start() {
  const tokenInput = $('#token');
  tokenInput.value = api.token();
  tokenInput.addEventListener('input', () => api.setToken(tokenInput.value.trim()));
  $('#show-ended').addEventListener('change', render);
  loop();
}

start();
