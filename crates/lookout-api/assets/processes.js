// lookout dashboard: the process table (host on the overview, one container's on its page)
// and the sensors panel. A module of its own beside app.js: it builds its cards, and polls
// /api/v1/processes, /api/v1/containers/{id}/processes and /api/v1/sensors only while their
// view is shown (the table is refreshed server-side every few ticks, not every second).
// (No import of app.js: assets are served under content-hashed names, and a second URL
// would run that module twice.)

const POLL_MS = 2000;
const LIMIT = 25;
const el = (tag, props = {}, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) n.setAttribute(k, v);
  for (const k of kids) n.append(k);
  return n;
};
const setText = (node, t) => { if (node.textContent !== t) node.textContent = t; };
const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
function bytes(n) { // as app.js formats sizes
  if (n == null || !isFinite(n)) return '–';
  let i = 0, v = Math.abs(n);
  while (v >= 1024 && i < IEC.length - 1) { v /= 1024; i++; }
  const d = i === 0 ? 0 : v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return (n < 0 ? '-' : '') + v.toFixed(d) + '\u00a0' + IEC[i];
}
const rate = (n) => (n == null ? '–' : bytes(n) + '/s');
const SORTS = [['cpu', 'CPU %'], ['memory', 'Memory'], ['io', 'Disk I/O'], ['threads', 'Threads'], ['pid', 'PID'], ['name', 'Name']];

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) throw new Error((data && data.error && data.error.message) || `${r.status} ${r.statusText}`);
  return data;
}

/** A processes card: heading, sort picker, status line, table. */
function processCard(prefix, title) {
  const select = el('select', { id: `${prefix}-sort` });
  for (const [v, label] of SORTS) select.append(el('option', { value: v }, label));
  const head = el('tr', {}, ...['PID', 'User', 'Command', 'State', 'Threads', 'CPU %', 'Memory', 'Read', 'Write']
    .map((h, i) => el('th', { scope: 'col', class: i >= 4 || i === 0 ? 'r' : '' }, h)));
  const table = el('table', { class: 'data', id: `${prefix}-table` },
    el('caption', { class: 'sr-only' }, title), el('thead', {}, head), el('tbody'));
  const card = el('article', { class: 'card', 'aria-labelledby': `h-${prefix}`, id: `${prefix}-card` },
    el('div', { class: 'row wrap' },
      el('h2', { id: `h-${prefix}` }, title + ' ', el('span', { class: 'muted small num', id: `${prefix}-count` })),
      el('span', { class: 'spacer' }),
      el('label', { for: `${prefix}-sort` }, 'Sort by'), select),
    el('p', { class: 'error', id: `${prefix}-error`, hidden: '' }),
    el('div', { class: 'scroll' }, table));
  return { card, select, tbody: table.tBodies[0], count: card.querySelector(`#${prefix}-count`), error: card.querySelector(`#${prefix}-error`) };
}

function fillProcesses(ui, data) {
  ui.error.hidden = true;
  setText(ui.count, data.total > data.processes.length ? `top ${data.processes.length} of ${data.total}` : `${data.total}`);
  const rows = data.processes;
  while (ui.tbody.rows.length > rows.length) ui.tbody.deleteRow(-1);
  rows.forEach((p, i) => {
    let tr = ui.tbody.rows[i];
    if (!tr) {
      tr = ui.tbody.insertRow();
      for (let c = 0; c < 9; c++) tr.insertCell().className = c >= 4 || c === 0 ? 'r' : '';
      tr.cells[2].className = 'cmd';
    }
    tr.dataset.pid = String(p.pid);
    const cmd = p.container_name ? `${p.command} (${p.container_name})` : p.command;
    const cells = [String(p.pid), p.user, cmd, p.state, String(p.threads), p.cpu_percent.toFixed(1),
      bytes(p.rss_bytes), rate(p.read_bytes_per_sec), rate(p.write_bytes_per_sec)];
    cells.forEach((t, c) => setText(tr.cells[c], t));
    tr.cells[2].title = p.command;
  });
}

function fillSensors(ui, data) {
  const s = data.sensors;
  const rows = [
    ...s.hwmon.map((x) => ({
      key: `${x.chip}/${x.sensor}`, name: x.label ? `${x.label}` : x.sensor, chip: x.chip_name || x.chip, kind: x.kind,
      value: x.kind === 'temperature' ? `${x.value.toFixed(1)} °C` : x.kind === 'fan' ? `${x.value.toFixed(0)} RPM` : `${x.value.toFixed(3)} V`,
      limit: x.crit != null ? x.crit : x.max, v: x.value,
    })),
    ...s.thermal_zones.map((z) => ({ key: `zone${z.zone}`, name: `thermal_zone${z.zone}`, chip: z.type, kind: 'temperature',
      value: `${z.temp_celsius.toFixed(1)} °C`, limit: null, v: z.temp_celsius })),
  ];
  ui.empty.hidden = rows.length > 0;
  ui.table.hidden = rows.length === 0;
  while (ui.tbody.rows.length > rows.length) ui.tbody.deleteRow(-1);
  rows.forEach((r, i) => {
    let tr = ui.tbody.rows[i];
    if (!tr) { tr = ui.tbody.insertRow(); for (let c = 0; c < 4; c++) tr.insertCell(); tr.cells[2].className = 'r'; tr.cells[3].className = 'r muted'; }
    tr.dataset.key = r.key;
    setText(tr.cells[0], r.name); setText(tr.cells[1], r.chip); setText(tr.cells[2], r.value);
    const unit = r.kind === 'temperature' ? ' °C' : r.kind === 'fan' ? ' RPM' : ' V';
    setText(tr.cells[3], r.limit == null ? '' : `crit/max ${r.limit}${unit}`);
    tr.classList.toggle('hot', r.kind === 'temperature' && r.limit != null && r.v >= r.limit);
  });
}

function sensorsCard() {
  const table = el('table', { class: 'data', id: 'sensors-table' },
    el('caption', { class: 'sr-only' }, 'Sensors'),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Sensor'), el('th', { scope: 'col' }, 'Chip'),
      el('th', { scope: 'col', class: 'r' }, 'Value'), el('th', { scope: 'col', class: 'r' }, 'Threshold'))),
    el('tbody'));
  const empty = el('p', { class: 'muted', id: 'sensors-empty' }, 'This host exposes no hwmon sensors or thermal zones.');
  const card = el('article', { class: 'card', 'aria-labelledby': 'h-sensors', id: 'sensors-card' },
    el('h2', { id: 'h-sensors' }, 'Sensors'), empty, el('div', { class: 'scroll' }, table));
  return { card, table, empty, tbody: table.tBodies[0] };
}

function init() {
  const overview = document.getElementById('view-overview');
  const detail = document.getElementById('view-detail');
  if (!overview || !detail) return;
  const host = processCard('proc', 'Processes');
  const sensors = sensorsCard();
  overview.append(host.card, sensors.card);
  const ct = processCard('ctproc', 'Processes in this container');
  detail.append(ct.card);

  let busy = false;
  async function poll() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      if (!overview.hidden) {
        const [p, s] = await Promise.allSettled([
          getJSON(`/api/v1/processes?sort=${host.select.value}&limit=${LIMIT}`),
          getJSON('/api/v1/sensors'),
        ]);
        if (p.status === 'fulfilled') fillProcesses(host, p.value);
        else { host.error.hidden = false; setText(host.error, String(p.reason.message)); }
        if (s.status === 'fulfilled') fillSensors(sensors, s.value);
      } else if (!detail.hidden && location.hash.startsWith('#/c/')) {
        const id = location.hash.slice(4);
        try {
          fillProcesses(ct, await getJSON(`/api/v1/containers/${id}/processes?sort=${ct.select.value}&limit=${LIMIT}`));
        } catch (e) { ct.error.hidden = false; setText(ct.error, String(e.message)); ct.tbody.replaceChildren(); }
      }
    } finally { busy = false; }
  }
  host.select.addEventListener('change', poll);
  ct.select.addEventListener('change', poll);
  window.addEventListener('hashchange', () => { ct.tbody.replaceChildren(); setTimeout(poll, 50); });
  // The views are shown by app.js after sign-in: poll on a timer and as soon as one appears.
  new MutationObserver(() => poll()).observe(overview, { attributes: true, attributeFilter: ['hidden'] });
  new MutationObserver(() => poll()).observe(detail, { attributes: true, attributeFilter: ['hidden'] });
  setInterval(poll, POLL_MS);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
