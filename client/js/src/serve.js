// The handler end of `jobmesh-worker --serve TYPE=COMMAND` (Node only; no
// import of node: modules at load time, so the package still loads in a
// browser). The worker writes one JSON object a line on stdin: {"op":"job"},
// {"op":"cancel"}, {"op":"stop"}; this writes progress, result and error
// lines on stdout (docs/serve-protocol.md). console.log goes to stderr
// while serving, so stray output cannot corrupt the protocol.

import { PermanentError } from './errors.js';

function resultText(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return JSON.stringify(value);
}

function makeJob(msg, emit) {
  let payload = msg.payload ?? '';
  let payloadBytes;
  if (msg.payload_base64 !== undefined) {
    // Not UTF-8: the bytes as they are, and a lossy text view of them.
    payloadBytes = Uint8Array.from(atob(msg.payload_base64), (ch) => ch.charCodeAt(0));
    payload = new TextDecoder().decode(payloadBytes);
  } else {
    payloadBytes = new TextEncoder().encode(payload);
  }
  let parsed = false;
  let data;
  return {
    id: String(msg.id),
    type: msg.type,
    queue: msg.queue,
    attempt: msg.attempt,
    payload,
    payloadBytes,
    /** Unix time in ms when the run timeout passes, or null. */
    deadline: msg.deadline ?? null,
    timeoutMs: msg.timeout_ms ?? 0,
    get data() {
      if (!parsed) {
        parsed = true;
        try { data = JSON.parse(payload); } catch { data = undefined; }
      }
      return data;
    },
    progress(done, total = 1, message) {
      if (total === 1 && done > 0 && done < 1) { done = Math.round(done * 10000); total = 10000; }
      if (!Number.isInteger(done) || !Number.isInteger(total) || total < 1 || done < 0 || done > total) {
        throw new RangeError(`progress(${done}, ${total}): need whole numbers 0 <= done <= total, total >= 1`);
      }
      const line = { op: 'progress', id: String(msg.id), done, total };
      if (message) line.message = String(message);
      emit(line);
    },
  };
}

/**
 * Serves jobs until the worker says stop or closes stdin. handlers maps a
 * job type to a (possibly async) function of a job; its return value is the
 * result (a string as it is, anything else as JSON); a throw fails the
 * attempt, a PermanentError fails it without retry. Resolves when done.
 */
export async function serve(handlers, { input = globalThis.process?.stdin, output = globalThis.process?.stdout } = {}) {
  if (!input || !output) throw new Error('serve() needs Node (process.stdin/stdout)');
  const emit = (line) => output.write(`${JSON.stringify(line)}\n`);
  const savedLog = console.log;
  if (output === globalThis.process?.stdout) console.log = console.error;
  let buf = '';
  let queue = Promise.resolve();
  let stopped = false;
  try {
    input.setEncoding?.('utf8');
    for await (const chunk of input) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const raw = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!raw) continue;
        let msg;
        try { msg = JSON.parse(raw); } catch {
          console.error(`jobmesh serve: ignoring a line that is not JSON: ${raw.slice(0, 80)}`);
          continue;
        }
        if (msg.op === 'stop') { stopped = true; break; }
        if (msg.op !== 'job') continue; // cancel needs no answer: the worker kills us next
        // One job at a time per process, in order (the worker sends the next
        // only after an answer).
        queue = queue.then(() => runJob(handlers, msg, emit));
      }
      if (stopped) break;
    }
    await queue;
  } finally {
    console.log = savedLog;
  }
  if (stopped) input.destroy?.();
}

async function runJob(handlers, msg, emit) {
  const job = makeJob(msg, emit);
  try {
    const fn = handlers[job.type];
    if (typeof fn !== 'function') {
      throw new PermanentError(`no handler for type "${job.type}" (this process serves ${Object.keys(handlers).join(', ')})`);
    }
    const value = await fn(job);
    emit({ op: 'result', id: job.id, result: resultText(value) });
  } catch (e) {
    const permanent = e instanceof PermanentError || e?.name === 'PermanentError';
    const message = permanent ? (e.message || 'PermanentError') : `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
    emit({ op: 'error', id: job.id, message, permanent });
  }
}
