// Queue settings (#/settings): every queue's runtime settings as GET
// /v1/queues carries them (paused, active limit, rate limit, max attempts,
// the per-group active limit, retention of completed, failed
// (dead-lettered) and cancelled jobs each, idempotency key window), the
// queue's own ones marked apart
// from those that follow the broker's flags. A token whose role may change
// them (whoami's can.queue_settings: admin) gets Pause/Resume and an Edit
// form per queue, sent through the settings API (POST .../pause, .../resume,
// PATCH .../settings); other roles see the same table without controls,
// and the broker refuses them anyway (403).

import { post, patch, can } from './api.js';
import { store, reread } from './live.js';
import { h, fill, setText, syncRows, table, fmtCount, fmtDuration, fmtRateLimit, link, DURATION_UNITS } from './ui.js';

const RATE_UNITS = [['s', 1000, 'per second'], ['m', 60000, 'per minute'], ['h', 3600000, 'per hour'],
  ['d', 86400000, 'per day']];
const COLUMNS = ['queue', 'state', 'active limit', 'rate limit', 'max attempts', 'group limit',
  'keep completed', 'keep failed', 'keep cancelled', 'key window', 'actions'];
const KEEP_STATES = ['completed', 'failed', 'cancelled'];
const ACTIONS = COLUMNS.length - 1;

// One state's retention as a cell's text: "COUNT, for AGE"; a count of
// null is unlimited, an age of 0 none.
function keepText(k) {
  if (k === null) return '—';
  const count = k.count === null ? 'unlimited' : fmtCount(k.count);
  return k.ageMs ? `${count}, for ${fmtDuration(k.ageMs)}` : `${count}, no age limit`;
}

// A setting's cell: its value, and "default" in muted text when the queue
// follows the broker's flag.
function valueCell(td, text, own) {
  fill(td, text, own ? null : h('span', { class: 'muted default-mark', title: "the broker's default (its flags)" }, ' default'));
}

// A number input and a unit select for a duration in ms (the largest unit
// that divides it exactly).
function durationField(id, label, ms, min) {
  let unit = DURATION_UNITS.find(([, size]) => ms % size === 0 && ms > 0) || ['s', 1000];
  if (!ms) unit = ['s', 1000];
  const num = h('input', { id, type: 'number', min, step: 1, value: ms ? ms / unit[1] : 0, required: true, class: 'num-input' });
  const sel = h('select', { id: `${id}-unit`, 'aria-label': `${label} unit` },
    DURATION_UNITS.map(([u, size]) => h('option', { value: size, selected: u === unit[0] }, { d: 'days', h: 'hours', m: 'minutes', s: 'seconds' }[u])));
  return {
    el: h('span', { class: 'field' }, h('label', { for: id }, label), h('span', {}, num, sel)),
    value: () => Number(num.value) * Number(sel.value),
  };
}

// The edit form of one queue: only the fields that changed are sent, in
// one PATCH (the broker journals them in one record).
function editForm(q, done) {
  const id = (k) => `set-${q.name}-${k}`;
  const limit = h('input', { id: id('limit'), type: 'number', min: 0, step: 1, value: q.activeLimit || 0, required: true, class: 'num-input' });
  const rateJobs = h('input', { id: id('rate'), type: 'number', min: 0, step: 1, value: q.rate ? q.rate.jobs : 0, required: true, class: 'num-input' });
  const rateUnit = h('select', { id: id('rate-unit'), 'aria-label': 'rate period' },
    RATE_UNITS.map(([, ms, label]) => h('option', { value: ms, selected: q.rate ? q.rate.periodMs === ms : ms === 1000 }, label)));
  if (q.rate && !RATE_UNITS.some(([, ms]) => ms === q.rate.periodMs)) {
    rateUnit.append(h('option', { value: q.rate.periodMs, selected: true }, `per ${fmtDuration(q.rate.periodMs)}`));
  }
  const attempts = h('input', { id: id('attempts'), type: 'number', min: 1, max: 1000, step: 1, value: q.maxAttempts || 1, required: true, class: 'num-input' });
  const group = h('input', { id: id('group'), type: 'number', min: 0, step: 1, value: q.groupLimit || 0, required: true, class: 'num-input' });
  // Per state: a count (empty: unlimited) and an age (0: no age limit).
  const keeps = KEEP_STATES.map((st) => {
    const k = q.keep[st] || { count: null, ageMs: 0 };
    const label = `Keep ${st}`;
    const count = h('input', { id: id(`keep-${st}`), type: 'number', min: 0, step: 1, value: k.count ?? '', placeholder: 'unlimited', class: 'num-input' });
    const age = durationField(id(`keep-${st}-age`), `${label} for`, k.ageMs || 0, 0);
    return { st, k, count, age, el: [h('span', { class: 'field' }, h('label', { for: id(`keep-${st}`) }, label), count), age.el] };
  });
  const window = durationField(id('key-window'), 'Key window', q.keyWindowMs || 0, 1);
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const cancel = h('button', { type: 'button' }, 'Cancel');
  const note = h('p', { class: 'muted form-note' }, 'Active limit, group limit and rate 0 mean none; a keep count left empty keeps all, a keep-for of 0 has no age limit. Changes are journaled and apply at once.');
  const form = h('form', { class: 'settings-form', 'aria-label': `Settings of ${q.name}` },
    h('span', { class: 'field' }, h('label', { for: id('limit') }, 'Active limit'), limit),
    h('span', { class: 'field' }, h('label', { for: id('rate') }, 'Rate limit'), h('span', {}, rateJobs, rateUnit)),
    h('span', { class: 'field' }, h('label', { for: id('attempts') }, 'Max attempts'), attempts),
    h('span', { class: 'field' }, h('label', { for: id('group') }, 'Group limit'), group),
    ...keeps.flatMap((k) => k.el), window.el,
    h('span', { class: 'form-actions' }, save, cancel), note);
  cancel.addEventListener('click', () => done(null));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = {};
    const n = (el) => Number(el.value);
    if (n(limit) !== (q.activeLimit || 0)) body.max_active = n(limit);
    const rate = n(rateJobs) > 0 ? { jobs: n(rateJobs), period_ms: Number(rateUnit.value) } : null;
    const was = q.rate ? { jobs: q.rate.jobs, period_ms: q.rate.periodMs } : null;
    if (JSON.stringify(rate) !== JSON.stringify(was)) body.rate = rate;
    if (n(attempts) !== q.maxAttempts) body.max_attempts = n(attempts);
    if (n(group) !== (q.groupLimit || 0)) body.group_limit = n(group);
    for (const { st, k, count, age } of keeps) {
      const c = count.value === '' ? null : n(count);
      if (c !== k.count) body[`keep_${st}`] = c;
      if (age.value() !== k.ageMs) body[`keep_${st}_age_ms`] = age.value();
    }
    if (window.value() !== q.keyWindowMs) body.key_window_ms = window.value();
    done(body);
  });
  return form;
}

export function settingsView(root) {
  const status = h('p', { class: 'muted', role: 'status' });
  const outcome = h('p', { class: 'outcome', role: 'status', 'aria-live': 'polite' });
  const list = table(COLUMNS, 'settings');
  // One queue's edit form at a time, outside the table: live re-reads
  // redraw the rows, never the form being typed in.
  const editPanel = h('section', { class: 'panel edit-panel', hidden: true, 'aria-labelledby': 'edit-title' });
  fill(root, h('h1', {}, 'Queue settings'),
    h('p', { class: 'muted' }, 'Runtime settings of each queue, changed with jobmesh queue set/pause/resume or here; ',
      'values marked default follow the broker\'s flags.'),
    outcome, status, h('div', { class: 'panel' }, list.el), editPanel);
  let editing = null; // the queue whose form is open
  const editButtons = new Map(); // queue -> its Edit button, for focus

  async function act(label, fn) {
    setText(outcome, `${label}…`);
    try {
      setText(outcome, await fn());
    } catch (e) {
      setText(outcome, `${label}: ${e.message}`);
    }
    reread('queues', true);
  }

  function closeEdit() {
    const name = editing;
    editing = null;
    editPanel.hidden = true;
    editPanel.replaceChildren();
    update();
    editButtons.get(name)?.focus();
  }

  function openEdit(q) {
    editing = q.name;
    fill(editPanel, h('h2', { id: 'edit-title' }, `Settings of ${q.name}`), editForm(q, (body) => {
      const name = q.name;
      closeEdit();
      if (body === null) return;
      if (Object.keys(body).length === 0) {
        setText(outcome, `Queue ${name}: nothing changed.`);
        return;
      }
      act(`Settings of ${name}`, async () => {
        await patch(`/v1/queues/${encodeURIComponent(name)}/settings`, body);
        return `Queue ${name}: ${Object.keys(body).join(', ').replaceAll('_', ' ')} saved.`;
      });
    }));
    editPanel.hidden = false;
    update();
    editPanel.querySelector('input')?.focus();
  }

  function rowFor(q) {
    const cells = COLUMNS.map(() => h('td'));
    for (const i of [2, 4, 5]) cells[i].className = 'num';
    const toggle = h('button', { type: 'button' });
    const edit = h('button', { type: 'button' }, 'Edit');
    editButtons.set(q.name, edit);
    cells[ACTIONS].className = 'row-actions';
    fill(cells[ACTIONS], toggle, ' ', edit);
    const row = h('tr', {}, cells);
    let current = q;
    toggle.addEventListener('click', () => {
      const name = current.name;
      const verb = current.paused ? 'resume' : 'pause';
      act(`${verb === 'pause' ? 'Pause' : 'Resume'} ${name}`, async () => {
        const r = await post(`/v1/queues/${encodeURIComponent(name)}/${verb}`);
        return `Queue ${name} is ${r.paused ? 'paused: workers get none of its jobs' : 'running'}.`;
      });
    });
    edit.addEventListener('click', () => (editing === current.name ? closeEdit() : openEdit(current)));
    row.update = (item) => {
      current = item;
      fill(cells[0], link(`#/queues/${encodeURIComponent(item.name)}`, item.name));
      fill(cells[1], h('span', { class: `badge ${item.paused ? 'state-delayed' : 'state-completed'}` }, item.paused ? 'paused' : 'running'));
      valueCell(cells[2], item.activeLimit ? fmtCount(item.activeLimit) : 'none', item.own.has('max_active'));
      valueCell(cells[3], fmtRateLimit(item.rate), item.own.has('rate'));
      valueCell(cells[4], item.maxAttempts ?? '—', item.own.has('max_attempts'));
      valueCell(cells[5], item.groupLimit === null ? '—' : item.groupLimit ? fmtCount(item.groupLimit) : 'none', item.own.has('group_limit'));
      KEEP_STATES.forEach((st, i) => valueCell(cells[6 + i], keepText(item.keep[st]),
        item.own.has(`keep_${st}`) || item.own.has(`keep_${st}_age_ms`)));
      valueCell(cells[9], item.keyWindowMs === null ? '—' : fmtDuration(item.keyWindowMs), item.own.has('key_window_ms'));
      setText(toggle, item.paused ? 'Resume' : 'Pause');
      toggle.setAttribute('aria-label', `${item.paused ? 'Resume' : 'Pause'} queue ${item.name}`);
      edit.setAttribute('aria-label', `Edit settings of queue ${item.name}`);
      edit.setAttribute('aria-expanded', String(editing === item.name));
      row.classList.toggle('editing', editing === item.name);
      toggle.hidden = edit.hidden = !can('queue_settings');
    };
    return row;
  }

  function update() {
    const queues = [...store.queues.values()].sort((a, b) => a.name.localeCompare(b.name));
    const mayChange = can('queue_settings');
    if (!mayChange && editing !== null) {
      editing = null;
      editPanel.hidden = true;
      editPanel.replaceChildren();
    }
    syncRows(list.tbody, queues, (q) => q.name, rowFor, (r, q) => r.update(q));
    list.el.classList.toggle('no-actions', !mayChange);
    list.el.parentElement.hidden = queues.length === 0;
    if (store.errors.queues && !store.loaded.queues) setText(status, `Cannot read queues: ${store.errors.queues.message}`);
    else if (!store.loaded.queues) setText(status, 'Loading…');
    else if (queues.length === 0) setText(status, 'No queues yet: submit a job and it shows here.');
    else setText(status, mayChange ? `${queues.length} ${queues.length === 1 ? 'queue' : 'queues'}.`
      : `${queues.length} ${queues.length === 1 ? 'queue' : 'queues'}. This token may read the settings, not change them.`);
  }
  update();
  return {
    changed(what) {
      if (what.has('queues') || what.has('all') || what.has('auth')) update();
    },
  };
}
