// The handler end of `jobmesh-worker --serve TYPE=COMMAND` (Node only; no
// import of node: modules at load time, so the package still loads in a
// browser). The worker writes one JSON object a line on stdin: {"op":"job"}
// or several jobs in one {"op":"jobs"} (asked for in the hello),
// {"op":"cancel"}, {"op":"stop"}; this writes progress, result, results and
// error lines on stdout (docs/serve-protocol.md). console.log goes to stderr
// while serving, so stray output cannot corrupt the protocol.

import { PermanentError } from './errors.js';

function resultText(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return JSON.stringify(value);
}

// One job handed to a handler. A class, so the accessors and progress()
// live on the prototype: a drain makes one small object per job.
class ServeJob {
  constructor(msg, emit) {
    this.id = String(msg.id);
    this.type = msg.type;
    this.queue = msg.queue;
    this.attempt = msg.attempt;
    this.payload = msg.payload ?? '';
    this._bytes = undefined; // encoded when asked for
    if (msg.payload_base64 !== undefined) {
      // Not UTF-8: the bytes as they are, and a lossy text view of them.
      this._bytes = Uint8Array.from(atob(msg.payload_base64), (ch) => ch.charCodeAt(0));
      this.payload = new TextDecoder().decode(this._bytes);
    }
    /** Unix time in ms when the run timeout passes, or null. */
    this.deadline = msg.deadline ?? null;
    this.timeoutMs = msg.timeout_ms ?? 0;
    this._emit = emit;
    this._parsed = false;
    this._data = undefined;
  }

  get payloadBytes() {
    if (this._bytes === undefined) this._bytes = new TextEncoder().encode(this.payload);
    return this._bytes;
  }

  get data() {
    if (!this._parsed) {
      this._parsed = true;
      try { this._data = JSON.parse(this.payload); } catch { this._data = undefined; }
    }
    return this._data;
  }

  progress(done, total = 1, message) {
    if (total === 1 && done > 0 && done < 1) { done = Math.round(done * 10000); total = 10000; }
    if (!Number.isInteger(done) || !Number.isInteger(total) || total < 1 || done < 0 || done > total) {
      throw new RangeError(`progress(${done}, ${total}): need whole numbers 0 <= done <= total, total >= 1`);
    }
    const line = { op: 'progress', id: this.id, done, total };
    if (message) line.message = String(message);
    this._emit(line);
  }
}

function makeJob(msg, emit) {
  return new ServeJob(msg, emit);
}

// A job of a "jobs" line: [id, type, queue, attempt, payload, deadline,
// timeout_ms] (+ payload_base64 when payload is null).
function jobFromItem(item, emit) {
  if (!Array.isArray(item) || item.length < 7) throw new TypeError('a job must be an array of 7 or 8 values');
  const msg = {
    id: item[0], type: item[1], queue: item[2], attempt: item[3], payload: item[4] ?? '',
    deadline: item[5], timeout_ms: item[6],
  };
  if (item.length > 7) msg.payload_base64 = item[7];
  else if (typeof msg.payload !== 'string') throw new TypeError('payload must be a string');
  return new ServeJob(msg, emit);
}

/** Jobs a process asks to hold at once (its hello line); the worker's
 * --serve-pipeline caps it, and gives fewer while jobs are slow. */
export const DEFAULT_PIPELINE = 128;

/**
 * Serves jobs until the worker says stop or closes stdin. handlers maps a
 * job type to a (possibly async) function of a job; its return value is the
 * result (a string as it is, anything else as JSON); a throw fails the
 * attempt, a PermanentError fails it without retry. Up to `pipeline` jobs
 * run at once (async handlers concurrently; 1: one at a time); answers are
 * written in batches. Resolves when done.
 */
export async function serve(handlers, {
  input = globalThis.process?.stdin,
  output = globalThis.process?.stdout,
  pipeline = DEFAULT_PIPELINE,
  // Off by default: under jobmesh-worker a Node process spent more CPU per
  // job with "jobs" lines than with job lines (README, W2 figures), though
  // its own code spends less; what differs is not found yet.
  batch = false,
} = {}) {
  if (!input || !output) throw new Error('serve() needs Node (process.stdin/stdout)');
  let pending = [];
  let flushQueued = false;
  // Once the worker sent a "jobs" line it reads "results" lines too: the
  // results are then gathered into one line (ids, and their texts).
  let batched = false;
  let doneIds = [];
  let doneTexts = [];
  let doneAnyText = false;
  const flush = () => {
    flushQueued = false;
    if (doneIds.length > 0) {
      const ids = doneIds.every((id) => DIGITS.test(id)) ? `["${doneIds.join('","')}"]` : JSON.stringify(doneIds);
      pending.push(doneAnyText
        ? `{"op":"results","ids":${ids},"results":${JSON.stringify(doneTexts)}}\n`
        : `{"op":"results","ids":${ids}}\n`);
      doneIds = [];
      doneTexts = [];
      doneAnyText = false;
    }
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    output.write(text);
  };
  const queueFlush = () => {
    if (!flushQueued) { flushQueued = true; setImmediate(flush); }
  };
  const answer = (id, value, error) => {
    if (error === undefined && batched) {
      const text = resultText(value);
      doneIds.push(id);
      doneTexts.push(text);
      if (text !== '') doneAnyText = true;
    } else {
      pending.push(answerLine(id, value, error));
    }
    queueFlush();
  };
  // Progress goes out at once, after the answers before it.
  const emit = (line) => { pending.push(`${JSON.stringify(line)}\n`); flush(); };
  const savedLog = console.log;
  if (output === globalThis.process?.stdout) console.log = console.error;
  let inFlight = 0;
  let idle = null; // resolves when inFlight drops to 0 after the end
  const settled = () => { inFlight -= 1; if (inFlight === 0 && idle) idle(); };
  try {
    const hello = { op: 'hello', pipeline: Math.max(1, Math.floor(pipeline)) };
    if (batch) hello.batch = true;
    emit(hello);
    await new Promise((resolve, reject) => {
      let buf = '';
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        input.off('data', onData);
        input.off('end', end);
        input.off('error', onError);
        resolve();
      };
      const onError = (e) => { if (!ended) { ended = true; reject(e); } };
      const onData = (chunk) => {
        buf += chunk;
        let start = 0;
        let nl;
        while ((nl = buf.indexOf('\n', start)) >= 0) {
          const raw = buf.slice(start, nl);
          start = nl + 1;
          let msg;
          try { msg = JSON.parse(raw); } catch {
            if (raw.trim()) console.error(`jobmesh serve: ignoring a line that is not JSON: ${raw.slice(0, 80)}`);
            continue;
          }
          if (msg === null || typeof msg !== 'object') continue;
          if (msg.op === 'stop') { buf = ''; end(); return; }
          if (msg.op === 'jobs') {
            if (!Array.isArray(msg.jobs)) {
              console.error('jobmesh serve: bad jobs line: "jobs" is not an array');
              continue;
            }
            batched = true;
            for (const item of msg.jobs) {
              let job;
              try { job = jobFromItem(item, emit); } catch (e) {
                console.error(`jobmesh serve: bad job in a jobs line: ${e.message}`);
                continue;
              }
              inFlight += 1;
              runJob(handlers, job, answer, settled);
            }
            continue;
          }
          if (msg.op !== 'job') continue; // cancel needs no answer: the worker kills us next
          inFlight += 1;
          runJob(handlers, makeJob(msg, emit), answer, settled);
        }
        buf = buf.slice(start);
      };
      input.setEncoding?.('utf8');
      input.on('data', onData);
      input.on('end', end);
      input.on('error', onError);
    });
    if (inFlight > 0) await new Promise((resolve) => { idle = resolve; });
    flush();
  } finally {
    console.log = savedLog;
  }
  input.destroy?.();
}

const DIGITS = /^[0-9]+$/;

function answerLine(id, value, error) {
  if (error === undefined) {
    const result = value === undefined || value === null || value === '' ? '""' : JSON.stringify(resultText(value));
    return `{"op":"result","id":${DIGITS.test(id) ? `"${id}"` : JSON.stringify(id)},"result":${result}}\n`;
  }
  const permanent = error instanceof PermanentError || error?.name === 'PermanentError';
  const message = permanent ? (error.message || 'PermanentError') : `${error?.name ?? 'Error'}: ${error?.message ?? error}`;
  return `${JSON.stringify({ op: 'error', id, message, permanent })}\n`;
}

// Runs one job: a sync handler answers at once, an async one when it
// settles (jobs run concurrently; answers carry the job id).
function runJob(handlers, job, answer, settled) {
  let value;
  try {
    const fn = handlers[job.type];
    if (typeof fn !== 'function') {
      throw new PermanentError(`no handler for type "${job.type}" (this process serves ${Object.keys(handlers).join(', ')})`);
    }
    value = fn(job);
  } catch (e) {
    answer(job.id, undefined, e ?? new Error('undefined thrown'));
    settled();
    return;
  }
  if (value && typeof value.then === 'function') {
    value.then(
      (v) => { answer(job.id, v); settled(); },
      (e) => { answer(job.id, undefined, e ?? new Error('rejected')); settled(); },
    );
  } else {
    answer(job.id, value);
    settled();
  }
}
