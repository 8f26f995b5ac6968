// The jobmesh HTTP API client: ESM, no dependencies, Node 20+ and browsers
// (it uses only fetch, AbortController, TextDecoder and streams).

import {
  ConnectionError, JobCancelledError, JobFailedError, TimeoutError, errorFor,
} from './errors.js';
import { SseParser, sseEvents } from './sse.js';

const DEFAULT_URL = 'http://127.0.0.1:7480';
// High availability (README "High availability"): a standby answers 503
// not_leader naming the leader's HTTP address (leader_http); while no
// broker leads, every URL refuses, and a call waits FOLLOW_PAUSE_MS between
// rounds until its deadline or FOLLOW_ROUNDS_MAX rounds.
const FOLLOW_PAUSE_MS = 200;
const HTTP_WAIT_MAX_S = 60; // the longest ?wait= the broker takes
const FOLLOW_ROUNDS_MAX = 300;
const URLS_MAX = 16;

const normUrl = (u) => (u.includes('://') ? u : `http://${u}`).replace(/\/+$/, '');

/** The leader a 503 names: its HTTP URL ('' when none), or null when the answer is no refusal. */
async function notLeader(res) {
  if (res.status !== 503) return null;
  let body = null;
  try { body = await res.clone().json(); } catch { return null; }
  const err = body?.error;
  if (!err || err.code !== 'not_leader') return null;
  return typeof err.leader_http === 'string' ? err.leader_http : '';
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  if (signal?.aborted) { reject(signal.reason); return; }
  const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
  const onAbort = () => { clearTimeout(t); reject(signal.reason); };
  signal?.addEventListener('abort', onAbort, { once: true });
});
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const JOB_OPTIONS = ['priority', 'max_attempts', 'delay_ms', 'timeout_ms', 'idempotency_key', 'run_at', 'group'];
const CAMEL = { maxAttempts: 'max_attempts', delayMs: 'delay_ms', timeoutMs: 'timeout_ms',
  idempotencyKey: 'idempotency_key', runAt: 'run_at' };
// A queue's runtime settings (PATCH /v1/queues/{q}/settings; README "Flow
// control" and "Retention per finished state"), in camelCase or as sent.
const SETTINGS = ['paused', 'max_active', 'rate', 'max_attempts', 'keep_finished', 'keep_finished_age_ms',
  'key_window_ms', 'group_limit', 'keep_completed', 'keep_completed_age_ms', 'keep_failed',
  'keep_failed_age_ms', 'keep_cancelled', 'keep_cancelled_age_ms'];
const snake = (k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const seg = (v) => encodeURIComponent(String(v));

/** One job's JSON: a string payload as text, anything else as data. */
function jobBody(type, payload, opts = {}) {
  const body = { type };
  if (opts.data !== undefined) body.data = opts.data;
  else if (typeof payload === 'string') body.payload = payload;
  else if (payload instanceof Uint8Array) body.payload = new TextDecoder().decode(payload);
  else if (payload !== undefined && payload !== null) body.data = payload;
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'data' || k === 'signal' || v === undefined) continue;
    const key = CAMEL[k] ?? k;
    if (!JOB_OPTIONS.includes(key)) {
      throw new TypeError(`unknown job option "${k}": use priority, maxAttempts, delayMs, timeoutMs, idempotencyKey, runAt, group`);
    }
    body[key] = key === 'run_at' && v instanceof Date ? v.toISOString() : v;
  }
  // Every job carries a key: the client's own resends of this body (the
  // next broker URL after a failed fetch) then admit it once, even when the
  // first try reached the broker and its answer was lost.
  if (body.idempotency_key === undefined) body.idempotency_key = `js-${globalThis.crypto.randomUUID()}`;
  return body;
}

/** The body of a settings change: known names only (camelCase taken). */
function settingsBody(changes) {
  const body = {};
  for (const [k, v] of Object.entries(changes)) {
    if (k === 'signal' || v === undefined) continue;
    const key = snake(k);
    if (!SETTINGS.includes(key)) {
      throw new TypeError(`unknown queue setting "${k}": use ${SETTINGS.join(', ')}`);
    }
    body[key] = key === 'rate' && v !== null ? { jobs: v.jobs, period_ms: v.period_ms ?? v.periodMs } : v;
  }
  return body;
}

function specBody(spec, needQueue) {
  const { queue, type, payload, data, ...opts } = spec;
  if (!type) throw new TypeError('each job needs a "type"');
  const body = jobBody(type, payload, { ...opts, data });
  if (needQueue) {
    if (!queue) throw new TypeError('each batch job needs a "queue"');
    body.queue = queue;
  }
  return body;
}

/** An AbortSignal that fires on the caller's signal or after ms. */
function deadlineSignal(signal, ms) {
  const ctl = new AbortController();
  let timedOut = false;
  const onAbort = () => ctl.abort(signal.reason);
  if (signal) {
    if (signal.aborted) ctl.abort(signal.reason);
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  const timer = ms != null && ms !== Infinity
    ? setTimeout(() => { timedOut = true; ctl.abort(new TimeoutError('timed out')); }, ms)
    : null;
  return {
    signal: ctl.signal,
    timedOut: () => timedOut,
    done() {
      if (timer) clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
    },
  };
}

function eventsPath({ job, batch, queue, worker, topics = [], kinds = [] } = {}) {
  const params = new URLSearchParams();
  for (const [prefix, value] of [['job', job], ['batch', batch], ['queue', queue], ['worker', worker]]) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append('topic', `${prefix}/${v}`);
  }
  for (const t of topics) params.append('topic', t);
  for (const k of kinds) params.append('kind', k);
  const q = params.toString();
  return `/v1/events${q ? `?${q}` : ''}`;
}

function items(body, key) {
  return body && typeof body === 'object' && !Array.isArray(body) && key in body ? body[key] : body;
}

function resultText(body) {
  if (body && typeof body === 'object' && 'result' in body) {
    const r = body.result;
    return r === null || typeof r === 'string' ? r : JSON.stringify(r);
  }
  return typeof body === 'string' ? body : null;
}

export class Client {
  /**
   * @param {{url?: string, urls?: string[], token?: string, timeout?: number, fetch?: typeof fetch}} [options]
   */
  constructor(options = {}) {
    let list = options.urls ?? options.url ?? DEFAULT_URL;
    if (typeof list === 'string') list = list.split(',').map((u) => u.trim()).filter(Boolean);
    if (!list.length) throw new TypeError('no broker URL given');
    this.urls = list.map(normUrl);
    this.token = options.token;
    this.timeout = options.timeout ?? 30000;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.preferred = 0;
  }

  #headers(extra) {
    const h = { Accept: 'application/json', ...extra };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  /** The index of url in the list, added when new (null when the list is full). */
  #urlIndex(url) {
    const u = normUrl(url);
    const i = this.urls.indexOf(u);
    if (i >= 0) return i;
    if (this.urls.length >= URLS_MAX) return null;
    this.urls.push(u);
    return this.urls.length - 1;
  }

  /**
   * Tries each URL in order (the last one that answered first). A standby's
   * 503 not_leader sends the request to the leader it names (nothing was
   * done), else to the next URL; a URL that does not connect is passed over.
   * While every broker refuses (a failover under way) it tries again every
   * FOLLOW_PAUSE_MS until the signal fires; then the last refusal is returned.
   */
  async #fetch(path, init, signal) {
    let lastError;
    let refusal = null;
    for (let round = 0; round < FOLLOW_ROUNDS_MAX; round++) {
      if (round > 0) await sleep(FOLLOW_PAUSE_MS, signal);
      const order = this.urls.map((_, i) => (this.preferred + i) % this.urls.length);
      const tried = new Set();
      while (order.length) {
        const index = order.shift();
        if (tried.has(index)) continue;
        tried.add(index);
        let res;
        try {
          res = await this.fetch(this.urls[index] + path, { ...init, signal });
        } catch (e) {
          if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : e;
          lastError = e;
          continue;
        }
        const leader = await notLeader(res);
        if (leader === null) {
          this.preferred = index;
          return res;
        }
        if (refusal) refusal.body?.cancel().catch(() => {});
        refusal = res;
        const next = leader ? this.#urlIndex(leader) : null;
        if (next !== null && !tried.has(next)) order.unshift(next);
      }
      if (!refusal) break; // nobody answered at all
    }
    if (refusal) return refusal;
    throw new ConnectionError(`no jobmesh broker answered at ${this.urls.join(', ')}: ${lastError?.cause?.code ?? lastError?.message}`, { cause: lastError });
  }

  async #request(method, path, body, { signal, timeout } = {}) {
    const d = deadlineSignal(signal, timeout ?? this.timeout);
    try {
      const init = { method, headers: this.#headers(body !== undefined ? { 'Content-Type': 'application/json' } : {}) };
      if (body !== undefined) init.body = JSON.stringify(body);
      const res = await this.#fetch(path, init, d.signal);
      const text = await res.text();
      let parsed = null;
      try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
      if (res.status >= 400) throw errorFor(res.status, parsed);
      return { status: res.status, body: parsed };
    } catch (e) {
      if (d.timedOut()) throw new TimeoutError(`${method} ${path}: no answer within ${timeout ?? this.timeout} ms`);
      throw e;
    } finally {
      d.done();
    }
  }

  /** Enqueues one job; resolves with its id once the broker made it durable. */
  async submit(queue, type, payload, opts = {}) {
    const { signal, ...rest } = opts;
    const { body } = await this.#request('POST', `/v1/queues/${seg(queue)}/jobs`, jobBody(type, payload, rest), { signal });
    return String(body.id);
  }

  /**
   * Submits one job and waits for it in the same request (the broker
   * answers once the job finished; for a short job one journal sync covers
   * its admission and its outcome); resolves with its result text as
   * wait() does and rejects as wait() does (JobFailedError,
   * JobCancelledError, TimeoutError naming the job, which stays queued).
   * timeout in ms (default 60,000); past 60 s it goes on with wait().
   */
  async submitAndWait(queue, type, payload, opts = {}) {
    const { signal, timeout = 60000, ...rest } = opts;
    const deadline = Date.now() + timeout;
    const waitS = Math.max(0, Math.min(Math.floor(timeout / 1000), HTTP_WAIT_MAX_S));
    if (waitS === 0) return this.wait(await this.submit(queue, type, payload, { signal, ...rest }), { timeout, signal });
    const { status, body } = await this.#request('POST', `/v1/queues/${seg(queue)}/jobs?wait=${waitS}`, jobBody(type, payload, rest),
      { signal, timeout: waitS * 1000 + this.timeout });
    const id = String(body.id);
    if (status === 202) return this.wait(id, { timeout: Math.max(1, deadline - Date.now()), signal });
    if (body?.state === 'failed') throw new JobFailedError(id, body.last_error || 'failed', body);
    if (body?.state === 'cancelled') throw new JobCancelledError(id, body);
    return resultText(body);
  }

  /** Enqueues several jobs on one queue in one request; resolves with their ids. */
  async submitMany(queue, jobs, { signal } = {}) {
    const { body } = await this.#request('POST', `/v1/queues/${seg(queue)}/jobs`, jobs.map((j) => specBody(j, false)), { signal });
    return body.ids.map(String);
  }

  /** Submits jobs (each with queue and type) as one batch: {id, jobIds}. */
  async submitBatch(jobs, { signal } = {}) {
    const { body } = await this.#request('POST', '/v1/batches', { jobs: jobs.map((j) => specBody(j, true)) }, { signal });
    return { id: String(body.id), jobIds: (body.job_ids ?? []).map(String) };
  }

  async get(id, { wait, signal } = {}) {
    const q = wait ? `?wait=${Math.floor(wait)}` : '';
    return (await this.#request('GET', `/v1/jobs/${seg(id)}${q}`, undefined, { signal, timeout: wait ? wait * 1000 + this.timeout : undefined })).body;
  }

  /**
   * The result text once completed, else null (wait: long-poll seconds, up
   * to 60); throws JobFailedError / JobCancelledError for a job that
   * finished without one.
   */
  async result(id, { wait, signal } = {}) {
    const q = wait ? `?wait=${Math.floor(wait)}` : '';
    const { status, body } = await this.#request('GET', `/v1/jobs/${seg(id)}/result${q}`, undefined, { signal, timeout: wait ? wait * 1000 + this.timeout : undefined });
    if (status === 202) return null;
    if (body?.state === 'failed') throw new JobFailedError(String(id), body.last_error || 'failed', body);
    if (body?.state === 'cancelled') throw new JobCancelledError(String(id), body);
    return resultText(body);
  }

  async jobs({ queue, state, batch, limit, cursor, signal } = {}) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries({ queue, state, batch, limit, cursor })) if (v !== undefined) params.set(k, String(v));
    const q = params.toString();
    return (await this.#request('GET', `/v1/jobs${q ? `?${q}` : ''}`, undefined, { signal })).body;
  }

  async cancel(id, { signal } = {}) {
    return (await this.#request('POST', `/v1/jobs/${seg(id)}/cancel`, {}, { signal })).body ?? {};
  }

  /** Puts a failed (dead-lettered) job back to pending. */
  async retry(id, { signal } = {}) {
    return (await this.#request('POST', `/v1/jobs/${seg(id)}/retry`, {}, { signal })).body ?? {};
  }

  async batch(id, { signal } = {}) {
    return (await this.#request('GET', `/v1/batches/${seg(id)}`, undefined, { signal })).body;
  }

  async queues({ signal } = {}) {
    return items((await this.#request('GET', '/v1/queues', undefined, { signal })).body, 'queues');
  }

  async workers({ signal } = {}) {
    return items((await this.#request('GET', '/v1/workers', undefined, { signal })).body, 'workers');
  }

  async dead(queue, { signal } = {}) {
    return items((await this.#request('GET', `/v1/queues/${seg(queue)}/dead`, undefined, { signal })).body, 'jobs');
  }

  /** Removes a dead-lettered job for good (id), or every one of the queue (at most 10,000 a call): {queue, removed, ids}. Admin role. */
  async removeDead(queue, id, { signal } = {}) {
    const path = `/v1/queues/${seg(queue)}/dead${id === undefined || id === null ? '' : `/${seg(id)}`}`;
    return (await this.#request('DELETE', path, undefined, { signal })).body;
  }

  /** Every dead-lettered job of the queue back to pending (at most 10,000 a call): {queue, revived, ids}. */
  async retryDead(queue, { signal } = {}) {
    return (await this.#request('POST', `/v1/queues/${seg(queue)}/dead/retry`, {}, { signal })).body;
  }

  /** The queue's runtime settings (admin role). */
  async queueSettings(queue, { signal } = {}) {
    return (await this.#request('GET', `/v1/queues/${seg(queue)}/settings`, undefined, { signal })).body;
  }

  /** Changes the queue's runtime settings (journaled; admin role); resolves with all of them. */
  async setQueueSettings(queue, changes, { signal } = {}) {
    return (await this.#request('PATCH', `/v1/queues/${seg(queue)}/settings`, settingsBody(changes), { signal })).body;
  }

  /** Workers get none of its jobs until resumed; submits are still taken. */
  async pauseQueue(queue, { signal } = {}) {
    return (await this.#request('POST', `/v1/queues/${seg(queue)}/pause`, {}, { signal })).body;
  }

  async resumeQueue(queue, { signal } = {}) {
    return (await this.#request('POST', `/v1/queues/${seg(queue)}/resume`, {}, { signal })).body;
  }

  /** Opens one SSE connection; resolves once the broker accepted it (subscribed). */
  async #openEvents(path, lastId, signal) {
    const headers = this.#headers({ Accept: 'text/event-stream', 'Cache-Control': 'no-cache' });
    if (lastId != null) headers['Last-Event-ID'] = String(lastId);
    const res = await this.#fetch(path, { method: 'GET', headers }, signal);
    if (res.status >= 400) {
      let parsed = null;
      try { parsed = await res.json(); } catch { /* not JSON */ }
      throw errorFor(res.status, parsed);
    }
    return res;
  }

  /** #openEvents for a waiter: no broker reachable for a moment (a failover) is tried again until the signal fires. */
  async #reopenEvents(path, lastId, signal) {
    for (let round = 0; ; round++) {
      try {
        return await this.#openEvents(path, lastId, signal);
      } catch (e) {
        if (signal?.aborted || !(e instanceof ConnectionError) || round >= FOLLOW_ROUNDS_MAX) throw e;
      }
      await sleep(FOLLOW_PAUSE_MS, signal);
    }
  }

  /**
   * Live events as an async iterator; a dropped stream is reopened with
   * Last-Event-ID so nothing is missed. Stop with break or the signal.
   * onOpen() is called each time the broker has subscribed the stream
   * (submit after it, and nothing is missed).
   */
  async* events({ job, batch, queue, worker, topics, kinds, lastEventId = null, signal, reconnect = true, maxRetries = 8, onOpen } = {}) {
    const path = eventsPath({ job, batch, queue, worker, topics, kinds });
    let last = lastEventId;
    let failures = 0;
    for (;;) {
      let res;
      try {
        res = await this.#openEvents(path, last, signal);
      } catch (e) {
        if (signal?.aborted || !(e instanceof ConnectionError) || !reconnect || ++failures > maxRetries) throw e;
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** failures, 5000)));
        continue;
      }
      failures = 0;
      if (onOpen) onOpen(); // subscribed: what happens from now on is on this stream
      const parser = new SseParser(last);
      try {
        for await (const ev of sseEvents(res, parser)) {
          last = parser.lastId;
          yield ev;
        }
      } catch (e) {
        if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : e;
      }
      if (!reconnect || signal?.aborted) return;
    }
  }

  /**
   * Waits for the job to finish; resolves with its result text, or throws
   * JobFailedError, JobCancelledError or TimeoutError. Subscribes to the
   * job's events before it reads its state, so no finish is missed.
   */
  async wait(id, { timeout, signal, onProgress } = {}) {
    id = String(id);
    const d = deadlineSignal(signal, timeout);
    const path = eventsPath({ job: id });
    let last = null;
    let seen = '';
    try {
      for (;;) {
        const res = await this.#reopenEvents(path, last, d.signal);
        const parser = new SseParser(last);
        let job = await this.get(id, { signal: d.signal });
        if (TERMINAL.has(job.state)) {
          res.body?.cancel().catch(() => {});
          return await this.#finished(id, job, d.signal);
        }
        try {
          for await (const ev of sseEvents(res, parser)) {
            last = parser.lastId;
            if (ev.kind === 'job_progress' && onProgress) {
              const p = ev.data ?? {};
              const key = `${p.done}/${p.total}/${p.message ?? ''}`;
              if (key !== seen) {
                seen = key;
                await onProgress({ done: Number(p.done), total: Number(p.total), message: p.message ?? '' });
              }
            } else if ((ev.kind === 'job_state' && TERMINAL.has(ev.data?.state)) || ev.kind === 'snapshot') {
              job = await this.get(id, { signal: d.signal });
              if (TERMINAL.has(job.state)) return await this.#finished(id, job, d.signal);
            }
          }
        } catch (e) {
          if (d.signal.aborted) throw e;
        }
        await new Promise((r) => setTimeout(r, 50)); // dropped: reopen from the last event
      }
    } catch (e) {
      if (d.timedOut()) throw new TimeoutError(`job ${id} did not finish within ${timeout} ms`);
      throw e;
    } finally {
      d.done();
    }
  }

  /**
   * Waits for a batch to finish (subscribing before reading its state);
   * resolves with its final status. onProgress gets each batch event
   * ({completed, failed, total, state, current_operation}).
   */
  async waitBatch(id, { timeout, signal, onProgress } = {}) {
    id = String(id);
    const d = deadlineSignal(signal, timeout);
    // Its batch events only: not the two or three of each of its jobs.
    const path = eventsPath({ batch: id, kinds: ['batch'] });
    let last = null;
    try {
      for (;;) {
        const res = await this.#reopenEvents(path, last, d.signal);
        const parser = new SseParser(last);
        let batch = await this.batch(id, { signal: d.signal });
        if (batch.state !== 'running') { res.body?.cancel().catch(() => {}); return batch; }
        try {
          for await (const ev of sseEvents(res, parser)) {
            last = parser.lastId;
            if (ev.kind === 'batch' && onProgress) await onProgress(ev.data);
            if ((ev.kind === 'batch' && ev.data?.state !== 'running') || ev.kind === 'snapshot') {
              batch = await this.batch(id, { signal: d.signal });
              if (batch.state !== 'running') return batch;
            }
          }
        } catch (e) {
          if (d.signal.aborted) throw e;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (e) {
      if (d.timedOut()) throw new TimeoutError(`batch ${id} did not finish within ${timeout} ms`);
      throw e;
    } finally {
      d.done();
    }
  }

  async #finished(id, job, signal) {
    if (job.state === 'completed') return this.result(id, { signal });
    if (job.state === 'cancelled') throw new JobCancelledError(id, job);
    throw new JobFailedError(id, job.last_error || job.error || 'failed', job);
  }
}
