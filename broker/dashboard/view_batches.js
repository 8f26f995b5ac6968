// Batches (#/batches and #/batches/ID): running and recent batches with a
// progress bar (done, failed, total), current operation, rate, ETA and
// errors, all moved by batch events as they come.

import { get, listOf, normBatch, normJob } from './api.js';
import { store, batchRate, reread, markDirty } from './live.js';
import { h, fill, setText, syncRows, table, section, progressBar, fmtAge, fmtRate, fmtTime, fmtCount, stateBadge, link, jobLink, throttled } from './ui.js';

function rateText(b) {
  const { rate, eta } = batchRate(b);
  return {
    rate: fmtRate(rate),
    eta: b.state !== 'running' ? 'done' : eta === null ? '—' : fmtAge(eta * 1000),
  };
}

function batchRow(b) {
  const bar = progressBar();
  const cells = {
    id: h('td', {}, link(`#/batches/${encodeURIComponent(b.id)}`, `#${b.id}`)),
    state: h('td'),
    bar: h('td', { class: 'bar-cell' }, bar),
    op: h('td', { class: 'op' }),
    rate: h('td', { class: 'num' }),
    eta: h('td', { class: 'num' }),
    errors: h('td', { class: 'errors' }),
  };
  const row = h('tr', { dataset: { batch: b.id } }, Object.values(cells));
  row.update = (item) => {
    fill(cells.state, stateBadge(item.state));
    bar.set(item.completed, item.failed + item.cancelled, item.total,
      `${fmtCount(item.completed)} done, ${fmtCount(item.failed + item.cancelled)} failed, of ${fmtCount(item.total)}`);
    setText(cells.op, item.currentOperation || '—');
    const r = rateText(item);
    setText(cells.rate, r.rate);
    setText(cells.eta, r.eta);
    setText(cells.errors, item.errors.length ? item.errors[item.errors.length - 1].message : '');
    cells.errors.title = item.errors.length ? `${item.errors.length} errors` : '';
  };
  return row;
}

function listView(root) {
  const running = table(['batch', 'state', 'progress', 'current operation', 'rate', 'ETA', 'last error'], 'batches');
  const recent = table(['batch', 'state', 'progress', 'current operation', 'rate', 'ETA', 'last error'], 'batches');
  const status = h('p', { class: 'muted', role: 'status' });
  const runningEmpty = h('p', { class: 'muted' }, 'No batch is running.');
  const recentEmpty = h('p', { class: 'muted' }, 'No batch has finished lately.');
  fill(root, h('h1', {}, 'Batches'), status,
    section('Running', runningEmpty, running.el),
    section('Recent (the last 50 that finished, while their jobs are kept)', recentEmpty, recent.el));
  reread('batches', true);

  function update() {
    const all = [...store.batches.values()].sort((a, b) => Number(b.id) - Number(a.id));
    const run = all.filter((b) => b.state === 'running');
    const done = all.filter((b) => b.state !== 'running');
    syncRows(running.tbody, run, (b) => b.id, batchRow, (r, b) => r.update(b));
    syncRows(recent.tbody, done, (b) => b.id, batchRow, (r, b) => r.update(b));
    runningEmpty.hidden = run.length > 0;
    running.el.hidden = run.length === 0;
    recentEmpty.hidden = done.length > 0;
    recent.el.hidden = done.length === 0;
    setText(status, store.errors.batches ? `Cannot read batches: ${store.errors.batches.message}`
      : `${run.length} running`);
  }
  update();
  return {
    changed(what) {
      if (what.has('batches') || what.has('all') || what.has('tick')) update();
    },
  };
}

function detailView(root, id) {
  const bar = progressBar();
  const facts = h('dl', { class: 'facts' });
  const op = h('p', { class: 'op-big' });
  const errors = table(['job', 'error'], 'errors');
  const noErrors = h('p', { class: 'muted' }, 'No errors.');
  const jobs = table(['job', 'queue', 'type', 'state', 'attempt', 'progress'], 'jobs');
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  fill(root, h('h1', {}, `Batch #${id}`), status,
    h('div', { class: 'batch-detail' }, bar, op, facts),
    section('Errors', noErrors, errors.el),
    section('Jobs (newest first, first 100)', jobs.el));

  async function load() {
    try {
      const b = normBatch(await get(`/v1/batches/${encodeURIComponent(id)}`));
      const old = store.batches.get(b.id);
      store.batches.set(b.id, old ? Object.assign(old, b) : { ...b, samples: [] });
      markDirty(`batch:${id}`);
      setText(status, '');
    } catch (e) {
      setText(status, e.status === 404 ? `No batch #${id} (it may have been dropped by retention).` : e.message);
    }
    loadJobs();
  }
  let jobsLoading = false;
  async function loadJobs() {
    if (jobsLoading) return;
    jobsLoading = true;
    try {
      const list = listOf(await get(`/v1/jobs?batch=${encodeURIComponent(id)}&limit=100`), 'jobs').map(normJob);
      syncRows(jobs.tbody, list, (j) => j.id, () => h('tr'), (r, j) => fill(r,
        h('td', {}, jobLink(j.id)), h('td', {}, j.queue), h('td', {}, j.type), h('td', {}, stateBadge(j.state)),
        h('td', { class: 'num' }, `${j.attempt}/${j.maxAttempts || '—'}`),
        h('td', {}, j.progress.total ? `${j.progress.done}/${j.progress.total} ${j.progress.message}` : '')));
    } catch { /* the list is a convenience; the batch above is what matters */ }
    jobsLoading = false;
  }
  function update() {
    const b = store.batches.get(String(id));
    if (!b) return;
    bar.set(b.completed, b.failed + b.cancelled, b.total,
      `${fmtCount(b.completed)} done, ${fmtCount(b.failed + b.cancelled)} failed, of ${fmtCount(b.total)}`);
    setText(op, b.currentOperation ? `Now: ${b.currentOperation}` : '');
    const r = rateText(b);
    fill(facts,
      h('div', {}, h('dt', {}, 'state'), h('dd', {}, stateBadge(b.state))),
      h('div', {}, h('dt', {}, 'active'), h('dd', {}, fmtCount(b.active))),
      h('div', {}, h('dt', {}, 'rate'), h('dd', {}, r.rate)),
      h('div', {}, h('dt', {}, 'ETA'), h('dd', {}, r.eta)),
      h('div', {}, h('dt', {}, 'started'), h('dd', {}, fmtTime(b.createdAt))),
      h('div', {}, h('dt', {}, 'finished'), h('dd', {}, fmtTime(b.finishedAt))));
    noErrors.hidden = b.errors.length > 0;
    errors.el.hidden = b.errors.length === 0;
    syncRows(errors.tbody, b.errors.slice().reverse(), (e) => `${e.jobId}:${e.message}`, () => h('tr'),
      (row, e) => fill(row, h('td', {}, e.jobId ? jobLink(e.jobId) : '—'), h('td', { class: 'error-text' }, e.message)));
  }
  load();
  const reloadJobs = throttled(loadJobs, 1000);
  return {
    changed(what) {
      if (what.has(`batch:${id}`) || what.has('tick') || what.has('all')) update();
      if (what.has('all')) load();
      // The job list follows along, at most once a second.
      if (what.has(`batch:${id}`) || what.has('jobs')) reloadJobs();
    },
  };
}

export function batchesView(root, params) {
  return params.id ? detailView(root, params.id) : listView(root);
}
