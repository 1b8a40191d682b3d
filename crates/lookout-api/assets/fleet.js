// lookout dashboard, fleet view (#/fleet): every host from GET /api/v1/fleet/hosts in one
// table, a host's last hour as two small SVG lines, and a container search across hosts.
// Self-contained: app.js only shows the section; this module loads it while it is visible.
'use strict';

const $ = (s) => document.querySelector(s);
const REFRESH_MS = 10000;
let timer = null;

const pct = (n) => (n == null || !isFinite(n) ? '–' : n.toFixed(1) + '\u00a0%');
const num = (n) => (n == null || !isFinite(n) ? '–' : String(Math.round(n)));
function age(s) {
  if (s == null) return 'never';
  s = Math.round(s);
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}
function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
async function get(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) throw new Error((data && data.error && data.error.message) || `${r.status} ${r.statusText}`);
  return data;
}
// Only http(s) links: a host's URL comes from the engine's labels.
function safeUrl(u) {
  try { const p = new URL(u); return p.protocol === 'https:' || p.protocol === 'http:' ? p.href : null; } catch { return null; }
}

async function load() {
  const status = $('#fleet-status');
  try {
    const d = await get('/api/v1/fleet/hosts');
    const body = $('#fleet-rows');
    body.replaceChildren();
    for (const h of d.hosts) {
      const tr = document.createElement('tr');
      if (h.stale) tr.className = 'stale';
      const name = document.createElement('td');
      const btn = document.createElement('button');
      btn.type = 'button'; btn.className = 'link'; btn.textContent = h.host;
      btn.addEventListener('click', () => history(h.host));
      name.append(btn);
      const url = h.url && safeUrl(h.url);
      if (url) {
        const a = document.createElement('a');
        a.href = url; a.textContent = 'dashboard'; a.rel = 'noopener noreferrer'; a.target = '_blank';
        name.append(' ', a);
      }
      tr.append(name, cell(h.stale ? `stale (${age(h.age_s)})` : age(h.age_s), h.stale ? 'bad' : ''),
        cell(pct(h.cpu_percent), 'r'), cell(pct(h.memory_percent), 'r'), cell(pct(h.filesystem_used_percent), 'r'),
        cell(`${num(h.containers_running)} / ${num(h.containers_total)}`, 'r'), cell(num(h.alerts_firing), 'r'));
      body.append(tr);
    }
    status.textContent = `${d.hosts.length} hosts, ${d.stale_hosts} stale`;
    status.classList.remove('error');
  } catch (e) {
    status.textContent = `Fleet view unavailable: ${e.message}`;
    status.classList.add('error');
  }
}

function line(points, max) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 300 60'); svg.setAttribute('class', 'spark'); svg.setAttribute('role', 'img');
  if (points.length < 2) return svg;
  const t0 = points[0][0], t1 = points[points.length - 1][0] || t0 + 1;
  const top = max || Math.max(...points.map((p) => p[1]), 1);
  const pl = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  pl.setAttribute('points', points.map(([t, v]) => `${((t - t0) / (t1 - t0 || 1)) * 300},${60 - (v / top) * 58}`).join(' '));
  svg.append(pl);
  return svg;
}

async function history(host) {
  const box = $('#fleet-history');
  box.hidden = false;
  $('#fleet-history-title').textContent = `${host}: last hour`;
  const charts = $('#fleet-charts');
  charts.replaceChildren();
  try {
    const d = await get(`/api/v1/fleet/hosts/${encodeURIComponent(host)}/history?range_s=3600`);
    for (const c of d.charts.filter((c) => c.name.endsWith('_percent'))) {
      const fig = document.createElement('figure');
      const cap = document.createElement('figcaption');
      const last = c.points.length ? c.points[c.points.length - 1][1] : null;
      cap.textContent = `${c.name.replace(/_/g, ' ')}: ${pct(last)}`;
      const svg = line(c.points, 100);
      svg.setAttribute('aria-label', cap.textContent);
      fig.append(cap, svg);
      charts.append(fig);
    }
  } catch (e) {
    charts.textContent = `History unavailable: ${e.message}`;
  }
}

async function search(ev) {
  ev.preventDefault();
  const q = $('#fleet-q').value.trim();
  const out = $('#fleet-found');
  out.replaceChildren();
  if (!q) return;
  try {
    const d = await get(`/api/v1/fleet/containers?q=${encodeURIComponent(q)}&limit=200`);
    for (const c of d.containers) {
      const tr = document.createElement('tr');
      tr.append(cell(c.host), cell(c.name), cell(c.image), cell(c.running == null ? '?' : c.running ? 'running' : 'stopped'));
      out.append(tr);
    }
    $('#fleet-found-status').textContent = `${d.containers.length} found${d.truncated ? ' (more not shown)' : ''}`;
  } catch (e) {
    $('#fleet-found-status').textContent = `Search unavailable: ${e.message}`;
  }
}

function onRoute() {
  const visible = location.hash.startsWith('#/fleet') && !$('#view-fleet').hidden;
  if (visible && !timer) { load(); timer = setInterval(load, REFRESH_MS); }
  if (!visible && timer) { clearInterval(timer); timer = null; }
}

$('#fleet-search').addEventListener('submit', search);
window.addEventListener('hashchange', () => setTimeout(onRoute, 0));
// The section is shown by app.js once the session is known.
new MutationObserver(onRoute).observe($('#view-fleet'), { attributes: true, attributeFilter: ['hidden'] });
onRoute();
