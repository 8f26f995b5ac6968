// What the page knows, kept current by one EventSource on /v1/events.
//
// Memory stays bounded however long the page is open over a busy broker:
// events are folded into aggregates (counts per queue, batch progress,
// throughput buckets, a capped cache of the jobs the page looked at, each
// with a capped timeline); nothing appends per event. Views are told what
// changed at most every RENDER_MS, never once per event.
//
// Counts per state cannot be kept by adding up events (an event names a
// job's new state, not the one it left), so a job event schedules a re-read
// of /v1/queues, trailing and at most once per REREAD_MS: the last read after
// a burst always happens, so the numbers end right. Batch events carry their
// whole counts and are applied as they come.

import { get, listOf, normBatch, normQueue, normWorker, normJob, eventsUrl, toMs, identity, can, standby } from './api.js';

const RENDER_MS = 250;
const REREAD_MS = 1000;
const BUCKET_MS = 10000;
export const BUCKETS = 30; // 5 minutes of throughput
const JOBS_CACHED = 300;
export const TIMELINE_MAX = 50;
const RECENT_BATCHES = 50;
const RATE_WINDOW_MS = 30000;

export const store = {
  queues: new Map(), // name -> normQueue
  workers: new Map(), // id -> normWorker
  batches: new Map(), // id -> normBatch + {samples}
  jobs: new Map(), // id -> {job (normJob or partial), timeline: [{at, state, ...}]}, LRU
  throughput: new Map(), // queue -> {completed: ring, failed: ring}
  connected: false,
  everConnected: false,
  loaded: { queues: false, workers: false, batches: false },
  errors: { queues: null, workers: null, batches: null },
  eventsSeen: 0,
};

// ---- change notification ------------------------------------------------

const listeners = new Set();
const dirty = new Set();
let flushTimer = null;

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function markDirty(what) {
  dirty.add(what);
  if (flushTimer === null) flushTimer = setTimeout(flush, RENDER_MS);
}

function flush() {
  flushTimer = null;
  const changed = new Set(dirty);
  dirty.clear();
  for (const fn of listeners) {
    try { fn(changed); } catch (e) { console.error(e); }
  }
}

// ---- re-reads -----------------------------------------------------------

const loaders = {
  async queues() {
    const list = listOf(await get('/v1/queues'), 'queues').map(normQueue);
    store.queues = new Map(list.map((q) => [q.name, q]));
  },
  async workers() {
    // A producer's token may not read workers (403): do not ask.
    if (!workersVisible()) {
      store.workers = new Map();
      return;
    }
    const list = listOf(await get('/v1/workers'), 'workers').map(normWorker);
    store.workers = new Map(list.map((w) => [w.id, w]));
  },
  async batches() {
    const list = listOf(await get('/v1/batches'), 'batches').map(normBatch);
    const running = new Set(list.map((b) => b.id));
    for (const b of list) putBatch(b);
    // A batch we showed as running that is no longer listed finished
    // while we were not told: read it once to show its final counts.
    for (const b of store.batches.values()) {
      if (b.state === 'running' && !running.has(b.id)) {
        try { putBatch(normBatch(await get(`/v1/batches/${b.id}`))); } catch { /* dropped */ }
      }
    }
  },
};

// False when the token's role may not read the worker list (a producer).
export function workersVisible() {
  return !identity() || can('read_workers');
}

const rereads = new Map(); // kind -> {timer, last, running, again}

// Schedules a re-read of kind ('queues', 'workers', 'batches'): trailing,
// at most once per REREAD_MS, never two at once.
export function reread(kind, now = false) {
  let r = rereads.get(kind);
  if (!r) rereads.set(kind, (r = { timer: null, last: 0, running: false, again: false }));
  if (r.running) { r.again = true; return; }
  if (r.timer !== null) return;
  const wait = now ? 0 : Math.max(0, r.last + REREAD_MS - Date.now());
  r.timer = setTimeout(async () => {
    r.timer = null;
    r.running = true;
    r.last = Date.now();
    try {
      await loaders[kind]();
      store.loaded[kind] = true;
      store.errors[kind] = null;
    } catch (e) {
      store.errors[kind] = e;
    }
    r.running = false;
    markDirty(kind);
    if (r.again) { r.again = false; reread(kind); }
  }, wait);
}

export function rereadAll() {
  for (const k of Object.keys(loaders)) reread(k, true);
  markDirty('all');
}

// ---- batches, jobs, throughput ------------------------------------------

function putBatch(b) {
  const old = store.batches.get(b.id);
  const merged = old ? Object.assign(old, b) : { ...b, samples: [] };
  sample(merged);
  store.batches.set(b.id, merged);
  trimRecent();
  markDirty('batches');
  markDirty(`batch:${b.id}`);
  return merged;
}

function sample(b) {
  const now = Date.now();
  const finished = b.completed + b.failed + b.cancelled;
  const s = b.samples;
  if (s.length === 0 || s[s.length - 1][1] !== finished) s.push([now, finished]);
  while (s.length > 2 && now - s[0][0] > RATE_WINDOW_MS) s.shift();
  if (s.length > 64) s.splice(0, s.length - 64);
}

// Finished jobs per second over the last RATE_WINDOW_MS, and the seconds
// left at that rate (null when unknown).
export function batchRate(b) {
  const s = b.samples || [];
  let rate = 0;
  if (s.length >= 2) {
    const [t0, f0] = s[0];
    const [t1, f1] = s[s.length - 1];
    const end = b.state === 'running' ? Math.max(t1, Date.now() - 1000) : t1;
    if (end > t0) rate = (1000 * (f1 - f0)) / (end - t0);
  } else if (b.createdAt && b.finishedAt && b.state !== 'running') {
    // Finished before the page saw it: its mean rate from start to end.
    const done = b.completed + b.failed + b.cancelled;
    if (b.finishedAt > b.createdAt) rate = (1000 * done) / (b.finishedAt - b.createdAt);
  } else if (b.createdAt && b.state === 'running') {
    const done = b.completed + b.failed + b.cancelled;
    const el = Date.now() - b.createdAt;
    if (el > 0 && done > 0) rate = (1000 * done) / el;
  }
  const left = b.total - b.completed - b.failed - b.cancelled;
  const eta = b.state === 'running' && rate > 0 ? left / rate : null;
  return { rate, eta };
}

function trimRecent() {
  const finished = [...store.batches.values()].filter((b) => b.state !== 'running');
  if (finished.length <= RECENT_BATCHES) return;
  finished.sort((a, b) => Number(a.id) - Number(b.id));
  for (const b of finished.slice(0, finished.length - RECENT_BATCHES)) store.batches.delete(b.id);
}

// The cache entry of a job (created empty), most recently used last.
export function jobEntry(id) {
  id = String(id);
  let e = store.jobs.get(id);
  if (e) store.jobs.delete(id);
  else e = { job: null, timeline: [] };
  store.jobs.set(id, e);
  if (store.jobs.size > JOBS_CACHED) store.jobs.delete(store.jobs.keys().next().value);
  return e;
}

let timelineSeq = 0;

// Reads a job into the cache. The caller redraws: this marks nothing
// dirty, so a view that reloads on change cannot loop on its own reads.
export async function loadJob(id) {
  const e = jobEntry(id);
  e.job = normJob(await get(`/v1/jobs/${encodeURIComponent(id)}`));
  if (e.timeline.length === 0) {
    if (e.job.createdAt) e.timeline.push({ seq: ++timelineSeq, at: e.job.createdAt, state: 'submitted', note: '' });
  }
  return e;
}

function ring() {
  return { base: 0, counts: new Array(BUCKETS).fill(0) };
}

function bump(r, at) {
  const idx = Math.floor(at / BUCKET_MS);
  advance(r, idx);
  r.counts[idx % BUCKETS] += 1;
}

function advance(r, idx) {
  if (idx <= r.base) return;
  const steps = Math.min(BUCKETS, idx - r.base);
  for (let i = 1; i <= steps; i++) r.counts[(r.base + i) % BUCKETS] = 0;
  r.base = idx;
}

// The last BUCKETS buckets of a queue's completed jobs, oldest first, and
// the per-second rate over the last full minute.
export function throughput(queue) {
  const t = store.throughput.get(queue);
  const idx = Math.floor(Date.now() / BUCKET_MS);
  const series = (r) => {
    if (!r) return new Array(BUCKETS).fill(0);
    advance(r, idx);
    const out = [];
    for (let i = BUCKETS - 1; i >= 0; i--) out.push(r.counts[(idx - i) % BUCKETS]);
    return out;
  };
  const completed = series(t && t.completed);
  const failed = series(t && t.failed);
  const lastMinute = completed.slice(-7, -1).reduce((a, b) => a + b, 0) / 60;
  return { completed, failed, perSec: lastMinute, bucketMs: BUCKET_MS };
}

// ---- the event stream ---------------------------------------------------

// SSE event names the broker may use; unnamed events arrive as 'message'.
const EVENT_NAMES = ['job', 'job_state', 'job.state', 'state', 'job_progress', 'job.progress',
  'progress', 'batch', 'worker', 'worker_joined', 'worker.joined', 'worker_lost', 'worker.lost',
  'snapshot', 'reset'];

function kindOf(name, d) {
  const k = String(d.kind ?? d.event ?? d.type_ ?? name).toLowerCase().replace('.', '_');
  if (k.includes('snapshot') || k === 'reset') return 'snapshot';
  if (k.includes('progress') && !k.includes('batch')) return 'progress';
  if (k.includes('batch')) return 'batch';
  if (k.includes('worker')) return k.includes('lost') ? 'worker_lost' : 'worker';
  if (k.includes('job') || k.includes('state')) return 'job';
  return d.job_id !== undefined && d.state !== undefined ? 'job' : 'other';
}

export function handleEvent(name, data) {
  let d;
  try { d = data ? JSON.parse(data) : {}; } catch { return; }
  if (d === null || typeof d !== 'object') d = {};
  store.eventsSeen += 1;
  const at = Date.now();
  switch (kindOf(name, d)) {
    case 'snapshot':
      rereadAll();
      break;
    case 'job': onJobState(d, at); break;
    case 'progress': onJobProgress(d); break;
    case 'batch': onBatch(d); break;
    case 'worker':
    case 'worker_lost':
      reread('workers');
      markDirty('workers');
      break;
    default: break;
  }
}

function onJobState(d, now) {
  const at = toMs(d.at_us) || now;
  const note = d.error ?? d.message ?? '';
  const id = String(d.job_id ?? d.id ?? '');
  const state = d.state;
  const queue = d.queue ?? '';
  if (queue && (state === 'completed' || state === 'failed')) {
    let t = store.throughput.get(queue);
    if (!t) store.throughput.set(queue, (t = { completed: ring(), failed: ring() }));
    bump(state === 'completed' ? t.completed : t.failed, now);
  }
  if (id && store.jobs.has(id)) {
    const e = jobEntry(id);
    if (e.job) {
      e.job.state = state;
      if (d.attempt !== undefined) e.job.attempt = Number(d.attempt);
      if (note && state !== 'completed') e.job.lastError = note;
    }
    e.timeline.push({ seq: ++timelineSeq, at, state, attempt: d.attempt, worker: d.worker_id || '', note });
    if (e.timeline.length > TIMELINE_MAX) e.timeline.splice(1, e.timeline.length - TIMELINE_MAX);
    markDirty(`job:${id}`);
  }
  reread('queues');
  // Batch events name no queue, so only an admin's stream carries them;
  // for other tokens a batch moves with its jobs' events (re-read, at
  // most once a second).
  if (d.batch_id && identity() && identity().role !== 'admin') reread('batches');
  if (d.worker_id || state === 'active') reread('workers');
  if (queue) markDirty(`dead:${queue}`);
  markDirty('jobs');
}

function onJobProgress(d) {
  const id = String(d.job_id ?? d.id ?? '');
  if (id && store.jobs.has(id)) {
    const e = jobEntry(id);
    if (e.job) {
      e.job.progress = { done: Number(d.done) || 0, total: Number(d.total) || 0,
        message: d.message ?? '' };
    }
    markDirty(`job:${id}`);
  }
  const bid = d.batch_id ? String(d.batch_id) : '';
  const b = bid && store.batches.get(bid);
  if (b && d.message) {
    b.currentOperation = d.message;
    markDirty(`batch:${bid}`);
    markDirty('batches');
  }
}

function onBatch(d) {
  const id = String(d.batch_id ?? d.id ?? '');
  if (!id) return;
  const old = store.batches.get(id);
  const b = normBatch({
    ...(old ? { created_at: old.createdAt, errors: old.errors.map((e) => ({ job_id: e.jobId, error: e.message })) } : {}),
    ...d,
    id,
    completed: d.completed ?? d.done,
    current_operation: d.current_operation ?? d.message ?? old?.currentOperation,
  });
  if (old && !d.errors) b.errors = old.errors;
  if (old && d.cancelled === undefined) b.cancelled = old.cancelled;
  if (old && d.active === undefined) b.active = old.active;
  if (old && !b.createdAt) b.createdAt = old.createdAt;
  if (b.state !== 'running' && !b.finishedAt) b.finishedAt = Date.now();
  putBatch(b);
  // An event carries counts, not the error list: read the batch when its
  // failures grew, and once when it finished, so errors are shown.
  if ((old && b.failed > old.failed && !d.errors) || (b.state !== 'running' && old?.state === 'running')) {
    get(`/v1/batches/${id}`).then((full) => putBatch(normBatch(full)), () => {});
  }
}

let es = null;
let retryTimer = null;
let retryMs = 1000;
let hadDrop = false;

function setConnected(on) {
  if (store.connected === on) return;
  store.connected = on;
  markDirty('connection');
}

// Opens the stream. EventSource reconnects by itself after a dropped
// connection (sending Last-Event-ID); when it gives up (the broker answered
// with an error status, or is gone for good) we open a new one with backoff.
export function connect() {
  if (es) es.close();
  clearTimeout(retryTimer);
  es = new EventSource(eventsUrl());
  es.onopen = () => {
    retryMs = 1000;
    setConnected(true);
    store.everConnected = true;
    // After a drop the broker resumes from Last-Event-ID or sends a
    // snapshot; a broker that restarted lost our place: read everything.
    if (hadDrop) rereadAll();
    hadDrop = false;
  };
  es.onerror = () => {
    hadDrop = true;
    setConnected(false);
    if (es.readyState === EventSource.CLOSED) {
      retryTimer = setTimeout(() => {
        // The API tells why the stream was refused (a 401 asks for a token).
        get('/v1/queues').catch(() => {}).finally(connect);
      }, retryMs);
      // A standby is asked every 2 s, so the page comes alive soon after
      // this broker takes over.
      retryMs = Math.min(standby() ? 2000 : 10000, retryMs * 2);
    }
  };
  es.onmessage = (e) => handleEvent('message', e.data);
  for (const n of EVENT_NAMES) es.addEventListener(n, (e) => handleEvent(n, e.data));
}

export function reconnect() {
  hadDrop = true;
  connect();
}
