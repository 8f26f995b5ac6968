// A real jobmesh stack for the Node tests: a broker (NNG on an ipc:// path
// in a temp dir, HTTP on 127.0.0.1 port 0) and workers, each stopped by its
// pid on every exit path. JOBMESH_BIN names the directory of the binaries.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '..', '..', '..');
export const bin = process.env.JOBMESH_BIN ?? join(root, 'build', 'test', 'bin');
const live = new Set();
// Children get SIGKILL when this process dies, even by SIGKILL (a test
// runner's timeout): setpriv (util-linux) sets the parent-death signal
// before it execs the real program.
const setpriv = ['--pdeathsig', 'SIGKILL', '--'];
function spawnGuarded(file, args, options) {
  return spawn('setpriv', [...setpriv, file, ...args], options);
}

function killAll() {
  for (const child of live) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(1); });

/** Polls cond() until truthy, up to timeoutMs; fails naming what. */
export async function pollUntil(what, cond, timeoutMs = 20000, intervalMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Stops one child we started, by its pid: signal, then SIGKILL after graceMs. */
export async function stopProcess(child, signal = 'SIGTERM', graceMs = 10000) {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    try { process.kill(child.pid, signal); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
    await exited;
    clearTimeout(timer);
  }
  live.delete(child);
  return child.exitCode;
}

export class Stack {
  /** brokerArgs are added to jobmesh-broker's command line (e.g. --auth FILE). */
  static async start({ http = true, brokerArgs = [] } = {}) {
    const s = new Stack();
    await s.#startBroker(http, brokerArgs);
    return s;
  }

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'jobmesh-js-'));
    this.nng = `ipc://${this.dir}/broker.sock`;
    this.url = null;
    this.workers = [];
  }

  #log(name) {
    return openSync(join(this.dir, `${name}.log`), 'a');
  }

  log(name) {
    try { return readFileSync(join(this.dir, `${name}.log`), 'utf8').slice(-4000); } catch { return ''; }
  }

  async #startBroker(http, extra = []) {
    const args = ['--listen', this.nng, '--data', join(this.dir, 'data'), ...extra];
    args.push('--http', http ? '127.0.0.1:0' : 'off');
    const err = this.#log('broker');
    const child = spawnGuarded(join(bin, 'jobmesh-broker'), args, { stdio: ['ignore', 'pipe', err] });
    closeSync(err);
    live.add(child);
    this.broker = child;
    const lines = createInterface({ input: child.stdout });
    const ready = new Promise((resolveReady, reject) => {
      lines.on('line', (line) => {
        if (line.startsWith('http ')) this.url = line.slice(5).trim().replace(/\/$/, '');
        if (line.startsWith('listening')) resolveReady();
      });
      child.once('exit', () => reject(new Error(`broker did not start: ${this.log('broker')}`)));
    });
    await ready;
  }

  /** Starts jobmesh-worker with args and waits until the broker lists it. */
  async worker(args, { queue = 'q', concurrency = 1 } = {}) {
    const out = this.#log('worker');
    const child = spawnGuarded(join(bin, 'jobmesh-worker'), [
      '--broker', this.nng, '--queue', queue, '--concurrency', String(concurrency),
      '--heartbeat-ms', '100', '--kill-grace-ms', '500', ...args,
    ], { stdio: ['ignore', out, out] });
    closeSync(out);
    live.add(child);
    this.workers.push(child);
    if (this.url) {
      await pollUntil('the worker to register', async () => {
        const res = await fetch(`${this.url}/v1/workers`);
        const body = await res.json();
        return (body.workers ?? []).some((w) => w.pid === child.pid);
      }, 15000);
    }
    return child;
  }

  async close() {
    for (const w of this.workers) await stopProcess(w, 'SIGKILL');
    const code = this.broker ? await stopProcess(this.broker, 'SIGTERM') : 0;
    const why = code !== 0 ? this.log('broker') : '';
    rmSync(this.dir, { recursive: true, force: true });
    // A sanitizer report, or a broker that would not stop, shows here.
    if (code !== 0) throw new Error(`the broker exited with ${code ?? this.broker.signalCode} on SIGTERM: ${why}`);
  }
}
