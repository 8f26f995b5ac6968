// A real jobmesh-broker (NNG on an ipc:// path in a fresh temp dir, HTTP on
// 127.0.0.1) and real jobmesh-worker processes with exec handlers, for the
// browser tests and the screenshot script.
//
// Every process is started by PID and stopped by PID (SIGTERM, then SIGKILL
// past a deadline) by stop()/close(); if the test process ends any other
// way (an exception, a signal), the exit hook kills what is left. No
// waiting sleeps: waitFor() polls a condition to a deadline and says what
// it waited for.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
export const sourceDir = path.resolve(here, '../../..');
export const binDir = process.env.JOBMESH_BIN_DIR || path.join(sourceDir, 'build/test/bin');

const API_TIMEOUT_MS = 30000;
const live = new Set(); // every child still running, across stacks
const tempDirs = new Set(); // every stack's temp dir not yet removed

function killAllNow() {
  for (const child of live) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAllNow();
    process.exit(128 + os.constants.signals[sig]);
  });
}

// Polls fn (sync or async) every intervalMs until it returns a truthy
// value, which is returned; past timeoutMs throws naming what was awaited
// and the last value or error seen.
export async function waitFor(fn, what, { timeoutMs = 30000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (let i = 0; ; i++) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ` +
        (last instanceof Error ? last.message : JSON.stringify(last)));
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function tail(buf, max = 4000) {
  return buf.length > max ? '…' + buf.slice(-max) : buf;
}

class Proc {
  constructor(name, bin, args, env) {
    this.name = name;
    this.out = '';
    this.err = '';
    this.child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.pid = this.child.pid;
    live.add(this.child);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this.child);
        this.code = code;
        this.signal = signal;
        resolve({ code, signal });
      });
    });
    // Logs are kept bounded: a long test must not grow them without end.
    this.child.stdout.on('data', (d) => { this.out = (this.out + d).slice(-65536); });
    this.child.stderr.on('data', (d) => { this.err = (this.err + d).slice(-65536); });
  }

  get running() {
    return this.code === undefined && this.signal === undefined;
  }

  // SIGTERM (or signal), then SIGKILL if it has not exited by graceMs.
  async stop(signal = 'SIGTERM', graceMs = 15000) {
    if (!this.running) return this.exited;
    try { process.kill(this.pid, signal); } catch { /* gone */ }
    const timer = setTimeout(() => {
      try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ }
    }, graceMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  logs() {
    return `--- ${this.name} (pid ${this.pid}) stdout:\n${tail(this.out)}\n--- stderr:\n${tail(this.err)}`;
  }
}

export class Stack {
  constructor(label = 'jm-browser') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
    tempDirs.add(this.dir);
    this.dataDir = path.join(this.dir, 'data');
    this.listenUrl = `ipc://${path.join(this.dir, 'broker.ipc')}`;
    this.broker = null;
    this.workers = [];
    this.httpUrl = null;
    this.httpPort = 0; // 0 until the first start picks one; restarts reuse it
    this.token = null; // with --auth: the token api() sends (an admin's)
    this.workerToken = null; // with --auth: the token workers present
  }

  // Writes an --auth file for tokens [{name, secret, role, queues}] into
  // the temp dir (secrets stored as their SHA-256, as the broker wants);
  // returns its path.
  authFile(tokens) {
    const lines = ['tokens:'];
    for (const t of tokens) {
      const sha = crypto.createHash('sha256').update(t.secret).digest('hex');
      lines.push(`  - name: ${t.name}`, `    sha256: ${sha}`, `    role: ${t.role}`);
      if (t.queues) lines.push(`    queues: ${JSON.stringify(t.queues)}`);
    }
    const p = path.join(this.dir, 'auth.yaml');
    fs.writeFileSync(p, `${lines.join('\n')}\n`, { mode: 0o600 });
    return p;
  }

  // Starts the broker and waits until it printed its HTTP and NNG
  // addresses and /healthz answers.
  async startBroker(extraArgs = []) {
    if (this.broker && this.broker.running) throw new Error('broker already running');
    const args = ['--listen', this.listenUrl, '--data', this.dataDir,
      '--http', `127.0.0.1:${this.httpPort}`, '--log-level', 'warn', ...extraArgs];
    const b = new Proc('jobmesh-broker', path.join(binDir, 'jobmesh-broker'), args);
    this.broker = b;
    await waitFor(() => {
      if (!b.running) throw new Error(`broker exited (${b.code ?? b.signal})\n${b.logs()}`);
      const m = b.out.match(/^http (http:\/\/127\.0\.0\.1:(\d+))/m);
      return m && /^listening /m.test(b.out) ? m : null;
    }, 'the broker to print "http <url>" and "listening <url>"').then((m) => {
      this.httpUrl = m[1];
      this.httpPort = Number(m[2]);
    });
    await waitFor(async () => (await fetch(`${this.httpUrl}/healthz`, { signal: AbortSignal.timeout(API_TIMEOUT_MS) })).ok,
      'GET /healthz to answer 200');
    return b;
  }

  async stopBroker(signal = 'SIGTERM') {
    if (this.broker) await this.broker.stop(signal);
  }

  // Writes an executable handler script into the temp dir; returns its path.
  handler(name, body) {
    const p = path.join(this.dir, name);
    fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return p;
  }

  // Starts jobmesh-worker: queues ['a', 'b'], handlers {type: command}.
  // Waits until the broker lists it.
  async startWorker({ id, queues, handlers, concurrency = 2 }) {
    const args = ['--broker', this.listenUrl, '--queue', queues.join(','), '--concurrency',
      String(concurrency), '--worker-id', id, '--heartbeat-ms', '200', '--log-level', 'warn'];
    for (const [type, cmd] of Object.entries(handlers)) args.push('--handler', `${type}=${cmd}`);
    const env = { JOBMESH_TEST_DIR: this.dir };
    if (this.workerToken) env.JOBMESH_TOKEN = this.workerToken;
    const w = new Proc(`jobmesh-worker ${id}`, path.join(binDir, 'jobmesh-worker'), args, env);
    this.workers.push(w);
    await waitFor(async () => {
      if (!w.running) throw new Error(`worker exited (${w.code ?? w.signal})\n${w.logs()}`);
      const list = (await this.api('GET', '/v1/workers')).workers || [];
      return list.some((x) => x.id === id);
    }, `worker ${id} to be listed by GET /v1/workers`);
    return w;
  }

  // One API call; resolves with the parsed body, throws on a non-2xx or
  // when no answer came within API_TIMEOUT_MS.
  async api(method, p, body) {
    const headers = body === undefined ? {} : { 'Content-Type': 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const res = await fetch(`${this.httpUrl}${p}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    }).catch((e) => {
      throw new Error(`${method} ${p}: no answer: ${e.message}`);
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return json;
  }

  async queueCounts(name) {
    const q = ((await this.api('GET', '/v1/queues')).queues || []).find((x) => x.name === name);
    return q ? q.counts : null;
  }

  logs() {
    return [this.broker, ...this.workers].filter(Boolean).map((p) => p.logs()).join('\n');
  }

  // Stops every process (workers first, so they drain against a live
  // broker), then removes the temp dir.
  async close() {
    await Promise.all(this.workers.map((w) => w.stop('SIGTERM', 10000)));
    if (this.broker) await this.broker.stop('SIGTERM', 10000);
    fs.rmSync(this.dir, { recursive: true, force: true });
    tempDirs.delete(this.dir);
  }
}
