// Schedules (#/schedules): every schedule the token may see (those whose
// runs go to its queues) with its expression, zone, job template, next run
// and last run, from GET /v1/schedules. A token whose role may (whoami's
// can.schedule_add, can.schedule_remove) gets an Add form (PUT
// /v1/schedules/NAME) and a Remove button per schedule (DELETE); the
// broker checks the expression and zone and says what is wrong in one line,
// shown here as it is.
//
// Schedules fire without an event of their own, so the list is re-read
// when its earliest next run has passed (and after the page's own
// changes); the "in 4s" countdowns move with the clock.

import { get, put, del, listOf, normSchedule, can } from './api.js';
import { h, fill, setText, syncRows, table, fmtTime, fmtFromNow, link } from './ui.js';

const COLUMNS = ['name', 'schedule', 'zone', 'queue', 'type', 'next run', 'last run', 'actions'];
const REREAD_MIN_MS = 500;
const REREAD_MAX_MS = 60000;
const AFTER_RUN_MS = 400; // the run's job is journaled by then

function addForm(submit) {
  const f = (id, label, input) => h('span', { class: 'field' }, h('label', { for: id }, label), input);
  const name = h('input', { id: 'sched-name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9._\\-]{1,64}',
    title: '1-64 of A-Z a-z 0-9 . _ -', placeholder: 'nightly-report' });
  const kind = h('select', { id: 'sched-kind' },
    h('option', { value: 'every' }, 'every (interval)'), h('option', { value: 'cron' }, 'cron expression'));
  const expr = h('input', { id: 'sched-expr', required: true, autocomplete: 'off', placeholder: '30s, 5m, 1h' });
  const tz = h('input', { id: 'sched-tz', autocomplete: 'off', placeholder: 'UTC', list: 'sched-zones' });
  const zones = h('datalist', { id: 'sched-zones' },
    ['UTC', 'Europe/Berlin', 'Europe/London', 'America/New_York', 'America/Los_Angeles', 'Asia/Tokyo']
      .map((z) => h('option', { value: z })));
  const queue = h('input', { id: 'sched-queue', required: true, autocomplete: 'off', placeholder: 'reports' });
  const type = h('input', { id: 'sched-type', required: true, autocomplete: 'off', placeholder: 'report.daily' });
  const payload = h('input', { id: 'sched-payload', autocomplete: 'off', placeholder: '{"kind":"daily"}', class: 'wide-input' });
  kind.addEventListener('change', () => {
    expr.placeholder = kind.value === 'every' ? '30s, 5m, 1h' : '30 2 * * mon-fri';
  });
  const form = h('form', { class: 'schedule-form', 'aria-label': 'Add a schedule' },
    f('sched-name', 'Name', name), f('sched-kind', 'Runs', kind), f('sched-expr', 'Interval or expression', expr),
    f('sched-tz', 'Time zone', h('span', {}, tz, zones)), f('sched-queue', 'Queue', queue), f('sched-type', 'Job type', type),
    f('sched-payload', 'Payload', payload),
    h('span', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add schedule')),
    h('p', { class: 'muted form-note' },
      'Cron takes 5 fields (6 with seconds first) or @daily, @hourly, …; an interval runs on whole multiples of it. ',
      'A name already used replaces that schedule (its last run is kept).'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { [kind.value]: expr.value.trim(), queue: queue.value.trim(), type: type.value.trim() };
    if (tz.value.trim()) body.tz = tz.value.trim();
    if (payload.value !== '') body.payload = payload.value;
    if (await submit(name.value.trim(), body)) {
      name.value = '';
      name.focus();
    }
  });
  return form;
}

export function schedulesView(root) {
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const outcome = h('p', { class: 'outcome', role: 'status', 'aria-live': 'polite' });
  const list = table(COLUMNS, 'schedules');
  const addPanel = h('section', { class: 'panel', 'aria-labelledby': 'add-title' },
    h('h2', { id: 'add-title' }, 'Add a schedule'));
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  fill(root, h('h1', {}, 'Schedules'),
    h('p', { class: 'muted' }, `Runs are computed by the broker in each schedule's zone; times here are in this browser's (${zone}).`),
    outcome, status, h('div', { class: 'panel' }, list.el), addPanel);

  let schedules = [];
  let loading = false;
  let again = false;
  let timer = null;
  let left = false;

  async function submit(name, body) {
    setText(outcome, `Adding ${name}…`);
    try {
      const s = normSchedule(await put(`/v1/schedules/${encodeURIComponent(name)}`, body));
      setText(outcome, `Schedule ${s.name} added: next run ${fmtTime(s.nextRun)}.`);
      load();
      return true;
    } catch (e) {
      setText(outcome, `Adding ${name}: ${e.message}`);
      return false;
    }
  }
  fill(addPanel, h('h2', { id: 'add-title' }, 'Add a schedule'), addForm(submit));

  async function remove(name) {
    setText(outcome, `Removing ${name}…`);
    try {
      await del(`/v1/schedules/${encodeURIComponent(name)}`);
      setText(outcome, `Schedule ${name} removed.`);
    } catch (e) {
      setText(outcome, `Removing ${name}: ${e.message}`);
    }
    load();
  }

  // The next re-read: just after the earliest next run, within bounds.
  function plan() {
    clearTimeout(timer);
    if (left) return;
    const next = Math.min(...schedules.map((s) => s.nextRun || Infinity));
    const wait = Number.isFinite(next) ? next - Date.now() + AFTER_RUN_MS : REREAD_MAX_MS;
    timer = setTimeout(load, Math.min(REREAD_MAX_MS, Math.max(REREAD_MIN_MS, wait)));
  }

  async function load() {
    if (loading) { again = true; return; }
    loading = true;
    try {
      schedules = listOf(await get('/v1/schedules'), 'schedules').map(normSchedule)
        .sort((a, b) => a.name.localeCompare(b.name));
      render();
      setText(status, schedules.length ? `${schedules.length} ${schedules.length === 1 ? 'schedule' : 'schedules'}.`
        : 'No schedules yet.' + (can('schedule_add') ? ' Add one below, or with jobmesh schedule add.' : ''));
    } catch (e) {
      setText(status, `Cannot read schedules: ${e.message}`);
    }
    loading = false;
    plan();
    if (again) { again = false; load(); }
  }

  function rowFor(s) {
    const cells = COLUMNS.map(() => h('td'));
    cells[5].className = 'next-run';
    cells[6].className = 'last-run';
    const removeBtn = h('button', { type: 'button', class: 'danger' }, 'Remove');
    removeBtn.addEventListener('click', () => remove(s.name));
    removeBtn.setAttribute('aria-label', `Remove schedule ${s.name}`);
    cells[7].className = 'row-actions';
    fill(cells[7], removeBtn);
    const row = h('tr', {}, cells);
    row.update = (item) => {
      setText(cells[0], item.name);
      fill(cells[1], item.every ? `every ${item.every}` : h('code', { class: 'expr' }, item.expr));
      setText(cells[2], item.tz);
      fill(cells[3], link(`#/queues/${encodeURIComponent(item.queue)}`, item.queue));
      setText(cells[4], item.type);
      fill(cells[5], item.nextRun ? [h('time', {}, fmtTime(item.nextRun)), h('small', {}, fmtFromNow(item.nextRun))] : 'never');
      fill(cells[6], item.lastRun ? [h('time', {}, fmtTime(item.lastRun)), h('small', {}, fmtFromNow(item.lastRun))]
        : h('span', { class: 'muted' }, 'not yet'));
      removeBtn.hidden = !can('schedule_remove');
    };
    return row;
  }

  function render() {
    syncRows(list.tbody, schedules, (s) => s.name, rowFor, (r, s) => r.update(s));
    list.el.parentElement.hidden = schedules.length === 0;
    list.el.classList.toggle('no-actions', !can('schedule_remove'));
    addPanel.hidden = !can('schedule_add');
  }

  render();
  load();
  return {
    changed(what) {
      if (what.has('all') || what.has('auth')) load();
      else if (what.has('tick')) render();
    },
    leave() {
      left = true;
      clearTimeout(timer);
    },
  };
}
