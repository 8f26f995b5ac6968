// Overview (#/ and #/queues/NAME): every queue with its counts by state,
// oldest pending age, active and rate limits (and a paused mark),
// throughput chart and the workers that serve it; a queue with work and no
// worker is marked.

import { STATES } from './api.js';
import { store, throughput, BUCKETS, workersVisible } from './live.js';
import { h, fill, setText, syncRows, table, section, sparkline, fmtCount, fmtAge, fmtRate, fmtRateLimit, link } from './ui.js';

function workersFor(queue) {
  let online = 0;
  let slots = 0;
  let busy = 0;
  for (const w of store.workers.values()) {
    if (!w.queues.includes(queue)) continue;
    online += 1;
    slots += w.concurrency;
    busy += Math.min(w.busy, w.concurrency);
  }
  return { online, slots, busy };
}

function queueCard(q) {
  const counts = h('dl', { class: 'counts' },
    STATES.map((s) => h('div', { class: `count state-${s}` },
      h('dt', {}, s), h('dd', { dataset: { state: s } }, '0'))));
  const chart = h('div', { class: 'chart' });
  const meta = h('dl', { class: 'meta' });
  const alert = h('p', { class: 'alert', role: 'status' });
  const paused = h('span', { class: 'badge state-delayed flow-badge', hidden: true }, 'paused');
  const el = h('article', { class: 'queue-card', dataset: { queue: q.name } },
    h('header', {},
      h('h3', {}, link(`#/queues/${encodeURIComponent(q.name)}`, q.name), paused),
      h('nav', { class: 'card-links', 'aria-label': `${q.name} links` },
        link(`#/jobs?queue=${encodeURIComponent(q.name)}`, 'jobs'),
        link(`#/dead/${encodeURIComponent(q.name)}`, 'dead letters'),
        link('#/settings', 'settings'))),
    counts, alert, meta, chart);
  el.update = (item) => {
    for (const s of STATES) setText(counts.querySelector(`[data-state="${s}"]`), fmtCount(item.counts[s]));
    paused.hidden = !item.paused;
    paused.title = item.paused ? 'paused: workers get none of its jobs until it is resumed' : '';
    const w = workersFor(item.name);
    const tp = throughput(item.name);
    const waiting = item.counts.pending + item.counts.delayed + item.counts.active;
    // Workers unknown to this token (a producer's) are not absent.
    const noWorkers = w.online === 0 && workersVisible();
    el.classList.toggle('no-workers', noWorkers);
    const unroutable = item.unroutable || { jobs: 0, types: [] };
    alert.hidden = !noWorkers && unroutable.jobs === 0;
    setText(alert, noWorkers ? (waiting > 0
      ? `No workers for this queue: ${fmtCount(waiting)} jobs are waiting and nothing will run them.`
      : 'No workers for this queue.')
      : `${fmtCount(unroutable.jobs)} pending jobs wait for a worker with a handler for their type ` +
        `(${unroutable.types.join(', ')}): no connected worker of this queue has one.`);
    const age = item.counts.pending > 0 && item.oldestPendingAt ? Date.now() - item.oldestPendingAt : null;
    fill(meta,
      h('div', {}, h('dt', {}, 'oldest pending'), h('dd', { class: 'oldest' }, fmtAge(age))),
      h('div', {}, h('dt', {}, 'active limit'), h('dd', {}, item.activeLimit ? fmtCount(item.activeLimit) : 'none')),
      h('div', {}, h('dt', {}, 'rate limit'), h('dd', { class: 'rate-limit' }, fmtRateLimit(item.rate))),
      h('div', {}, h('dt', {}, 'workers online'),
        h('dd', { class: 'workers-online' }, !workersVisible() ? 'not shown to this token'
          : noWorkers ? '0' : `${w.online} (${w.busy}/${w.slots} slots busy)`)),
      h('div', {}, h('dt', {}, 'completed/s, last minute'), h('dd', {}, fmtRate(tp.perSec))));
    const minutes = Math.round((BUCKETS * tp.bucketMs) / 60000);
    fill(chart, sparkline(tp.completed, {
      width: 240, height: 40,
      label: `${item.name}: jobs completed per ${tp.bucketMs / 1000} s over the last ${minutes} minutes ` +
        `(${tp.completed.reduce((a, b) => a + b, 0)} in all)`,
    }), h('span', { class: 'chart-caption' }, `completed per ${tp.bucketMs / 1000} s, last ${minutes} min`,
      h('br'), `peak ${fmtCount(Math.max(...tp.completed))}, failed ${fmtCount(tp.failed.reduce((a, b) => a + b, 0))}`));
  };
  return el;
}

export function overviewView(root, params) {
  const only = params.queue || null;
  const grid = h('div', { class: 'queue-grid' });
  const status = h('p', { class: 'muted', role: 'status' });
  const totals = table(['', ...STATES], 'totals');
  fill(root,
    h('h1', {}, only ? `Queue ${only}` : 'Overview'),
    only ? h('p', {}, link('#/', '← all queues')) : null,
    status,
    only ? null : section('All queues', totals.el),
    grid);
  const totalRow = h('tr', {}, h('th', { scope: 'row' }, 'jobs in every queue'), STATES.map((s) => h('td', { dataset: { state: s } })));
  totals.tbody.append(totalRow);

  function update() {
    let queues = [...store.queues.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (only) queues = queues.filter((q) => q.name === only);
    if (store.errors.queues && !store.loaded.queues) setText(status, `Cannot read queues: ${store.errors.queues.message}`);
    else if (!store.loaded.queues) setText(status, 'Loading…');
    else if (queues.length === 0) setText(status, only ? `No queue named ${only}.` : 'No queues yet: submit a job and it shows here.');
    else {
      setText(status, `${queues.length} ${queues.length === 1 ? 'queue' : 'queues'}` + (workersVisible()
        ? `, ${store.workers.size} ${store.workers.size === 1 ? 'worker' : 'workers'} online` : ''));
    }
    for (const s of STATES) {
      setText(totalRow.querySelector(`[data-state="${s}"]`),
        fmtCount([...store.queues.values()].reduce((n, q) => n + q.counts[s], 0)));
    }
    syncRows(grid, queues, (q) => q.name, queueCard, (el, q) => el.update(q));
  }
  update();
  return {
    changed(what) {
      if (what.has('queues') || what.has('workers') || what.has('all') || what.has('tick') || what.has('jobs')) update();
    },
  };
}
