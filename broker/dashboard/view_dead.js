// Dead letters (#/dead and #/dead/QUEUE): the jobs of a queue that used up
// their attempts, with their last error; retry one or all, and (admin:
// whoami's can.dead_remove) remove one or all for good, after a confirm,
// since a removed job is gone (DELETE /v1/queues/QUEUE/dead[/ID]). No cancel here:
// a dead-lettered job is already final, and the broker refuses to cancel
// it (409: only pending, delayed or active jobs can be cancelled).

import { get, post, del, listOf, normJob, can } from './api.js';
import { store, reread } from './live.js';
import { h, fill, setText, syncRows, table, payloadBlock, fmtCount, fmtTime, jobLink, link, throttled } from './ui.js';

function pickQueue(root) {
  const list = h('ul', { class: 'plain-list' });
  const status = h('p', { class: 'muted', role: 'status' });
  fill(root, h('h1', {}, 'Dead letters'), status, list);
  function update() {
    const queues = [...store.queues.values()].sort((a, b) => b.counts.failed - a.counts.failed || a.name.localeCompare(b.name));
    setText(status, queues.length ? 'Pick a queue:' : 'No queues yet.');
    syncRows(list, queues, (q) => q.name, () => h('li'), (li, q) => fill(li,
      link(`#/dead/${encodeURIComponent(q.name)}`, q.name), ` — ${fmtCount(q.counts.failed)} dead-lettered`));
  }
  update();
  return { changed(what) { if (what.has('queues') || what.has('all')) update(); } };
}

export function deadView(root, params) {
  if (!params.queue) return pickQueue(root);
  const queue = params.queue;
  const status = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite' }, 'Loading…');
  // What the last action did; kept apart from status, which the live
  // re-reads of the list rewrite.
  const outcome = h('p', { class: 'outcome', role: 'status', 'aria-live': 'polite' });
  const retryAll = h('button', { type: 'button', class: 'primary' }, 'Retry all');
  const removeAll = h('button', { type: 'button', class: 'danger' }, 'Remove all');
  const list = table(['job', 'type', 'attempts', 'failed at', 'error', 'payload', 'actions'], 'dead');
  fill(root, h('h1', {}, `Dead letters of ${queue}`),
    h('p', {}, link(`#/queues/${encodeURIComponent(queue)}`, `queue ${queue}`)),
    h('div', { class: 'actions' }, retryAll, removeAll), outcome, status, h('div', { class: 'panel' }, list.el));

  let jobs = [];
  let loading = false;
  let again = false;
  async function load() {
    if (loading) { again = true; return; }
    loading = true;
    try {
      jobs = listOf(await get(`/v1/queues/${encodeURIComponent(queue)}/dead?limit=200`), 'jobs').map(normJob);
      render();
      setText(status, jobs.length ? `${jobs.length} dead-lettered jobs.` : 'No dead-lettered jobs in this queue.');
    } catch (e) {
      setText(status, e.status === 404 ? `No queue named ${queue}.` : e.message);
    }
    loading = false;
    if (again) { again = false; load(); }
  }
  async function act(label, fn) {
    setText(outcome, `${label}…`);
    try {
      const msg = await fn();
      setText(outcome, msg || `${label}: done.`);
    } catch (e) {
      setText(outcome, `${label}: ${e.message}`);
    }
    reread('queues');
    load();
  }
  // One request revives every dead-lettered job of the queue, all or none
  // (the broker takes at most REVIVE_MAX a call: ask again while it did).
  const REVIVE_MAX = 10000;
  retryAll.addEventListener('click', () => act('Retry all', async () => {
    let revived = 0;
    for (let calls = 0; calls < 100; calls++) {
      const r = await post(`/v1/queues/${encodeURIComponent(queue)}/dead/retry`);
      revived += r.revived;
      if (r.revived < REVIVE_MAX) break;
    }
    return `Retried ${fmtCount(revived)} ${revived === 1 ? 'job' : 'jobs'}.`;
  }));

  // Removal is for good: the user confirms it first. The broker removes
  // at most REVIVE_MAX a call, as it revives.
  const plural = (n) => `${fmtCount(n)} ${n === 1 ? 'job' : 'jobs'}`;
  removeAll.addEventListener('click', () => {
    if (!window.confirm(`Remove every dead-lettered job of ${queue} for good? They cannot be retried after this.`)) return;
    act('Remove all', async () => {
      let removed = 0;
      for (let calls = 0; calls < 100; calls++) {
        const r = await del(`/v1/queues/${encodeURIComponent(queue)}/dead`);
        removed += r.removed;
        if (r.removed < REVIVE_MAX) break;
      }
      return `Removed ${plural(removed)}.`;
    });
  });
  function removeOne(id) {
    if (!window.confirm(`Remove job #${id} for good? It cannot be retried after this.`)) return;
    act(`Remove #${id}`, () => del(`/v1/queues/${encodeURIComponent(queue)}/dead/${encodeURIComponent(id)}`)
      .then(() => `Job #${id} was removed.`));
  }

  function rowFor() {
    const retry = h('button', { type: 'button' }, 'Retry');
    const remove = h('button', { type: 'button', class: 'danger' }, 'Remove');
    const cells = [h('td'), h('td'), h('td', { class: 'num' }), h('td'), h('td', { class: 'error-text' }), h('td', { class: 'payload-cell' }),
      h('td', { class: 'row-actions' }, retry, ' ', remove)];
    const row = h('tr', {}, cells);
    row.update = (j) => {
      fill(cells[0], jobLink(j.id));
      setText(cells[1], j.type);
      setText(cells[2], `${j.attempt}/${j.maxAttempts || '—'}`);
      setText(cells[3], fmtTime(j.updatedAt));
      setText(cells[4], j.lastError || '—');
      if (cells[5].dataset.for !== j.id) {
        cells[5].dataset.for = j.id;
        fill(cells[5], j.payload !== undefined ? payloadBlock(j.payload, 160, false) : '—');
      }
      retry.onclick = () => act(`Retry #${j.id}`, () => post(`/v1/jobs/${j.id}/retry`).then(() => `Job #${j.id} is pending again.`));
      retry.setAttribute('aria-label', `Retry job ${j.id}`);
      retry.hidden = !can('retry');
      remove.onclick = () => removeOne(j.id);
      remove.setAttribute('aria-label', `Remove job ${j.id}`);
      remove.hidden = !can('dead_remove');
    };
    return row;
  }
  function render() {
    syncRows(list.tbody, jobs, (j) => j.id, rowFor, (r, j) => r.update(j));
    list.el.parentElement.hidden = jobs.length === 0;
    // The payload column only when the broker sends payloads.
    list.el.classList.toggle('no-payload', !jobs.some((j) => j.payload !== undefined));
    // No actions column for a token that may neither retry nor remove (a viewer's).
    list.el.classList.toggle('no-actions', !can('retry') && !can('dead_remove'));
    retryAll.hidden = jobs.length === 0 || !can('retry');
    removeAll.hidden = jobs.length === 0 || !can('dead_remove');
  }
  load();
  const reload = throttled(load, 1000);
  return {
    changed(what) {
      if (what.has(`dead:${queue}`) || what.has('all') || what.has('auth')) reload();
    },
  };
}
