// The dashboard's entry point: routes the hash (#/queues/emails,
// #/jobs/42, #/batches/7, #/dead/emails, #/workers, #/settings,
// #/schedules) to a view, opens the
// one event stream, shows the connection banner and asks for a token when
// the broker wants one.
//
// A view is a function (root, params) -> {changed(set), leave()}: it draws
// once and then redraws what the set of changes (live.js markDirty) names.

import { setTokenPrompt, onAuthChange, identity, can, loadIdentity, token, setToken, standby, onStandby } from './api.js';
import { store, onChange, connect, rereadAll, markDirty, reconnect } from './live.js';
import { overviewView } from './view_overview.js';
import { batchesView } from './view_batches.js';
import { jobsView } from './view_jobs.js';
import { deadView } from './view_dead.js';
import { workersView } from './view_workers.js';
import { settingsView } from './view_settings.js';
import { schedulesView } from './view_schedules.js';
import { setText } from './ui.js';

const routes = [
  [/^\/?$/, 'overview', () => ({}), overviewView],
  [/^\/queues\/([^/]+)$/, 'overview', (m) => ({ queue: m[1] }), overviewView],
  [/^\/batches$/, 'batches', () => ({}), batchesView],
  [/^\/batches\/(\d+)$/, 'batches', (m) => ({ id: m[1] }), batchesView],
  [/^\/jobs$/, 'jobs', () => ({}), jobsView],
  [/^\/jobs\/(\d+)$/, 'jobs', (m) => ({ id: m[1] }), jobsView],
  [/^\/dead$/, 'dead', () => ({}), deadView],
  [/^\/dead\/([^/]+)$/, 'dead', (m) => ({ queue: m[1] }), deadView],
  [/^\/workers$/, 'workers', () => ({}), workersView],
  [/^\/settings$/, 'settings', () => ({}), settingsView],
  [/^\/schedules$/, 'schedules', () => ({}), schedulesView],
];

const main = document.getElementById('main');
let current = null;

// A token whose role reads nothing here (a worker's) gets a page that says
// so instead of views full of refusals.
function refused(me) {
  main.replaceChildren();
  const h1 = document.createElement('h1');
  h1.textContent = 'This token cannot read the dashboard';
  const p = document.createElement('p');
  p.textContent = `Token "${me.name}" has role ${me.role}, which may not read jobs or queues. ` +
    'Use a viewer, producer or admin token (Forget token, above, asks for another).';
  main.append(h1, p);
}

function route() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  if (current && current.leave) current.leave();
  current = null;
  const me = identity();
  if (me && !can('read_jobs')) {
    refused(me);
    return;
  }
  for (const [re, nav, params, view] of routes) {
    const m = path.match(re);
    if (!m) continue;
    const p = params(m.map((s) => (s === undefined ? s : decodeURIComponent(s))));
    p.query = new URLSearchParams(qs || '');
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    current = view(main, p) || null;
    document.title = `${main.querySelector('h1')?.textContent || 'jobmesh'} — jobmesh`;
    return;
  }
  main.replaceChildren();
  const h1 = document.createElement('h1');
  h1.textContent = 'Not found';
  const p = document.createElement('p');
  p.textContent = `Nothing lives at #${raw}. `;
  const a = document.createElement('a');
  a.href = '#/';
  a.textContent = 'Go to the overview.';
  p.append(a);
  main.append(h1, p);
}

// Focus moves to the new view's heading on navigation, as a page load would.
window.addEventListener('hashchange', () => {
  route();
  const h1 = main.querySelector('h1');
  if (h1) {
    h1.tabIndex = -1;
    h1.focus({ preventScroll: false });
  }
});

const banner = document.getElementById('banner');
const openedAt = Date.now();
const conn = document.getElementById('conn');

// A standby (high availability) serves this page but no jobs: say so, name
// the leader and link to its dashboard, instead of "reconnecting". The
// page keeps asking its own broker and comes alive when it takes over.
const standbyBanner = document.getElementById('standby');
function showStandby() {
  const s = store.connected ? null : standby();
  standbyBanner.hidden = !s;
  if (s) banner.hidden = true;
  if (!s) return;
  setText(document.getElementById('standby-text'), s.name
    ? `This broker is a standby: it runs no jobs and shows none. The leader is ${s.name}.`
    : 'This broker is a standby, and no broker leads right now (a failover is under way): this page retries.');
  const link = document.getElementById('leader-link');
  link.hidden = !s.http;
  if (s.http) link.href = `${s.http.replace(/\/+$/, '')}/${location.hash}`;
}
onStandby(() => { showStandby(); markDirty('connection'); });

onChange((what) => {
  if (what.has('connection') || what.has('tick')) {
    // A page that is still opening its stream shows no alarm for a second.
    const down = !store.connected && !standby() && (store.everConnected || Date.now() - openedAt > 1500);
    banner.hidden = !down;
    showStandby();
    setText(conn, store.connected ? 'live' : 'offline');
    conn.className = store.connected ? 'conn on' : 'conn off';
    setText(banner.querySelector('.banner-text'), store.everConnected
      ? 'Disconnected from the broker — reconnecting… Numbers on this page may be out of date.'
      : 'Connecting to the broker…');
  }
  if (current && current.changed) current.changed(what);
});

// Who the page acts as, and what it offers: the Workers view only to a
// role that may read workers; Retry and Cancel only to one that may (the
// views ask can()). The broker enforces the same either way.
onAuthChange(() => {
  const me = identity();
  const who = document.getElementById('role');
  setText(who, me && me.auth ? `${me.name} (${me.role}${me.role === 'admin' ? '' : `: ${me.queues.join(', ')}`})` : '');
  who.dataset.role = me ? me.role : '';
  document.querySelector('#nav a[data-nav="workers"]').hidden = Boolean(me) && !can('read_workers');
  document.getElementById('forget-token').hidden = !token();
  markDirty('auth');
  route();
  rereadAll();
});

// The token prompt: a real <dialog>, focus in its field, Escape cancels.
const dialog = document.getElementById('token-dialog');
setTokenPrompt((message) => new Promise((resolve) => {
  setText(document.getElementById('token-why'), message);
  const input = document.getElementById('token-input');
  input.value = '';
  dialog.returnValue = '';
  dialog.onclose = () => {
    const t = dialog.returnValue === 'ok' ? input.value.trim() : '';
    if (t) setToken(t);
    resolve(t || null);
    if (t) {
      reconnect();
      loadIdentity().catch(() => {});
    }
  };
  dialog.showModal();
  input.focus();
}));
document.getElementById('forget-token').addEventListener('click', () => {
  sessionStorage.removeItem('jobmesh.token');
  location.reload();
});
document.getElementById('forget-token').hidden = !token();

// What the page holds, for the browser tests and the curious (console).
window.jobmeshStats = () => ({
  events: store.eventsSeen,
  jobsCached: store.jobs.size,
  batches: store.batches.size,
  queues: store.queues.size,
  workers: store.workers.size,
  domNodes: document.getElementsByTagName('*').length,
});

// Ages and throughput buckets move with the clock, not with events.
setInterval(() => markDirty('tick'), 1000);

// Who we are first (this asks for a token when the broker wants one), so
// the views draw only what the token may use; a broker that cannot be
// reached yet is asked again once the stream connects.
onChange((what) => {
  if (what.has('connection') && store.connected && !identity()) loadIdentity().catch(() => {});
});
loadIdentity().catch(() => {}).finally(() => {
  route();
  rereadAll();
  connect();
  markDirty('connection');
});
