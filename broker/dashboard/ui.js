// DOM and formatting helpers shared by every view. No framework: h() builds
// elements, syncRows() reuses table rows by key so a live update never
// steals keyboard focus or scroll position, and nothing is ever built from
// HTML strings (the CSP allows no inline code, and text is always text).

export function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// fn at most once per ms, and always once more after the last call, so the
// final state is always drawn. For re-reads a busy event stream triggers.
export function throttled(fn, ms) {
  let last = 0;
  let timer = null;
  return () => {
    if (timer !== null) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}

// Replaces el's children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Sets text only when it changed (cheap on a busy stream).
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

// Makes tbody hold one row per item, in order: rows are keyed by key(item),
// created by make(item) once and refreshed by update(row, item) on every
// call. Rows of items that are gone are removed.
export function syncRows(tbody, items, key, make, update) {
  const old = new Map();
  for (const row of tbody.children) old.set(row.dataset.key, row);
  let prev = null;
  for (const item of items) {
    const k = String(key(item));
    let row = old.get(k);
    if (row) old.delete(k);
    else {
      row = make(item);
      row.dataset.key = k;
    }
    update(row, item);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== row) tbody.insertBefore(row, want);
    prev = row;
  }
  for (const row of old.values()) row.remove();
}

// A progress bar: done (green), failed (red) and the rest of total, with a
// text label; role=progressbar so screen readers get the numbers.
export function progressBar() {
  const ok = h('span', { class: 'bar-ok' });
  const bad = h('span', { class: 'bar-bad' });
  const label = h('span', { class: 'bar-label' });
  const el = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0 },
    h('div', { class: 'bar-track' }, ok, bad), label);
  el.set = (done, failed, total, text) => {
    total = Math.max(0, Number(total) || 0);
    done = Math.max(0, Number(done) || 0);
    failed = Math.max(0, Number(failed) || 0);
    const pct = (n) => (total > 0 ? Math.min(100, (100 * n) / total) : 0);
    ok.style.width = pct(done) + '%';
    bad.style.width = pct(failed) + '%';
    el.setAttribute('aria-valuemax', total);
    el.setAttribute('aria-valuenow', done + failed);
    el.dataset.done = done;
    el.dataset.failed = failed;
    el.dataset.total = total;
    setText(label, text ?? `${done + failed}/${total}`);
  };
  return el;
}

// A small line chart of numbers (oldest first) as inline SVG.
export function sparkline(values, { width = 160, height = 32, label = '' } = {}) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const pts = values.map((v, i) =>
    `${(i * step).toFixed(1)},${(height - 2 - ((height - 4) * v) / max).toFixed(1)}`);
  const svg = h('svg:svg', {
    class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': label,
  });
  svg.append(h('svg:title', {}, label));
  if (pts.length > 0) {
    svg.append(h('svg:polygon', {
      class: 'spark-area', points: `0,${height} ${pts.join(' ')} ${width},${height}`,
    }));
    svg.append(h('svg:polyline', { class: 'spark-line', points: pts.join(' ') }));
  }
  return svg;
}

export function fmtCount(n) {
  return Number(n || 0).toLocaleString('en-US');
}

// "4s", "3m 12s", "2h 5m", "3d 4h"; "—" when unknown.
export function fmtAge(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function fmtTime(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// A duration in ms as the largest whole unit: "7d", "24h", "90m", "45s",
// "250ms"; "0" for none.
export function fmtDuration(ms) {
  if (!ms) return '0';
  for (const [unit, size] of DURATION_UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export const DURATION_UNITS = [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]];

// A rate limit {jobs, periodMs} as "10/s", "30/m", or "7 per 1500ms".
export function fmtRateLimit(rate) {
  if (!rate) return 'none';
  const unit = { 1000: 's', 60000: 'm', 3600000: 'h', 86400000: 'd' }[rate.periodMs];
  return unit ? `${fmtCount(rate.jobs)}/${unit}` : `${fmtCount(rate.jobs)} per ${fmtDuration(rate.periodMs)}`;
}

// "in 4s", "12s ago", relative to now.
export function fmtFromNow(ms) {
  if (!ms) return '';
  const d = ms - Date.now();
  return d >= 0 ? `in ${fmtAge(d + 999)}` : `${fmtAge(-d)} ago`;
}

export function fmtRate(perSec) {
  if (!Number.isFinite(perSec) || perSec <= 0) return '—';
  return perSec >= 10 ? `${Math.round(perSec)}/s` : `${perSec.toFixed(1)}/s`;
}

export function stateBadge(state) {
  return h('span', { class: `badge state-${state || 'unknown'}` }, state || 'unknown');
}

export function link(href, ...children) {
  return h('a', { href }, ...children);
}

export function jobLink(id) {
  return link(`#/jobs/${encodeURIComponent(id)}`, `#${id}`);
}

// A <section> with a heading, for the parts of a view.
export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', {}, title), ...children);
}

export function table(headers, cls) {
  const tbody = h('tbody');
  const el = h('table', { class: cls || '' },
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))), tbody);
  return { el, tbody };
}

// Payload text: pretty-printed when it is JSON, cut at limit characters
// with a button that shows the rest.
// pretty: false keeps JSON on one line (for table cells).
export function payloadBlock(text, limit = 2000, pretty = true) {
  let shown = text ?? '';
  try {
    const parsed = JSON.parse(shown);
    if (parsed !== null && typeof parsed === 'object') shown = JSON.stringify(parsed, null, pretty ? 2 : 0);
  } catch { /* not JSON: shown as it is */ }
  const pre = h('pre', { class: 'payload' });
  const wrap = h('div', { class: 'payload-wrap' }, pre);
  if (shown.length > limit) {
    pre.textContent = shown.slice(0, limit) + '…';
    const btn = h('button', { type: 'button', class: 'link-button' },
      `Show all (${fmtCount(shown.length)} characters)`);
    btn.addEventListener('click', () => {
      pre.textContent = shown;
      btn.remove();
    });
    wrap.append(btn);
  } else {
    pre.textContent = shown || '(empty)';
  }
  return wrap;
}
