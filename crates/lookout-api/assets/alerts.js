// The Alerts view: active alerts, their history, silences and (admin sessions) the rule editor.
// Everything comes from /api/v1/alerts*, polled while the view is open; nothing is built with
// innerHTML, so labels and summaries can never inject markup.

const POLL_MS = 3000;

function when(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false });
}

function value(v) {
  if (v == null || !isFinite(v)) return '–';
  const a = Math.abs(v);
  return a >= 1e6 ? v.toExponential(2) : a >= 100 ? v.toFixed(0) : v.toFixed(2);
}

// The instance an alert is about, from its labels (empty for the host itself).
function instanceOf(labels) {
  return labels.container || labels.mountpoint || labels.interface || labels.device || labels.gpu_name || labels.sensor || '';
}


function covers(m) {
  if (!m) return 'all';
  const parts = m.name ? [`named ${m.name}`] : [];
  for (const [k, v] of Object.entries(m.labels || {})) parts.push(`label ${k}=${v}`);
  return parts.join(', ') || 'all';
}

function condition(r) {
  let c = `${r.figure} ${r.op} ${r.threshold}`;
  if (r.clear != null && r.clear !== r.threshold) c += ` (clears at ${r.clear})`;
  if (r.window) c += `, ${r.window} average`;
  if (r.for && r.for !== '0s') c += `, for ${r.for}`;
  return c;
}

// `el` and `duration` are the page's (app.js); `h` drops absent (null) children.
export function createAlertsView({ api, session, $, el, duration, confirmDialog }) {
  const h = (tag, props, ...kids) => el(tag, props || {}, ...kids.flat().filter((k) => k != null && k !== false));
  let timer = null;
  const fill = (tbody, rows, empty, cols) =>
    tbody.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colSpan: cols, class: 'muted' }, empty))]));
  let editing = null; // name of the API rule being edited, or null for a new one
  const isAdmin = () => session.scope === 'admin';

  async function silence(alert) {
    const matchers = { alertname: alert.rule };
    for (const k of ['host', 'container', 'mountpoint', 'interface', 'device', 'gpu_uuid', 'sensor']) {
      if (alert.labels[k]) matchers[k] = alert.labels[k];
    }
    if (!(await confirmDialog(`Silence ${alert.rule} ${instanceOf(alert.labels)} for 1 hour?`, 'Silence'))) return;
    await act(() => api('POST', '/api/v1/alerts/silences', { matchers, duration: '1h', comment: `from the dashboard by ${session.name}` }));
  }

  async function act(fn) {
    try {
      await fn();
      $('#alerts-error').textContent = '';
    } catch (err) {
      $('#alerts-error').textContent = err.message;
    }
    await refresh();
  }

  function renderActive(alerts) {
    $('#alerts-count').textContent = alerts.length ? `(${alerts.length})` : '';
    const rows = alerts
      .sort((a, b) => (a.state === b.state ? a.active_since_ms - b.active_since_ms : a.state === 'firing' ? -1 : 1))
      .map((a) => h('tr', { 'data-rule': a.rule, 'data-state': a.state },
        h('td', {}, h('span', { class: `badge ${a.state}` }, a.state), a.silenced ? h('span', { class: 'badge silenced' }, 'silenced') : null),
        h('td', {}, a.rule),
        h('td', {}, instanceOf(a.labels)),
        h('td', {}, a.annotations.summary || ''),
        h('td', { class: 'r num' }, value(a.value)),
        h('td', { class: 'r', title: when(a.active_since_ms) }, duration((Date.now() - a.active_since_ms) / 1000)),
        h('td', {}, isAdmin() && !a.silenced
          ? h('button', { type: 'button', class: 'small', onclick: () => silence(a) }, 'Silence 1 h')
          : null)));
    fill($('#alerts-active tbody'), rows, 'Nothing is pending or firing.', 7);
  }

  function renderHistory(transitions) {
    const rows = transitions.map((t) => h('tr', {},
      h('td', {}, when(t.at_ms)),
      h('td', {}, t.alert.rule),
      h('td', {}, instanceOf(t.alert.labels)),
      h('td', {}, `${t.from} → ${t.to}`, t.silenced ? ' (silenced)' : ''),
      h('td', { class: 'r num' }, value(t.alert.value))));
    fill($('#alerts-history tbody'), rows, 'No state changes yet.', 5);
  }

  function ruleButtons(rule) {
    const editBtn = h('button', { type: 'button', class: 'small', 'data-edit': rule.name }, 'Edit');
    editBtn.onclick = () => edit(rule);
    const deleteBtn = h('button', { type: 'button', class: 'small danger', 'data-delete': rule.name }, 'Delete');
    deleteBtn.onclick = async () => {
      if (await confirmDialog(`Delete the rule ${rule.name}?`, 'Delete')) {
        await act(() => api('DELETE', `/api/v1/alerts/rules/${encodeURIComponent(rule.name)}`));
      }
    };
    return h('span', {}, editBtn, ' ', deleteBtn);
  }

  function renderRules(rules) {
    const rows = rules.map(({ source, rule }) => h('tr', { 'data-rule': rule.name },
      h('td', {}, rule.name),
      h('td', {}, condition(rule)),
      h('td', {}, covers(rule.match)),
      h('td', {}, source),
      h('td', {}, isAdmin() && source === 'api' ? ruleButtons(rule) : null)));
    fill($('#alerts-rules tbody'), rows, 'No rules.', 5);
  }

  function renderSilences(silences) {
    const now = Date.now();
    const rows = silences.filter((s) => s.ends_at_ms > now).map((s) => h('tr', {},
      h('td', {}, Object.entries(s.matchers).map(([k, v]) => `${k}=${v}`).join(', ')),
      h('td', {}, when(s.ends_at_ms)),
      h('td', {}, s.comment),
      h('td', {}, isAdmin()
        ? h('button', { type: 'button', class: 'small', onclick: () => act(() => api('DELETE', `/api/v1/alerts/silences/${encodeURIComponent(s.id)}`)) }, 'Expire')
        : null)));
    fill($('#alerts-silences tbody'), rows, 'No silences in force.', 4);
  }

  function edit(rule) {
    editing = rule ? rule.name : null;
    const f = $('#rule-form');
    f.hidden = false;
    f.elements.name.value = rule ? rule.name : '';
    f.elements.name.readOnly = !!rule;
    f.elements.figure.value = rule ? rule.figure : 'host.cpu.usage_percent';
    f.elements.op.value = rule ? rule.op : '>';
    f.elements.threshold.value = rule ? rule.threshold : '';
    f.elements.for.value = rule && rule.for ? rule.for : '0s';
    f.elements.window.value = rule && rule.window ? rule.window : '';
    f.elements.matchname.value = rule && rule.match && rule.match.name ? rule.match.name : '';
    f.elements.summary.value = rule && rule.summary ? rule.summary : '';
    $('#rule-form-title').textContent = rule ? `Edit ${rule.name}` : 'New rule';
    $('#rule-error').textContent = '';
    f.elements[rule ? 'threshold' : 'name'].focus();
  }

  async function save(e) {
    e.preventDefault();
    const f = e.target.elements;
    const rule = { name: f.name.value.trim(), figure: f.figure.value.trim(), op: f.op.value, threshold: Number(f.threshold.value) };
    if (f.threshold.value.trim() === '' || !isFinite(rule.threshold)) {
      $('#rule-error').textContent = 'threshold: enter a number';
      return;
    }
    if (f.for.value.trim()) rule.for = f.for.value.trim();
    if (f.window.value.trim()) rule.window = f.window.value.trim();
    if (f.summary.value.trim()) rule.summary = f.summary.value.trim();
    if (f.matchname.value.trim()) rule.match = { name: f.matchname.value.trim() };
    try {
      if (editing) await api('PUT', `/api/v1/alerts/rules/${encodeURIComponent(editing)}`, rule);
      else await api('POST', '/api/v1/alerts/rules', rule);
      $('#rule-form').hidden = true;
      editing = null;
      await refresh();
    } catch (err) {
      // The server names the field it refused (e.g. "figure: unknown figure …").
      $('#rule-error').textContent = err.message;
    }
  }

  async function refresh() {
    try {
      const [active, hist, rules, silences] = await Promise.all([
        api('GET', '/api/v1/alerts'),
        api('GET', '/api/v1/alerts/history?limit=50'),
        api('GET', '/api/v1/alerts/rules'),
        api('GET', '/api/v1/alerts/silences'),
      ]);
      $('#alerts-off').hidden = true;
      renderActive(active.alerts);
      renderHistory(hist.transitions);
      renderRules(rules.rules);
      renderSilences(silences.silences);
    } catch (err) {
      if (err.status === 503) {
        $('#alerts-off').hidden = false;
        $('#alerts-off').textContent = `Alerting is turned off on this server (${err.message}).`;
      } else {
        $('#alerts-error').textContent = `Could not load alerts: ${err.message}`;
      }
    }
  }

  return {
    init() {
      $('#rule-new').addEventListener('click', () => edit(null));
      $('#rule-cancel').addEventListener('click', () => { $('#rule-form').hidden = true; editing = null; });
      $('#rule-form').addEventListener('submit', save);
    },
    open() {
      $('#rule-new').hidden = !isAdmin();
      if (!isAdmin()) $('#rule-form').hidden = true;
      refresh();
      if (!timer) timer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
    },
    close() {
      if (timer) { clearInterval(timer); timer = null; }
    },
  };
}
