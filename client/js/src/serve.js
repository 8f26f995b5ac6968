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

// One job item of a "jobs" line as jobmesh-worker writes it, from where
// the last one ended (sticky): ["id","type","queue",attempt,"payload" or
// null,deadline or null,timeout_ms(,"base64" when the payload is null)]
// and what follows (a comma, or the end of the line).
const ITEM = /\["([0-9]+)","([^"\\]+)","([^"\\]+)",([0-9]+),(?:"((?:[^"\\]|\\.)*)"|null),(null|[0-9]+),([0-9]+)(?:,"([^"\\]*)")?\](,|\]\}$)/y;

// Reads the jobs of a "jobs" line written the way jobmesh-worker writes
// it (no blanks, the values in ITEM's order) without JSON.parse, and
// returns them, or null for a line of any other shape (JSON.parse reads
// those). Why: JSON.parse interns every string of up to 10 characters in
// V8's string table (job ids, type and queue names), and that lookup was
// the largest single cost of a Node handler in a drain; here ids are plain
// substrings, and a job's type and queue reuse the previous job's strings
// when equal (the handler lookup by type then hashes them once). A regular
// expression rather than indexOf/charCodeAt code: as fast once compiled,
// and V8 compiles it in a few ms where the hand-written reader took 70-200
// ms of TurboFan time per process on this loaded machine, inside a short drain.
export function scanJobs(line, emit, prev = { type: '', queue: '' }) {
  if (!line.startsWith(JOBS_OPEN)) return null;
  const jobs = [];
  if (line.length === JOBS_OPEN.length + 2 && line.endsWith(']}')) return jobs;
  ITEM.lastIndex = JOBS_OPEN.length;
  for (;;) {
    const m = ITEM.exec(line);
    if (m === null) return null;
    let type = m[2];
    if (type === prev.type) type = prev.type; else prev.type = type;
    let queue = m[3];
    if (queue === prev.queue) queue = prev.queue; else prev.queue = queue;
    let payload = m[5];
    let base64;
    if (payload === undefined) {
      if (m[8] === undefined) return null;
      payload = null;
      base64 = m[8];
    } else {
      if (m[8] !== undefined) return null;
      if (payload.indexOf('\\') >= 0) {
        try { payload = JSON.parse(`"${payload}"`); } catch { return null; } // a bad escape
      }
    }
    const deadline = m[6] === 'null' ? null : Number(m[6]);
    jobs.push(new ServeJob(m[1], type, queue, Number(m[4]), payload, base64, deadline, Number(m[7]), emit));
    if (m[9] !== ',') return jobs;
  }
}

// V8 runs new code in its interpreter and baseline tiers until it has been
// called enough to be compiled with TurboFan, on a background thread: in a
// process's first 5,000 no-op jobs a job cost 6-8 us of CPU against 1.4
// once compiled (a 20,000-job drain on 4 processes: 6.5-7.3 us a job
// against 4.6-5.0 with this warm-up, from the threads' schedstat). A
// worker's processes live for many jobs, so serve() pays that before its
// hello: WARM_ROUNDS made-up jobs lines of 100 jobs go
// through the same code as the worker's (read, run, answered, the results
// line built) to handlers of its own, and nothing is written. Its rounds
// reach their steady time (0.7 us a job) after about 80; 150 cost about
// 30 ms of CPU at the start of a process.
const WARM_ROUNDS = 150;
// Five functions, and so five call targets: the call of a handler is then
// compiled for any function (it would be undone by the first real one if
// it had seen only one), and for the usual kinds of results.
const WARM_HANDLERS = new Map([
  ['jobmesh.warm-up.0', () => ''],
  ['jobmesh.warm-up.1', () => undefined],
  ['jobmesh.warm-up.2', () => 'done'],
  ['jobmesh.warm-up.3', () => ({ ok: true })],
  ['jobmesh.warm-up.4', (job) => job.payload.length],
]);

function warmLine() {
  const items = [];
  const deadline = Date.now() + 300000;
  for (let i = 0; i < 100; i++) {
    const type = `jobmesh.warm-up.${Math.floor(i / 20)}`;
    items.push(i % 2 === 0
      ? `["${1000000 + i}","${type}","warm-up",1,"${'x'.repeat(100)}",${deadline},300000]`
      : `["${1000000 + i}","${type}","warm-up",2,"{\\"n\\":${i}}",null,0]`);
  }
  return `${JOBS_OPEN}${items.join(',')}]}\n`;
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
  const writeOut = direct !== null ? direct.write : (text) => output.write(text);
  let warming = false; // nothing is written while it warms up
  const write = (text) => { if (!warming) writeOut(text); };
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
  let buf = '';
  let ended = false;
  let end = null; // set once reading starts
  const table = new Map(Object.entries(handlers));
  let serving = table; // WARM_HANDLERS while it warms up
  let names = { type: '', queue: '' }; // scanJobs: the last job's
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
        for (let i = 0; i < scanned.length; i++) runJob(serving, scanned[i], answer, settled);
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
          runJob(serving, job, answer, settled);
        }
        continue;
      }
      if (msg.op !== 'job') continue; // cancel needs no answer: the worker kills us next
      inFlight += 1;
      runJob(serving, makeJob(msg, emit), answer, settled);
    }
    buf = start === buf.length ? '' : buf.slice(start);
  };
  try {
    warming = true;
    serving = WARM_HANDLERS;
    const line = warmLine();
    for (let round = 0; round < WARM_ROUNDS; round++) {
      onData(line);
      flush();
    }
    serving = table;
    batched = false;
    names = { type: '', queue: '' };
    warming = false;
    const hello = { op: 'hello', pipeline: Math.max(1, Math.floor(pipeline)) };
    if (batch) hello.batch = true;
    emit(hello);
    await new Promise((resolve, reject) => {
      const source = direct !== null ? direct.source : input;
      const onError = (e) => { if (!ended) { ended = true; reject(e); } };
      end = () => {
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
// handlers is a Map of type to function, made of the object given to
// serve(): its own properties only (a job of type "constructor" or
// "toString" must not find Object.prototype's), and a lookup by a type
// name first seen after the warm-up does not undo its compiled code.
function runJob(handlers, job, answer, settled) {
  let value;
  try {
    const fn = handlers.get(job.type);
    if (typeof fn !== 'function') {
      throw new PermanentError(`no handler for type "${job.type}" (this process serves ${[...handlers.keys()].join(', ')})`);
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
