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
  constructor(id, type, queue, attempt, payload, payloadBase64, deadline, timeoutMs, emit) {
    this.id = typeof id === 'string' ? id : String(id);
    this.type = type;
    this.queue = queue;
    this.attempt = attempt;
    this.payload = payload ?? '';
    this._bytes = undefined; // encoded when asked for
    if (payloadBase64 !== undefined) {
      // Not UTF-8: the bytes as they are, and a lossy text view of them.
      this._bytes = Uint8Array.from(atob(payloadBase64), (ch) => ch.charCodeAt(0));
      this.payload = new TextDecoder().decode(this._bytes);
    }
    /** Unix time in ms when the run timeout passes, or null. */
    this.deadline = deadline ?? null;
    this.timeoutMs = timeoutMs ?? 0;
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
  return new ServeJob(msg.id, msg.type, msg.queue, msg.attempt, msg.payload, msg.payload_base64,
    msg.deadline, msg.timeout_ms, emit);
}

// A job of a "jobs" line: [id, type, queue, attempt, payload, deadline,
// timeout_ms] (+ payload_base64 when payload is null).
function jobFromItem(item, emit) {
  if (!Array.isArray(item) || item.length < 7) throw new TypeError('a job must be an array of 7 or 8 values');
  if (item.length <= 7 && typeof (item[4] ?? '') !== 'string') throw new TypeError('payload must be a string');
  return new ServeJob(item[0], item[1], item[2], item[3], item[4], item.length > 7 ? item[7] : undefined,
    item[5], item[6], emit);
}

const JOBS_OPEN = '{"op":"jobs","jobs":[';

// Reads the jobs of a "jobs" line written the way jobmesh-worker writes
// it (no blanks; each job ["id","type","queue",attempt,"payload"|null,
// deadline|null,timeout_ms(,"base64")]) without JSON.parse, and returns
// them, or null for a line of any other shape (JSON.parse reads those).
// Why: JSON.parse interns every string of up to 10 characters in V8's
// string table (job ids, type and queue names), and that lookup was the
// largest single cost of a Node handler in a drain; here ids are plain
// slices, and a job's type and queue reuse the previous job's strings
// when equal (so the handler lookup by type finds an interned key too).
export function scanJobs(line, emit, prev = { type: '', queue: '' }) {
  if (!line.startsWith(JOBS_OPEN)) return null;
  const end = line.length - 2; // the "]" closing the array, before "}"
  if (end < JOBS_OPEN.length || line.charCodeAt(end) !== 93 || line.charCodeAt(end + 1) !== 125) return null;
  const jobs = [];
  let p = JOBS_OPEN.length;
  let backslash = line.indexOf('\\', p); // the next one at or after p, or -1
  if (p === end) return jobs;
  for (;;) {
    // ["id","type","queue",
    if (line.charCodeAt(p) !== 91 || line.charCodeAt(p + 1) !== 34) return null;
    const idEnd = line.indexOf('"', p + 2);
    if (idEnd <= p + 2) return null;
    const id = line.slice(p + 2, idEnd);
    p = idEnd;
    if (line.charCodeAt(p + 1) !== 44 || line.charCodeAt(p + 2) !== 34) return null;
    p += 3;
    let type = prev.type;
    if (!(line.startsWith(type, p) && line.charCodeAt(p + type.length) === 34 && type !== '')) {
      const q = line.indexOf('"', p);
      if (q < 0) return null;
      type = line.slice(p, q);
      prev.type = type;
    }
    p += type.length;
    if (line.charCodeAt(p) !== 34 || line.charCodeAt(p + 1) !== 44 || line.charCodeAt(p + 2) !== 34) return null;
    p += 3;
    let queue = prev.queue;
    if (!(line.startsWith(queue, p) && line.charCodeAt(p + queue.length) === 34 && queue !== '')) {
      const q = line.indexOf('"', p);
      if (q < 0) return null;
      queue = line.slice(p, q);
      prev.queue = queue;
    }
    p += queue.length;
    if (line.charCodeAt(p) !== 34 || line.charCodeAt(p + 1) !== 44) return null;
    p += 2;
    if (backslash >= 0 && backslash < p) return null; // an escape in an id or a name
    // attempt,
    let attempt = 0;
    let c;
    const attemptAt = p;
    while ((c = line.charCodeAt(p)) >= 48 && c <= 57) { attempt = attempt * 10 + (c - 48); p++; }
    if (p === attemptAt || c !== 44) return null;
    p++;
    // "payload" (with escapes: JSON.parse reads that string alone) or null,
    let payload = null;
    if (line.charCodeAt(p) === 34) {
      let q = line.indexOf('"', p + 1);
      if (q < 0) return null;
      if (backslash >= 0 && backslash < q) {
        q = backslash;
        while ((c = line.charCodeAt(q)) !== 34) {
          if (q >= end) return null;
          q += c === 92 ? 2 : 1;
        }
        payload = JSON.parse(line.slice(p, q + 1));
        backslash = line.indexOf('\\', q + 1);
      } else {
        payload = line.slice(p + 1, q);
      }
      p = q + 1;
    } else if (line.startsWith('null', p)) {
      p += 4;
    } else {
      return null;
    }
    if (line.charCodeAt(p) !== 44) return null;
    p++;
    // deadline (or null),timeout_ms
    let deadline = null;
    if (line.startsWith('null', p)) {
      p += 4;
    } else {
      const at = p;
      deadline = 0;
      while ((c = line.charCodeAt(p)) >= 48 && c <= 57) { deadline = deadline * 10 + (c - 48); p++; }
      if (p === at) return null;
    }
    if (line.charCodeAt(p) !== 44) return null;
    p++;
    let timeoutMs = 0;
    const timeoutAt = p;
    while ((c = line.charCodeAt(p)) >= 48 && c <= 57) { timeoutMs = timeoutMs * 10 + (c - 48); p++; }
    if (p === timeoutAt) return null;
    // ,"base64" when the payload is null
    let base64;
    if (payload === null) {
      if (line.charCodeAt(p) !== 44 || line.charCodeAt(p + 1) !== 34) return null;
      const q = line.indexOf('"', p + 2);
      if (q < 0 || (backslash >= 0 && backslash < q)) return null;
      base64 = line.slice(p + 2, q);
      p = q + 1;
    }
    if (line.charCodeAt(p) !== 93) return null;
    p++;
    jobs.push(new ServeJob(id, type, queue, attempt, payload, base64, deadline, timeoutMs, emit));
    if (p === end) return jobs;
    if (line.charCodeAt(p) !== 44) return null;
    p++;
  }
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
 * written in batches. Resolves when done. `input` and `output` (streams)
 * replace stdin and stdout.
 */
export async function serve(handlers, {
  input,
  output,
  pipeline = DEFAULT_PIPELINE,
  batch = true,
} = {}) {
  const proc = globalThis.process;
  // On the process's own stdin and stdout, when they are pipes (as under
  // jobmesh-worker), lines are read into one reused buffer by a socket's
  // onread callback and answers written with one write(2) each: no
  // Readable or Writable stream machinery per read and per write, which
  // cost more than the jobs of a no-op drain (README, --serve figures).
  let direct = null;
  if (input === undefined && output === undefined && proc?.versions?.node) {
    direct = await directStdio();
  }
  if (direct === null) {
    input ??= proc?.stdin;
    output ??= proc?.stdout;
    if (!input || !output) throw new Error('serve() needs Node (process.stdin/stdout)');
  }
  const write = direct !== null ? direct.write : (text) => output.write(text);
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
    write(text);
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
  if (direct !== null || output === proc?.stdout) console.log = console.error;
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
      const names = { type: '', queue: '' }; // scanJobs: the last job's
      const source = direct !== null ? direct.source : input;
      const end = () => {
        if (ended) return;
        ended = true;
        if (direct !== null) {
          direct.stop();
        } else {
          input.off('data', onData);
        }
        source.off('end', end);
        source.off('error', onError);
        resolve();
      };
      const onError = (e) => { if (!ended) { ended = true; reject(e); } };
      // Handles the whole lines of text (and keeps a last partial one).
      const onData = (chunk) => {
        if (ended) return;
        buf += chunk;
        let start = 0;
        let nl;
        while ((nl = buf.indexOf('\n', start)) >= 0) {
          const raw = buf.slice(start, nl);
          start = nl + 1;
          const scanned = scanJobs(raw, emit, names);
          if (scanned !== null) {
            batched = true;
            inFlight += scanned.length;
            for (let i = 0; i < scanned.length; i++) runJob(handlers, scanned[i], answer, settled);
            continue;
          }
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
        buf = start === buf.length ? '' : buf.slice(start);
      };
      if (direct !== null) {
        direct.start(onData);
      } else {
        input.setEncoding?.('utf8');
        input.on('data', onData);
      }
      source.on('end', end);
      source.on('error', onError);
    });
    if (inFlight > 0) await new Promise((resolve) => { idle = resolve; });
    flush();
  } finally {
    console.log = savedLog;
  }
  if (direct === null) input.destroy?.();
}

// stdin and stdout as raw descriptors when both are pipes or sockets, or
// null (a terminal, a file: the streams then). Imported here, not at the
// top, so that the package loads in a browser.
async function directStdio() {
  const [fs, net] = await Promise.all([import('node:fs'), import('node:net')]);
  try {
    const inStat = fs.fstatSync(0);
    const outStat = fs.fstatSync(1);
    if (!(inStat.isFIFO() || inStat.isSocket()) || !(outStat.isFIFO() || outStat.isSocket())) return null;
  } catch {
    return null;
  }
  const readBuffer = Buffer.allocUnsafe(1 << 18);
  let parts = []; // bytes of a line not ended yet (UTF-8 may split between reads)
  let onText = null;
  const onread = (n, chunk) => {
    if (onText === null || n <= 0) return;
    const last = chunk.lastIndexOf(10, n - 1);
    if (last < 0) {
      parts.push(Buffer.from(chunk.subarray(0, n)));
      return;
    }
    let text;
    if (parts.length > 0) {
      parts.push(chunk.subarray(0, last + 1));
      text = Buffer.concat(parts).toString('utf8');
      parts = [];
    } else {
      text = chunk.toString('utf8', 0, last + 1);
    }
    if (last + 1 < n) parts.push(Buffer.from(chunk.subarray(last + 1, n)));
    onText(text);
  };
  const source = new net.Socket({ fd: 0, readable: true, writable: false, onread: { buffer: readBuffer, callback: onread } });
  const wait = new Int32Array(new SharedArrayBuffer(4));
  return {
    source,
    start: (fn) => { onText = fn; },
    stop: () => { onText = null; source.destroy(); },
    // One write(2); stdout is blocking unless someone made process.stdout
    // (libuv makes the pipe non-blocking): then a full pipe is waited out.
    write: (text) => {
      const bytes = Buffer.from(text, 'utf8');
      let off = 0;
      while (off < bytes.length) {
        try {
          off += fs.writeSync(1, bytes, off);
        } catch (e) {
          if (e.code !== 'EAGAIN') throw e;
          Atomics.wait(wait, 0, 0, 1);
        }
      }
    },
  };
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
