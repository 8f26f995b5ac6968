// Workers (#/workers): every worker the broker knows with its host, pid,
// queues, concurrency, busy slots and their jobs, last heartbeat age and
// whether it is draining. Joins, losses and job starts and ends re-read
// the list; heartbeats are not events, so while this view is open the
// list is also re-read every HEARTBEAT_REREAD_MS to keep ages honest.

import { store, reread } from './live.js';
import { h, fill, setText, syncRows, table, fmtAge, jobLink, link } from './ui.js';

const HEARTBEAT_REREAD_MS = 5000;

export function workersView(root) {
  const status = h('p', { class: 'muted', role: 'status' });
  const list = table(['worker', 'host', 'pid', 'queues', 'busy / slots', 'running jobs', 'last heartbeat', 'state'], 'workers');
  fill(root, h('h1', {}, 'Workers'), status, list.el);
  reread('workers', true);
  const timer = setInterval(() => reread('workers'), HEARTBEAT_REREAD_MS);

  function rowFor() {
    const cells = Array.from({ length: 8 }, () => h('td'));
    cells[2].className = cells[4].className = 'num';
    const row = h('tr', {}, cells);
    row.update = (w) => {
      setText(cells[0], w.id);
      setText(cells[1], w.host);
      setText(cells[2], w.pid);
      fill(cells[3], w.queues.map((q, i) => [i ? ', ' : '', link(`#/queues/${encodeURIComponent(q)}`, q)]));
      // A slot fetches its next job while the last one's outcome is still
      // being acknowledged, so a worker can hold more leases than slots.
      const settling = Math.max(0, w.busy - w.concurrency);
      setText(cells[4], `${Math.min(w.busy, w.concurrency)} / ${w.concurrency}`);
      fill(cells[5], w.jobIds.length ? w.jobIds.map((id, i) => [i ? ' ' : '', jobLink(id)]) : h('span', { class: 'muted' }, 'idle'),
        settling ? h('span', { class: 'muted', title: 'finished, outcome not yet acknowledged by the broker' }, ` (${settling} settling)`) : null);
      setText(cells[6], w.lastSeen ? `${fmtAge(Date.now() - w.lastSeen)} ago` : '—');
      fill(cells[7], w.draining ? h('span', { class: 'badge state-delayed' }, 'draining') : h('span', { class: 'badge state-completed' }, 'online'));
    };
    return row;
  }
  function update() {
    const workers = [...store.workers.values()].sort((a, b) => a.id.localeCompare(b.id));
    syncRows(list.tbody, workers, (w) => w.id, rowFor, (r, w) => r.update(w));
    list.el.hidden = workers.length === 0;
    if (store.errors.workers && !store.loaded.workers) setText(status, `Cannot read workers: ${store.errors.workers.message}`);
    else if (!store.loaded.workers) setText(status, 'Loading…');
    else setText(status, workers.length ? `${workers.length} ${workers.length === 1 ? 'worker' : 'workers'} online.`
      : 'No worker is connected. Start one: jobmesh-worker --queue NAME --handler TYPE=COMMAND');
  }
  update();
  return {
    changed(what) {
      if (what.has('workers') || what.has('all') || what.has('tick')) update();
    },
    leave() { clearInterval(timer); },
  };
}
