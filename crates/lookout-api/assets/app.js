// lookout dashboard: one module, no dependencies. Live figures come from one server-sent
// events stream; history from /api/v1/history; charts are drawn on canvas here (a few hundred
// lines instead of a vendored chart library).
'use strict';

import { createAlertsView } from '@alerts.js@';

const $ = (s, r = document) => r.querySelector(s);
const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
const el = (tag, props = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'scope') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of kids) e.append(c);
  return e;
};
const SIGNED_IN_HINT = 'lookout.signedIn'; // a flag only; the token is never stored

// ---------------------------------------------------------------- formatting
const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function bytes(n) {
  if (n == null || !isFinite(n)) return '–';
  let i = 0, v = Math.abs(n);
  while (v >= 1024 && i < IEC.length - 1) { v /= 1024; i++; }
  const d = i === 0 ? 0 : v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return (n < 0 ? '-' : '') + v.toFixed(d) + '\u00a0' + IEC[i];
}
const rate = (n) => (n == null ? '–' : bytes(n) + '/s');
const pct = (n) => (n == null || !isFinite(n) ? '–' : n.toFixed(1) + '\u00a0%');
const fixed = (n, d = 2) => (n == null || !isFinite(n) ? '–' : n.toFixed(d));
function duration(s) {
  s = Math.floor(s || 0);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}
const setText = (node, t) => { if (node && node.textContent !== t) node.textContent = t; };
function setBar(bar, p) {
  const v = Math.max(0, Math.min(100, p || 0));
  bar.firstElementChild.style.width = v.toFixed(1) + '%';
  bar.setAttribute('aria-valuenow', v.toFixed(0));
  bar.classList.toggle('hi', v >= 75 && v < 90);
  bar.classList.toggle('crit', v >= 90);
}

// ---------------------------------------------------------------- API
const session = { scope: null, csrf: null, name: null };
class HttpError extends Error { constructor(status, msg) { super(msg); this.status = status; } }
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  const r = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 204) return null;
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) throw new HttpError(r.status, (data && data.error && data.error.message) || `${r.status} ${r.statusText}`);
  return data;
}
const canControl = () => session.scope === 'control' || session.scope === 'admin';

// ---------------------------------------------------------------- live stream + buffer
let source = null;
let latest = null;
const LIVE_MAX = 3600;
const live = new Map(); // series key → [[ts_ms, value], …] since the page opened
function pushLive(key, ts, v) {
  if (v == null || !isFinite(v)) return;
  let a = live.get(key);
  if (!a) live.set(key, (a = []));
  a.push([ts, v]);
  if (a.length > LIVE_MAX) a.splice(0, a.length - LIVE_MAX);
}
const ckey = (name, id) => `${name}{id="${id}"}`;
function record(s) {
  const t = s.taken_at_ms, h = s.host;
  pushLive('host.cpu.usage', t, h.cpu.total.usage);
  pushLive('host.memory.used', t, h.memory.used);
  pushLive('host.memory.used_percent', t, h.memory.used_percent);
  pushLive('host.memory.swap_used', t, h.memory.swap_used);
  pushLive('host.load.1', t, h.load.one);
  h.cpu.per_core.forEach((c, i) => pushLive(`host.cpu.core.usage{core="${i}"}`, t, c.usage));
  for (const n of h.network) {
    pushLive(`host.net.rx_bytes_per_sec{iface="${n.name}"}`, t, n.rx_bytes_per_sec);
    pushLive(`host.net.tx_bytes_per_sec{iface="${n.name}"}`, t, n.tx_bytes_per_sec);
  }
  for (const c of containersOf(s) || []) {
    pushLive(ckey('container.cpu_percent', c.id), t, c.cpu_percent);
    pushLive(ckey('container.memory_used_bytes', c.id), t, c.memory_used_bytes);
  }
}
const containersOf = (s) => (s && s.containers && s.containers.status === 'available' ? s.containers.containers : null);

function connect() {
  if (source) source.close();
  source = new EventSource('/api/v1/stream');
  source.addEventListener('snapshot', (e) => {
    let s;
    try { s = JSON.parse(e.data); } catch { return; }
    if (!s) return;
    latest = s;
    record(s);
    $('#live').classList.add('on');
    setText($('#live'), 'live');
    render();
  });
  source.onerror = () => {
    $('#live').classList.remove('on');
    setText($('#live'), 'reconnecting…');
    if (source && source.readyState === EventSource.CLOSED) {
      // The server refused (e.g. the session ended): find out whether we are still signed in.
      api('GET', '/api/v1/session').then((info) => {
        if (info && info.signed_in) setTimeout(connect, 2000);
        else signedOut('Your session has ended. Sign in again.');
      }, () => setTimeout(connect, 2000));
    }
  };
}
function disconnect() { if (source) { source.close(); source = null; } }

// ---------------------------------------------------------------- routing
function route() {
  const h = location.hash || '#/';
  if (h.startsWith('#/c/')) return { view: 'detail', id: decodeURIComponent(h.slice(4)) };
  if (h.startsWith('#/history')) return { view: 'history' };
  if (h.startsWith('#/alerts')) return { view: 'alerts' };
  if (h.startsWith('#/fleet')) return { view: 'fleet' }; // fleet.js loads it
  return { view: 'overview' };
}
function show(view) {
  for (const v of ['signin', 'overview', 'history', 'alerts', 'detail', 'fleet']) $('#view-' + v).hidden = v !== view;
  if (view !== 'alerts') alerts.close();
  $$('#nav a').forEach((a) => (a.dataset.view === view ? a.setAttribute('aria-current', 'page') : a.removeAttribute('aria-current')));
}
function onRoute() {
  if (!session.scope) return show('signin');
  const r = route();
  show(r.view);
  if (r.view === 'history') history.open();
  if (r.view === 'alerts') alerts.open();
  if (r.view === 'detail') detail.open(r.id);
  render();
}

// ---------------------------------------------------------------- overview
const coreNodes = [];
function renderOverview(s) {
  const h = s.host, c = h.cpu, m = h.memory;
  $('#view-overview').dataset.takenAt = String(s.taken_at_ms);
  setText($('#hostname'), h.hostname);
  setText($('#cpu-total'), pct(c.total.usage));
  setBar($('#cpu-bar'), c.total.usage);
  setText($('#cpu-modes'), `user ${pct(c.total.user)} · system ${pct(c.total.system)} · iowait ${pct(c.total.iowait)} · ${c.cores} cores`);
  const cores = $('#cores');
  while (coreNodes.length < c.per_core.length) {
    const i = coreNodes.length;
    const v = el('span', { class: 'num' });
    const bar = el('div', { class: 'bar', role: 'meter', 'aria-label': `Core ${i}`, 'aria-valuemin': '0', 'aria-valuemax': '100' }, el('span'));
    const n = el('div', { class: 'core' }, `cpu${i}`, v, bar);
    cores.append(n);
    coreNodes.push({ v, bar });
  }
  c.per_core.forEach((p, i) => { setText(coreNodes[i].v, pct(p.usage)); setBar(coreNodes[i].bar, p.usage); });
  setText($('#mem-used'), bytes(m.used));
  setText($('#mem-total'), bytes(m.total));
  setBar($('#mem-bar'), m.used_percent);
  setText($('#mem-pct'), pct(m.used_percent));
  setText($('#mem-avail'), bytes(m.available));
  setText($('#mem-cached'), bytes(m.cached));
  setText($('#swap'), m.swap_total ? `${bytes(m.swap_used)} / ${bytes(m.swap_total)}` : 'none');
  setText($('#load1'), fixed(h.load.one));
  setText($('#load5'), fixed(h.load.five));
  setText($('#load15'), fixed(h.load.fifteen));
  setText($('#uptime'), duration(h.uptime_secs));
  syncRows($('#net-table tbody'), h.network, (n) => n.name, () => [el('th', { scope: 'row' }), el('td', { class: 'r' }), el('td', { class: 'r' })],
    (tr, n) => { setText(tr.cells[0], n.name); tr.cells[0].title = n.name; setText(tr.cells[1], rate(n.rx_bytes_per_sec)); setText(tr.cells[2], rate(n.tx_bytes_per_sec)); });
  syncRows($('#fs-table tbody'), h.filesystems, (f) => f.mount_point,
    () => [el('th', { scope: 'row' }), el('td', { class: 'muted' }), el('td', { class: 'r' }), el('td', { class: 'r' }), el('td', { class: 'r' }),
      el('td', {}, el('div', { class: 'bar', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100' }, el('span')))],
    (tr, f) => {
      setText(tr.cells[0], f.mount_point); setText(tr.cells[1], f.device);
      setText(tr.cells[2], bytes(f.used_bytes)); setText(tr.cells[3], bytes(f.size_bytes)); setText(tr.cells[4], pct(f.used_percent));
      const b = tr.cells[5].firstElementChild; b.setAttribute('aria-label', `${f.mount_point} used`); setBar(b, f.used_percent);
    });
  renderContainers(s);
}

// Keeps one <tr> per key, in the given order, updating cells in place (no re-creation, no jumping).
function syncRows(tbody, items, keyOf, makeCells, update) {
  const have = new Map($$(':scope > tr', tbody).map((tr) => [tr.dataset.key, tr]));
  let prev = null;
  for (const it of items) {
    const k = keyOf(it);
    let tr = have.get(k);
    if (!tr) { tr = el('tr', { 'data-key': k }, ...makeCells(it)); }
    have.delete(k);
    update(tr, it);
    const want = prev ? prev.nextElementSibling : tbody.firstElementChild;
    if (want !== tr) tbody.insertBefore(tr, want);
    prev = tr;
  }
  for (const tr of have.values()) tr.remove();
}

const sort = { key: 'name', dir: 1 };
const sorters = {
  name: (c) => c.name, image: (c) => c.image, state: (c) => c.state,
  cpu: (c) => c.cpu_percent ?? -1, mem: (c) => c.memory_used_bytes ?? -1,
  net: (c) => (c.net_rx_bytes ?? 0) + (c.net_tx_bytes ?? 0), blk: (c) => (c.block_read_bytes ?? 0) + (c.block_write_bytes ?? 0),
};
function renderContainers(s) {
  const list = containersOf(s);
  const un = $('#ct-unavailable');
  un.hidden = !!list;
  if (!list) { setText(un, 'Docker engine unavailable: ' + ((s.containers && s.containers.reason) || '')); }
  const q = $('#ct-filter').value.trim().toLowerCase();
  const rows = (list || []).filter((c) => !q || `${c.name} ${c.image} ${c.state}`.toLowerCase().includes(q));
  const f = sorters[sort.key];
  rows.sort((a, b) => { const x = f(a), y = f(b); return (x < y ? -1 : x > y ? 1 : a.name < b.name ? -1 : 1) * sort.dir; });
  setText($('#ct-count'), list ? (q ? `${rows.length} of ${list.length}` : `${list.length}`) : '');
  syncRows($('#ct-table tbody'), rows, (c) => c.id,
    (c) => [el('th', { scope: 'row' }, el('a', { href: '#/c/' + encodeURIComponent(c.id) })), el('td', { class: 'img muted' }),
      el('td', {}, el('span', { class: 'state' })), el('td', { class: 'r cpu' }), el('td', { class: 'r mem' }), el('td', { class: 'r' }), el('td', { class: 'r' })],
    (tr, c) => {
      tr.dataset.name = c.name;
      setText(tr.cells[0].firstElementChild, c.name);
      setText(tr.cells[1], c.image); tr.cells[1].title = c.image;
      const st = tr.cells[2].firstElementChild; setText(st, c.state); st.className = 'state state-' + c.state;
      setText(tr.cells[3], pct(c.cpu_percent));
      setText(tr.cells[4], c.memory_used_bytes == null ? '–' : bytes(c.memory_used_bytes));
      setText(tr.cells[5], c.net_rx_bytes == null ? '–' : `${bytes(c.net_rx_bytes)} / ${bytes(c.net_tx_bytes)}`);
      setText(tr.cells[6], c.block_read_bytes == null ? '–' : `${bytes(c.block_read_bytes)} / ${bytes(c.block_write_bytes)}`);
    });
}
function initTable() {
  for (const th of $$('#ct-table th[data-key]')) {
    th.querySelector('button').addEventListener('click', () => {
      const k = th.dataset.key;
      sort.dir = sort.key === k ? -sort.dir : k === 'name' || k === 'image' || k === 'state' ? 1 : -1;
      sort.key = k;
      $$('#ct-table th[data-key]').forEach((o) => o.removeAttribute('aria-sort'));
      th.setAttribute('aria-sort', sort.dir > 0 ? 'ascending' : 'descending');
      if (latest) renderContainers(latest);
    });
  }
  $('#ct-filter').addEventListener('input', () => latest && renderContainers(latest));
}

// ---------------------------------------------------------------- charts (canvas)
function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
function niceStep(span, n) {
  const raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
  return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
}
function timeLabel(t, span) {
  const d = new Date(t);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: span < 600e3 ? '2-digit' : undefined });
  return span > 86400e3 ? d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + hm : hm;
}
// A chart: title, min/avg/max line, and a canvas that zooms on drag (double-click resets).
class Chart {
  constructor(host, title, fmt, onZoom) {
    this.fmt = fmt; this.onZoom = onZoom; this.points = []; this.view = null;
    this.title = el('h3', { text: title });
    this.note = el('span', { class: 'muted small' });
    this.stats = el('p', { class: 'stats' });
    this.canvas = el('canvas', { role: 'img', 'aria-label': title + ' chart', tabIndex: 0 });
    this.root = el('div', { class: 'chart' }, this.title, this.stats, this.canvas, this.note);
    host.replaceChildren(this.root);
    let x0 = null;
    const xAt = (e) => { const r = this.canvas.getBoundingClientRect(); return Math.max(0, Math.min(r.width, e.clientX - r.left)); };
    this.canvas.addEventListener('pointerdown', (e) => { x0 = xAt(e); this.sel = null; this.canvas.setPointerCapture(e.pointerId); });
    this.canvas.addEventListener('pointermove', (e) => { if (x0 != null) { this.sel = [x0, xAt(e)]; this.draw(); } });
    this.canvas.addEventListener('pointerup', (e) => {
      const x1 = xAt(e), a = Math.min(x0, x1), b = Math.max(x0, x1); x0 = null; this.sel = null;
      if (b - a > 8 && this.range) {
        const [t0, t1] = this.range, w = this.plotW, L = this.padL;
        const from = t0 + ((a - L) / w) * (t1 - t0), to = t0 + ((b - L) / w) * (t1 - t0);
        if (to > from) this.onZoom(Math.max(from, t0), Math.min(to, t1));
      }
      this.draw();
    });
    this.canvas.addEventListener('dblclick', () => this.onZoom(null, null));
    this.canvas.addEventListener('keydown', (e) => { if (e.key === 'Escape' || e.key === '0') this.onZoom(null, null); });
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }
  set(points, range, note) {
    this.points = points; this.range = range; setText(this.note, note || '');
    if (points.length) {
      let mn = Infinity, mx = -Infinity, sum = 0, cnt = 0;
      for (const p of points) { mn = Math.min(mn, p.min); mx = Math.max(mx, p.max); sum += p.avg * (p.count || 1); cnt += p.count || 1; }
      this.stats.replaceChildren(el('span', {}, 'min ', el('b', { text: this.fmt(mn) })), el('span', {}, 'avg ', el('b', { text: this.fmt(sum / cnt) })),
        el('span', {}, 'max ', el('b', { text: this.fmt(mx) })), el('span', { class: 'muted', text: `${points.length} points` }));
      this.canvas.setAttribute('aria-label', `${this.title.textContent}: min ${this.fmt(mn)}, average ${this.fmt(sum / cnt)}, max ${this.fmt(mx)}`);
    } else this.stats.replaceChildren(el('span', { class: 'muted', text: 'no data in this range' }));
    this.draw();
  }
  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1, W = c.clientWidth, H = c.clientHeight;
    if (!W || !H) return;
    if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) { c.width = Math.round(W * dpr); c.height = Math.round(H * dpr); }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    const fg = css('--muted'), line = css('--line'), accent = css('--accent'), band = css('--band');
    g.font = '11px system-ui, sans-serif';
    const pts = this.points, [t0, t1] = this.range || [Date.now() - 900e3, Date.now()];
    let lo = 0, hi = 1;
    if (pts.length) { lo = Math.min(...pts.map((p) => p.min)); hi = Math.max(...pts.map((p) => p.max)); }
    lo = Math.min(0, lo); if (hi <= lo) hi = lo + 1;
    const step = niceStep(hi - lo, 4); hi = Math.ceil(hi / step) * step;
    const labels = []; for (let v = lo; v <= hi + step / 2; v += step) labels.push(v);
    const padL = Math.max(...labels.map((v) => g.measureText(this.fmt(v)).width)) + 10, padR = 8, padT = 8, padB = 20;
    const pw = W - padL - padR, ph = H - padT - padB;
    this.padL = padL; this.plotW = pw;
    const X = (t) => padL + ((t - t0) / (t1 - t0)) * pw, Y = (v) => padT + ph - ((v - lo) / (hi - lo)) * ph;
    g.strokeStyle = line; g.fillStyle = fg; g.lineWidth = 1; g.textAlign = 'right'; g.textBaseline = 'middle';
    for (const v of labels) { const y = Math.round(Y(v)) + 0.5; g.beginPath(); g.moveTo(padL, y); g.lineTo(W - padR, y); g.stroke(); g.fillText(this.fmt(v), padL - 6, y); }
    g.textAlign = 'center'; g.textBaseline = 'top';
    const ticks = Math.max(2, Math.floor(pw / 110));
    for (let i = 0; i <= ticks; i++) { const t = t0 + ((t1 - t0) * i) / ticks; g.fillText(timeLabel(t, t1 - t0), Math.min(W - 30, Math.max(padL + 20, X(t))), H - padB + 5); }
    if (pts.length) {
      g.save(); g.beginPath(); g.rect(padL, padT, pw, ph); g.clip();
      g.fillStyle = band; g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(X(p.ts_ms), Y(p.max)) : g.moveTo(X(p.ts_ms), Y(p.max))));
      for (let i = pts.length - 1; i >= 0; i--) g.lineTo(X(pts[i].ts_ms), Y(pts[i].min));
      g.closePath(); g.fill();
      g.strokeStyle = accent; g.lineWidth = 1.5; g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(X(p.ts_ms), Y(p.avg)) : g.moveTo(X(p.ts_ms), Y(p.avg))));
      if (pts.length === 1) g.arc(X(pts[0].ts_ms), Y(pts[0].avg), 2, 0, 7);
      g.stroke(); g.restore();
    }
    if (this.sel) { g.fillStyle = band; const [a, b] = this.sel; g.fillRect(Math.min(a, b), padT, Math.abs(b - a), ph); }
  }
}

const seriesFmt = (key) => (/bytes_per_sec/.test(key) ? rate : /percent|usage/.test(key) ? pct : /bytes|memory\.(used|total|available|free|cached|buffers|swap)|fs\.(size|used|available)/.test(key) ? bytes : (v) => fixed(v));
// Which history routes this server has, read once from its OpenAPI document (asking the
// routes themselves would log a 404 in the console on servers without them).
let routesKnown = null;
function serverRoutes() {
  if (!routesKnown) routesKnown = api('GET', '/openapi.json').then((d) => new Set(Object.keys((d && d.paths) || {})), () => new Set());
  return routesKnown;
}

// Fetches [from, to] of a series: from the history API, or from the live buffer when the
// server has no history API. Returns {points, note}.
async function fetchSeries(key, from, to) {
  if ((await serverRoutes()).has('/api/v1/history')) {
    const span = (to - from) / 1000, step = Math.max(1, Math.round(span / 300));
    const q = new URLSearchParams({ series: key, from: String(Math.floor(from / 1000)), to: String(Math.ceil(to / 1000)), step: String(step) });
    try {
      const r = await api('GET', '/api/v1/history?' + q);
      return { points: (r.points || []).filter((p) => p.avg != null), note: `history · step ${step} s` };
    } catch (e) {
      return { points: [], note: e.message };
    }
  }
  const a = live.get(key) || [];
  return { points: a.filter(([t]) => t >= from && t <= to).map(([t, v]) => ({ ts_ms: t, min: v, avg: v, max: v, count: 1 })),
    note: 'live buffer since this page opened (history API not available on this server)' };
}

function rangeButtons(group, onPick) {
  for (const b of $$('button', group)) {
    b.addEventListener('click', () => {
      $$('button', group).forEach((o) => o.setAttribute('aria-pressed', String(o === b)));
      onPick(b.dataset.range);
    });
  }
}

const history = {
  chart: null, range: 900, zoom: null, timer: null, seriesLoaded: false,
  init() {
    rangeButtons($('#view-history .seg'), (r) => {
      $('#custom-range').hidden = r !== 'custom';
      if (r === 'custom') {
        const to = new Date(), from = new Date(Date.now() - 3600e3);
        const local = (d) => new Date(d - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
        if (!$('#from').value) $('#from').value = local(from);
        if (!$('#to').value) $('#to').value = local(to);
        return;
      }
      this.range = Number(r); this.zoom = null; this.load();
    });
    $('#apply-range').addEventListener('click', () => {
      const from = new Date($('#from').value).getTime(), to = new Date($('#to').value).getTime();
      if (isFinite(from) && isFinite(to) && to > from) { this.zoom = [from, to]; this.load(); }
    });
    $('#series').addEventListener('change', () => this.load());
  },
  async fillSeries() {
    const sel = $('#series'), keep = sel.value;
    let keys = [];
    try {
      if (!(await serverRoutes()).has('/api/v1/series')) throw new Error('no series route');
      const r = await api('GET', '/api/v1/series');
      const list = Array.isArray(r) ? r : r.series || [];
      keys = list.map((x) => (typeof x === 'string' ? x : x.key)).filter(Boolean);
      this.seriesLoaded = true;
    } catch { /* no history API: offer what the live buffer holds */ }
    if (!keys.length) keys = Array.from(live.keys());
    const base = ['host.cpu.usage', 'host.memory.used', 'host.memory.used_percent', 'host.load.1'];
    keys = Array.from(new Set([...base, ...keys])).slice(0, 2000);
    const named = new Map((containersOf(latest) || []).map((c) => [c.id, c.name]));
    sel.replaceChildren(...keys.map((k) => {
      const m = /id="([0-9a-f]+)/.exec(k);
      return el('option', { value: k, text: m && named.has(m[1]) ? k.replace(/\{.*\}/, ` (${named.get(m[1])})`) : k });
    }));
    if (keep && keys.includes(keep)) sel.value = keep;
  },
  async open() {
    if (!this.chart) this.chart = new Chart($('#hist-chart'), 'Series', pct, (a, b) => { this.zoom = a == null ? null : [a, b]; this.load(); });
    if (!this.seriesLoaded) await this.fillSeries();
    this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => { if (route().view === 'history' && !this.zoom) this.load(); }, 5000);
  },
  async load() {
    const key = $('#series').value || 'host.cpu.usage';
    const [from, to] = this.zoom || [Date.now() - this.range * 1000, Date.now()];
    this.chart.fmt = seriesFmt(key);
    setText(this.chart.title, key);
    const { points, note } = await fetchSeries(key, from, to);
    this.chart.set(points, [from, to], note + (this.zoom ? ' · zoomed (double-click or Esc to reset)' : ''));
  },
};

// ---------------------------------------------------------------- container detail + control
const ACTIONS = [['start', 'Start'], ['stop', 'Stop'], ['restart', 'Restart'], ['pause', 'Pause'], ['unpause', 'Unpause'], ['remove', 'Remove']];
const detail = {
  id: null, range: 900, zoom: null, cpu: null, mem: null, timer: null,
  init() {
    rangeButtons($('#detail-ranges'), (r) => { this.range = Number(r); this.zoom = null; this.load(); });
    const box = $('#controls');
    for (const [action, label] of ACTIONS) {
      box.append(el('button', { type: 'button', class: action === 'remove' ? 'danger' : '', 'data-action': action, text: label, onclick: () => this.act(action, label) }));
    }
  },
  open(id) {
    this.id = id; this.zoom = null;
    setText($('#action-result'), '');
    $('#controls-card').hidden = !canControl();
    const z = (a, b) => { this.zoom = a == null ? null : [a, b]; this.load(); };
    if (!this.cpu) { this.cpu = new Chart($('#detail-cpu'), 'CPU %', pct, z); this.mem = new Chart($('#detail-mem'), 'Memory', bytes, z); }
    this.render(latest);
    this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => { if (route().view === 'detail' && !this.zoom) this.load(); }, 5000);
  },
  find(s) { return (containersOf(s) || []).find((c) => c.id === this.id || c.name === this.id); },
  render(s) {
    const c = this.find(s);
    if (!c) { setText($('#h-detail'), s ? `Container ${this.id.slice(0, 12)} (gone)` : 'Container'); return; }
    setText($('#h-detail'), c.name);
    const facts = [['Image', c.image], ['State', c.state], ['Status', c.status], ['ID', c.id.slice(0, 12)], ['CPU', pct(c.cpu_percent)],
      ['Memory', c.memory_used_bytes == null ? '–' : `${bytes(c.memory_used_bytes)} / ${bytes(c.memory_limit_bytes)}`],
      ['Net I/O', c.net_rx_bytes == null ? '–' : `${bytes(c.net_rx_bytes)} / ${bytes(c.net_tx_bytes)}`],
      ['Block I/O', c.block_read_bytes == null ? '–' : `${bytes(c.block_read_bytes)} / ${bytes(c.block_write_bytes)}`], ['PIDs', c.pids ?? '–']];
    const dl = $('#ct-facts');
    if (dl.children.length !== facts.length * 2) dl.replaceChildren(...facts.flatMap(([k]) => [el('dt', { text: k }), el('dd', { class: 'num', 'data-fact': k })]));
    facts.forEach(([k, v], i) => setText(dl.children[i * 2 + 1], String(v)));
  },
  async load() {
    if (!this.id) return;
    const c = this.find(latest), id = c ? c.id : this.id;
    const [from, to] = this.zoom || [Date.now() - this.range * 1000, Date.now()];
    const [a, b] = await Promise.all([fetchSeries(ckey('container.cpu_percent', id), from, to), fetchSeries(ckey('container.memory_used_bytes', id), from, to)]);
    this.cpu.set(a.points, [from, to], a.note);
    this.mem.set(b.points, [from, to], b.note);
  },
  async act(action, label) {
    const c = this.find(latest);
    const name = c ? c.name : this.id;
    if (!(await confirmDialog(`${label} container “${name}”?`, label))) return;
    const out = $('#action-result');
    out.className = ''; setText(out, `${label}: working…`);
    try {
      const path = `/api/v1/containers/${encodeURIComponent(c ? c.id : this.id)}` + (action === 'remove' ? '' : '/' + action);
      await api(action === 'remove' ? 'DELETE' : 'POST', path);
      out.className = 'ok'; setText(out, `${label}: done for ${name}.`);
    } catch (e) {
      out.className = 'error'; setText(out, `${label} failed: ${e.message}`);
    }
  },
};

function confirmDialog(text, label) {
  const d = $('#confirm');
  setText($('#confirm-text'), text);
  setText($('#confirm-ok'), label);
  setText($('#confirm-title'), 'Confirm ' + label.toLowerCase());
  d.returnValue = '';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
    $('#confirm-cancel').focus();
  });
}

// ---------------------------------------------------------------- render loop
let pending = false;
function render() {
  if (!latest || pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const r = route();
    if (!session.scope) return;
    if (r.view === 'overview') renderOverview(latest);
    else if (r.view === 'detail') detail.render(latest);
    if (!document.body.dataset.rendered && containersOf(latest) !== undefined) {
      document.body.dataset.rendered = '1';
      performance.mark('lookout-first-render');
    }
  });
}

// ---------------------------------------------------------------- sign-in / sign-out
function signedIn(info) {
  session.scope = info.scope; session.csrf = info.csrf; session.name = info.name;
  localStorage.setItem(SIGNED_IN_HINT, '1');
  setText($('#who'), `${info.name} · ${info.scope}`);
  $('#nav').hidden = false; $('#signout').hidden = false;
  document.body.dataset.scope = info.scope;
  connect();
  onRoute();
}
function signedOut(message) {
  disconnect();
  session.scope = session.csrf = session.name = null;
  localStorage.removeItem(SIGNED_IN_HINT);
  delete document.body.dataset.scope;
  $('#nav').hidden = true; $('#signout').hidden = true;
  setText($('#who'), ''); setText($('#hostname'), ''); setText($('#live'), '');
  setText($('#signin-error'), message || '');
  show('signin');
  $('#token').focus();
}
function initSignIn() {
  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#token'), token = input.value.trim();
    if (!token) { setText($('#signin-error'), 'Enter a token.'); return; }
    $('#signin-submit').disabled = true;
    setText($('#signin-error'), '');
    try {
      const info = await api('POST', '/api/v1/session', { token });
      input.value = '';
      signedIn(info);
    } catch (err) {
      setText($('#signin-error'), err.status === 401 ? 'That token is not valid (or has been revoked). Check it and try again.'
        : err.status === 429 ? 'Too many failed attempts. Wait a few seconds and try again.' : `Sign-in failed: ${err.message}`);
      input.select();
    } finally { $('#signin-submit').disabled = false; }
  });
  $('#signout').addEventListener('click', async () => {
    disconnect();
    try { await api('DELETE', '/api/v1/session'); } catch { /* ended anyway */ }
    signedOut('Signed out.');
  });
}

const alerts = createAlertsView({ api, session, $, el, duration, confirmDialog });

async function start() {
  initSignIn(); initTable(); history.init(); detail.init(); alerts.init();
  window.addEventListener('hashchange', onRoute);
  // The cookie is HttpOnly, so only the server knows whether it still names a session; it
  // answers {signed_in: false} (not an error) when it does not.
  try {
    const info = await api('GET', '/api/v1/session');
    if (info && info.signed_in) { signedIn(info); return; }
  } catch { /* server unreachable: show the sign-in form */ }
  signedOut(localStorage.getItem(SIGNED_IN_HINT) ? 'Your session has ended. Sign in again.' : '');
}
start();
