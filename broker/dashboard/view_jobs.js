// Jobs (#/jobs?queue=&state=&batch=, #/jobs/ID): search by id, filter,
// newest first with cursor paging; a job's page with payload, attempts,
// last error, progress, result and the timeline of the state changes this
// page has seen (capped: live.js TIMELINE_MAX).

import { get, post, listOf, normJob, STATES, can, ApiError } from './api.js';
import { store, jobEntry, loadJob } from './live.js';
import { h, fill, setText, syncRows, table, section, progressBar, payloadBlock, fmtTime, fmtAge, stateBadge, jobLink, link, throttled } from './ui.js';

const PAGE = 50;

function queryString(f) {
  const q = new URLSearchParams();
  for (const k of ['queue', 'state', 'batch']) if (f[k]) q.set(k, f[k]);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function listView(root, params) {
  const f = { queue: params.query.get('queue') || '', state: params.query.get('state') || '',
    batch: params.query.get('batch') || '' };
  const idInput = h('input', { id: 'job-id', name: 'id', inputmode: 'numeric', autocomplete: 'off',
    placeholder: 'job id', pattern: '[0-9]+', 'aria-describedby': 'job-id-help' });
  const findForm = h('form', { class: 'inline-form', role: 'search' },
    h('label', { for: 'job-id' }, 'Find a job by id'), idInput,
    h('button', { type: 'submit' }, 'Go'),
    h('span', { id: 'job-id-help', class: 'muted' }, ' digits only'));
  findForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = idInput.value.trim().replace(/^#/, '');
    if (!/^\d+$/.test(id)) {
      setText(status, `"${id}" is not a job id: ids are digits, like 42.`);
      idInput.focus();
      return;
    }
    location.hash = `#/jobs/${id}`;
  });

  const queueSel = h('select', { id: 'f-queue', name: 'queue' }, h('option', { value: '' }, 'any'),
    [...store.queues.keys()].sort().map((q) => h('option', { value: q, selected: q === f.queue }, q)));
  if (f.queue && !store.queues.has(f.queue)) queueSel.append(h('option', { value: f.queue, selected: true }, f.queue));
  const stateSel = h('select', { id: 'f-state', name: 'state' }, h('option', { value: '' }, 'any'),
    STATES.map((s) => h('option', { value: s, selected: s === f.state }, s)));
  const batchIn = h('input', { id: 'f-batch', name: 'batch', value: f.batch, inputmode: 'numeric', size: 8,
    pattern: '[0-9]*', autocomplete: 'off' });
  const filterForm = h('form', { class: 'inline-form' },
    h('label', { for: 'f-queue' }, 'queue'), queueSel,
    h('label', { for: 'f-state' }, 'state'), stateSel,
    h('label', { for: 'f-batch' }, 'batch'), batchIn,
    h('button', { type: 'submit' }, 'Filter'));
  filterForm.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = `#/jobs${queryString({ queue: queueSel.value, state: stateSel.value, batch: batchIn.value.trim() })}`;
  });

  const list = table(['job', 'queue', 'type', 'state', 'attempt', 'progress', 'updated'], 'jobs');
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const first = h('button', { type: 'button' }, 'First page');
  const next = h('button', { type: 'button' }, 'Next page');
  fill(root, h('h1', {}, 'Jobs'), h('div', { class: 'panel' }, findForm, filterForm), status,
    h('div', { class: 'panel' }, list.el),
    h('nav', { class: 'pager', 'aria-label': 'pages' }, first, next));

  const cursors = ['']; // cursor of each page seen, so "first" is cheap
  let page = 0;
  let nextCursor = null;
  let loading = false;
  async function load() {
    if (loading) return;
    loading = true;
    const q = new URLSearchParams();
    for (const k of ['queue', 'state', 'batch']) if (f[k]) q.set(k, f[k]);
    q.set('limit', String(PAGE));
    if (cursors[page]) q.set('cursor', cursors[page]);
    try {
      const json = await get(`/v1/jobs?${q}`);
      const jobs = listOf(json, 'jobs').map(normJob);
      nextCursor = json?.next_cursor || json?.cursor || null;
      syncRows(list.tbody, jobs, (j) => j.id, () => h('tr'), (r, j) => fill(r,
        h('td', {}, jobLink(j.id)), h('td', {}, j.queue), h('td', {}, j.type), h('td', {}, stateBadge(j.state)),
        h('td', { class: 'num' }, `${j.attempt}/${j.maxAttempts || '—'}`),
        h('td', {}, j.progress.total ? `${j.progress.done}/${j.progress.total}` : ''),
        h('td', { class: 'muted' }, j.updatedAt ? `${fmtAge(Date.now() - j.updatedAt)} ago` : '')));
      setText(status, jobs.length === 0 ? 'No job matches.' : `Page ${page + 1}: ${jobs.length} jobs, newest first.`);
    } catch (e) {
      setText(status, e.message);
    }
    first.disabled = page === 0;
    next.disabled = !nextCursor;
    loading = false;
  }
  first.addEventListener('click', () => { page = 0; load(); });
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    cursors[page + 1] = nextCursor;
    page += 1;
    load();
  });
  load();
  const reload = throttled(() => { if (page === 0) load(); }, 2000);
  return {
    changed(what) {
      // The first page follows along (at most every 2 s); later pages
      // stay still so paging is not shifted under the reader.
      if (page === 0 && (what.has('jobs') || what.has('all'))) reload();
    },
  };
}

function detailView(root, id) {
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const facts = h('dl', { class: 'facts' });
  const bar = progressBar();
  const progressMsg = h('p', { class: 'op-big' });
  const errorBox = h('pre', { class: 'error-text' });
  const payload = h('div');
  const result = h('div');
  const actions = h('div', { class: 'actions' });
  const timeline = h('ol', { class: 'timeline' });
  fill(root, h('h1', {}, `Job #${id}`), status,
    section('Progress', bar, progressMsg),
    h('div', { class: 'panel' }, facts, actions),
    section('Last error', errorBox),
    section('Payload', payload),
    section('Result', result),
    section('Timeline (changes seen by this page)', timeline));

  let shownPayload = null;
  let resultFor = null;
  function update() {
    const e = store.jobs.get(String(id));
    if (!e || !e.job) return;
    const j = e.job;
    fill(facts,
      h('div', {}, h('dt', {}, 'state'), h('dd', { class: 'job-state' }, stateBadge(j.state))),
      h('div', {}, h('dt', {}, 'queue'), h('dd', {}, link(`#/queues/${encodeURIComponent(j.queue)}`, j.queue))),
      h('div', {}, h('dt', {}, 'type'), h('dd', {}, j.type)),
      h('div', {}, h('dt', {}, 'attempts'), h('dd', { class: 'attempts' }, `${j.attempt} of ${j.maxAttempts || '—'}`)),
      h('div', {}, h('dt', {}, 'priority'), h('dd', {}, j.priority)),
      h('div', {}, h('dt', {}, 'batch'), h('dd', {}, j.batch ? link(`#/batches/${j.batch}`, `#${j.batch}`) : '—')),
      h('div', {}, h('dt', {}, 'created'), h('dd', {}, fmtTime(j.createdAt))),
      h('div', {}, h('dt', {}, 'updated'), h('dd', {}, fmtTime(j.updatedAt))),
      j.state === 'delayed' ? h('div', {}, h('dt', {}, 'runs at'), h('dd', {}, fmtTime(j.runAt))) : null);
    const p = j.progress;
    bar.set(p.done, 0, p.total || (j.state === 'completed' ? 1 : 0),
      p.total ? `${p.done}/${p.total}` : j.state === 'completed' ? 'done' : 'no progress reported');
    if (!p.total && j.state === 'completed') bar.set(1, 0, 1, 'done');
    setText(progressMsg, p.message || '');
    setText(errorBox, j.lastError || 'none');
    errorBox.classList.toggle('muted', !j.lastError);
    if (j.payload !== undefined && shownPayload !== j.payload) {
      shownPayload = j.payload;
      fill(payload, payloadBlock(j.payload));
    } else if (j.payload === undefined && shownPayload === null) {
      fill(payload, h('p', { class: 'muted' }, j.payloadBase64 ? `Binary payload (base64): ${j.payloadBase64.slice(0, 2000)}` : 'No payload.'));
    }
    if (j.state === 'completed' && resultFor !== id) {
      resultFor = id;
      loadResult();
    } else if (j.state !== 'completed' && resultFor === null) {
      fill(result, h('p', { class: 'muted' }, `No result yet (the job is ${j.state}).`));
    }
    const act = [];
    if (can('retry') && j.state === 'failed') act.push(button('Retry', () => post(`/v1/jobs/${id}/retry`)));
    if (can('cancel') && ['pending', 'delayed', 'active'].includes(j.state)) {
      act.push(button('Cancel', () => post(`/v1/jobs/${id}/cancel`)));
    }
    syncRows(actions, act, (b) => b.textContent, (b) => b, () => {});
    const items = e.timeline.slice().reverse();
    syncRows(timeline, items, (t) => t.seq, () => h('li'), (li, t) => fill(li,
      h('time', {}, fmtTime(t.at)), ' ', stateBadge(t.state),
      t.attempt ? ` attempt ${t.attempt}` : '', t.worker ? ` on ${t.worker}` : '',
      t.note ? h('span', { class: 'muted' }, ` — ${t.note}`) : ''));
  }
  function button(label, action) {
    const b = h('button', { type: 'button' }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await action();
        setText(status, `${label}: done.`);
        await loadJob(id);
      } catch (err) {
        setText(status, `${label}: ${err.message}`);
      }
      b.disabled = false;
    });
    return b;
  }
  async function loadResult() {
    try {
      const r = await get(`/v1/jobs/${encodeURIComponent(id)}/result`);
      const text = typeof r === 'string' ? r : r && r.result !== undefined
        ? (typeof r.result === 'string' ? r.result : JSON.stringify(r.result)) : JSON.stringify(r);
      fill(result, payloadBlock(text));
    } catch (err) {
      fill(result, h('p', { class: 'muted' }, err.message));
    }
  }
  async function load() {
    try {
      await loadJob(id);
      setText(status, '');
      update();
    } catch (err) {
      setText(status, err instanceof ApiError && err.status === 404
        ? `No job #${id}: it never existed or retention dropped it.` : err.message);
    }
  }
  jobEntry(id);
  load();
  const reload = throttled(load, 1000);
  return {
    changed(what) {
      if (what.has(`job:${id}`)) {
        update();
        // An event does not carry every field (times, result): read the
        // job again, at most once a second and once after the last event.
        reload();
      }
      if (what.has('all')) reload();
    },
  };
}

export function jobsView(root, params) {
  return params.id ? detailView(root, params.id) : listView(root, params);
}
