// The broker's JSON API (/v1) as the dashboard uses it: requests carry the
// session's token, a 401 asks for one (once; kept in sessionStorage), errors
// come back as ApiError with the broker's code and message, and every
// answer is turned into the one shape the views read (norm* below), so a
// field renamed in the API is changed here only.

const TOKEN_KEY = 'jobmesh.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// With high availability (README "High availability"), a standby broker
// refuses the API with 503 not_leader, naming the leader: {name, http,
// message} while this page's broker is a standby, null once it answers.
// The page says so and links to the leader's dashboard (app.js); it does
// not follow the leader by itself: its token lives in this origin's
// sessionStorage, and the broker serves no cross-origin API.
let standbyState = null;
const standbyListeners = new Set();

export function standby() {
  return standbyState;
}

export function onStandby(fn) {
  standbyListeners.add(fn);
}

function setStandby(next) {
  if (JSON.stringify(next) === JSON.stringify(standbyState)) return;
  standbyState = next;
  for (const fn of standbyListeners) fn(next);
}

const auth = {
  // What GET /v1/whoami said of the session's token: {auth, name, role,
  // queues, can: {submit, cancel, retry, read_jobs, read_workers,
  // queue_settings, schedule_add, schedule_remove}}, or null until it
  // answered.
  me: null,
  asking: null, // the pending token prompt, shared by concurrent 401s
  listeners: new Set(),
};

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

export function identity() {
  return auth.me;
}

export function role() {
  return auth.me ? auth.me.role : null;
}

// May the session's token do what (a key of whoami's "can": 'retry',
// 'cancel', 'read_workers', ...)? Unknown (whoami not answered yet) counts
// as no for changes, so a viewer never sees a button flash; the broker
// refuses what a token may not do either way (403).
export function can(what) {
  return Boolean(auth.me && auth.me.can && auth.me.can[what]);
}

export function onAuthChange(fn) {
  auth.listeners.add(fn);
}

// Reads GET /v1/whoami (asking for a token first when the broker wants
// one) and tells the listeners when the identity changed.
export async function loadIdentity() {
  const me = await api('GET', '/v1/whoami');
  const changed = JSON.stringify(me) !== JSON.stringify(auth.me);
  auth.me = me;
  if (changed) for (const fn of auth.listeners) fn();
  return me;
}

// askToken is set by the app: it shows the token dialog and resolves with
// the token typed, or null when the user dismissed it.
let askToken = async () => null;
export function setTokenPrompt(fn) {
  askToken = fn;
}

async function ensureToken(message) {
  if (!auth.asking) {
    auth.asking = askToken(message).finally(() => { auth.asking = null; });
  }
  const t = await auth.asking;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  return t;
}

// One request; resolves with the parsed JSON body (null for an empty one).
// A 401 asks for a token and tries once more with it.
export async function api(method, path, body, { retried = false } = {}) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `broker unreachable: ${e.message}`);
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (res.status === 401 && !retried) {
    sessionStorage.removeItem(TOKEN_KEY);
    const msg = json?.error?.message || 'this broker needs a token';
    if (await ensureToken(msg)) return api(method, path, body, { retried: true });
  }
  if (res.status === 503 && json?.error?.code === 'not_leader') {
    const e = json.error;
    setStandby({ name: e.leader || '', http: e.leader_http || '', message: e.message || '' });
  } else if (res.ok && standbyState) {
    setStandby(null);
  }
  if (!res.ok) {
    const err = json?.error;
    throw new ApiError(res.status, err?.code || `http_${res.status}`,
      err?.message || `${method} ${path}: HTTP ${res.status}`);
  }
  return json;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});
export const patch = (path, body) => api('PATCH', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

// The event stream's URL. EventSource cannot send an Authorization header,
// so a token goes in the query (the broker accepts it on /v1/events only).
export function eventsUrl() {
  const t = token();
  return t ? `/v1/events?access_token=${encodeURIComponent(t)}` : '/v1/events';
}

// ---- shapes -------------------------------------------------------------

const STATES = ['pending', 'delayed', 'active', 'completed', 'failed', 'cancelled'];
export { STATES };

// A time as milliseconds since the epoch, from an ISO string or a number of
// milliseconds or microseconds (the API's *_us fields).
export function toMs(v) {
  if (v === null || v === undefined || v === '' || v === 0 || v === '0') return null;
  if (typeof v === 'number') return v > 1e14 ? v / 1000 : v;
  if (/^\d+$/.test(v)) return toMs(Number(v));
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

function pick(o, ...names) {
  for (const n of names) if (o && o[n] !== undefined && o[n] !== null) return o[n];
  return undefined;
}

function num(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

export function normQueue(q) {
  const c = q.counts || q;
  const counts = {};
  for (const s of STATES) counts[s] = num(c[s]);
  const ageMs = pick(q, 'oldest_pending_age_ms');
  const ageS = pick(q, 'oldest_pending_age_seconds', 'oldest_pending_age_s');
  const oldestAt = toMs(pick(q, 'oldest_pending_at', 'oldest_pending_us'));
  return {
    name: q.name ?? q.queue,
    counts,
    // Kept as a moment, so the age keeps growing on screen between reads.
    oldestPendingAt: ageMs !== undefined ? Date.now() - num(ageMs)
      : ageS !== undefined ? (num(ageS) > 0 ? Date.now() - 1000 * num(ageS) : null)
        : oldestAt,
    activeLimit: num(pick(q, 'active_limit', 'max_active')) || null,
    // Runtime settings (GET /v1/queues carries them all); own names those
    // set on the queue itself, the others follow the broker's flags.
    paused: Boolean(q.paused),
    rate: q.rate && num(q.rate.jobs) > 0 ? { jobs: num(q.rate.jobs), periodMs: num(q.rate.period_ms) } : null,
    maxAttempts: num(q.max_attempts) || null,
    keepFinished: q.keep_finished === undefined ? null : num(q.keep_finished),
    keepAgeMs: q.keep_finished_age_ms === undefined ? null : num(q.keep_finished_age_ms),
    // Retention per finished state: count null = no count limit, ageMs 0 =
    // no age limit; undefined (an older broker): unknown.
    keep: Object.fromEntries(['completed', 'failed', 'cancelled'].map((st) => {
      const count = q[`keep_${st}`];
      const age = q[`keep_${st}_age_ms`];
      return [st, count === undefined && age === undefined ? null
        : { count: count === null ? null : num(count), ageMs: num(age) }];
    })),
    groupLimit: q.group_limit === undefined ? null : num(q.group_limit),
    keyWindowMs: q.key_window_ms === undefined ? null : num(q.key_window_ms),
    own: new Set(q.own_settings || []),
    // Pending jobs whose type no connected worker has a handler for.
    unroutable: { jobs: num(q.unroutable?.jobs), types: q.unroutable?.types || [] },
  };
}

export function normSchedule(s) {
  const expr = s.schedule ?? s.expr ?? '';
  return {
    name: s.name,
    expr,
    every: expr.startsWith('@every ') ? expr.slice(7) : null,
    tz: s.tz || 'UTC',
    queue: s.queue ?? '',
    type: s.type ?? '',
    payload: s.payload ?? '',
    nextRun: toMs(pick(s, 'next_run_us', 'next_run')),
    lastRun: toMs(pick(s, 'last_run_us', 'last_run')),
  };
}

export function normWorker(w) {
  const jobs = pick(w, 'job_ids', 'jobs') || [];
  return {
    id: String(pick(w, 'id', 'worker_id')),
    host: w.host ?? '',
    pid: w.pid ?? '',
    queues: w.queues || [],
    concurrency: num(w.concurrency),
    busy: num(pick(w, 'active_jobs', 'busy')) || jobs.length,
    jobIds: jobs.map((j) => String(typeof j === 'object' ? (j.id ?? j.job_id) : j)),
    lastSeen: toMs(pick(w, 'last_seen', 'last_seen_at', 'last_seen_us', 'last_heartbeat')),
    draining: Boolean(w.draining),
  };
}

export function normBatch(b) {
  const errors = (b.errors || []).map((e) => ({
    jobId: String(pick(e, 'job_id', 'id') ?? ''),
    message: typeof e === 'string' ? e : (pick(e, 'error', 'message') ?? ''),
  }));
  return {
    id: String(pick(b, 'id', 'batch_id')),
    state: b.state || 'running',
    total: num(b.total),
    completed: num(pick(b, 'completed', 'done')),
    failed: num(b.failed),
    cancelled: num(b.cancelled),
    active: num(b.active),
    currentOperation: pick(b, 'current_operation', 'operation', 'message') ?? '',
    errors,
    createdAt: toMs(pick(b, 'created_at', 'created_us', 'created')),
    finishedAt: toMs(pick(b, 'finished_at', 'finished_us', 'finished')),
  };
}

export function normJob(j) {
  const p = j.progress || {};
  const attempt = pick(j, 'attempt', 'attempts');
  return {
    id: String(pick(j, 'id', 'job_id')),
    queue: j.queue ?? '',
    type: j.type ?? '',
    state: j.state ?? 'unknown',
    attempt: num(attempt),
    maxAttempts: num(pick(j, 'max_attempts')),
    priority: num(j.priority),
    createdAt: toMs(pick(j, 'created_at', 'created_us', 'created')),
    updatedAt: toMs(pick(j, 'updated_at', 'updated_us', 'updated')),
    runAt: toMs(pick(j, 'run_at', 'run_at_us')),
    progress: {
      done: num(pick(p, 'done') ?? j.progress_done),
      total: num(pick(p, 'total') ?? j.progress_total),
      message: pick(p, 'message') ?? j.progress_message ?? '',
    },
    lastError: pick(j, 'last_error', 'error') ?? '',
    batch: pick(j, 'batch', 'batch_id') ? String(pick(j, 'batch', 'batch_id')) : '',
    payload: pick(j, 'payload') ?? (j.data !== undefined ? JSON.stringify(j.data) : undefined),
    payloadBase64: pick(j, 'payload_base64'),
    result: pick(j, 'result'),
  };
}

// Lists come either bare or wrapped ({"queues": [...]}).
export function listOf(json, key) {
  if (Array.isArray(json)) return json;
  return (json && (json[key] || json.items)) || [];
}
