// The JS client (client/js, npm "jobmesh") loaded as ES modules in a real
// browser (Debian's chromium through playwright-core) and used against a
// real jobmesh-broker with --auth and a real jobmesh-worker: submit, wait
// with progress, iterate events, a batch and a refused token, all through
// the browser's own fetch and streams (the Node tests cover Node's).
//
// The broker sends no CORS headers, so a browser app uses it from its own
// origin (a page it serves, or a reverse proxy in front of both). Here the
// test page and the client's files are answered from disk by the browser's
// request interception on the broker's origin (/jsclient-test/...); every
// /v1 request the client makes goes to the broker itself.
//
// Every wait polls a condition to a deadline; every process is stopped by
// PID (lib/stack.mjs). Run: node --test tests/browser/jsclient.test.mjs
// (ctest: browser_jsclient).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Stack, sourceDir, waitFor } from './lib/stack.mjs';
import { openBrowser } from './lib/browser.mjs';

const CLIENT_SRC = path.join(sourceDir, 'client/js/src');
const PREFIX = '/jsclient-test/';
const ADMIN = 'ops-secret-js';

let stack;
let browser;
let page;

before(async () => {
  stack = new Stack('jm-jsclient');
  stack.token = ADMIN;
  stack.workerToken = 'runner-secret-js';
  // convert: reports page 1 of 3, waits for the gate file "gate-ID", reports
  // page 2, waits for "gate2-ID", then page 3 (each wait bounded: 60 s), so
  // the test knows the page subscribed before page 2 is reported.
  const gate = (name) => [
    'i=0',
    `while [ ! -e "$JOBMESH_TEST_DIR/${name}-$JOBMESH_JOB_ID" ]; do`,
    '  i=$((i + 1)); [ "$i" -gt 600 ] && { echo "gate never opened" >&2; exit 1; }',
    '  sleep 0.1',
    'done',
  ];
  const convert = stack.handler('convert.sh', [
    'cat >/dev/null',
    'echo "progress 1 3 converting page 1" >&3',
    ...gate('gate'),
    'echo "progress 2 3 converting page 2" >&3',
    ...gate('gate2'),
    'echo "progress 3 3 converting page 3" >&3',
    'printf \'{"job":"%s","pages":3}\\n\' "$JOBMESH_JOB_ID"',
  ].join('\n'));
  const quick = stack.handler('quick.sh', 'payload=$(cat); echo "progress 1 1 did $payload" >&3; printf "done %s" "$payload"');
  const auth = stack.authFile([
    { name: 'ops', secret: ADMIN, role: 'admin' },
    { name: 'runner', secret: 'runner-secret-js', role: 'worker', queues: ['*'] },
  ]);
  await stack.startBroker(['--auth', auth]);
  await stack.startWorker({ id: 'w-js', queues: ['docs', 'quick'], handlers: { convert, quick }, concurrency: 2 });
  browser = await openBrowser();
  page = await browser.newPage();
  // The test page and the client's modules, from disk, on the broker's
  // origin; anything else under the prefix is a 404 (so a wrong import
  // fails loudly).
  await page.route(`${stack.httpUrl}${PREFIX}**`, async (route) => {
    const rel = new URL(route.request().url()).pathname.slice(PREFIX.length);
    if (rel === 'index.html') {
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>jobmesh client</title><p>client test</p>' });
      return;
    }
    const file = path.join(CLIENT_SRC, path.normalize(rel).replace(/^(\.\.[/\\])+/, ''));
    if (rel.endsWith('.js') && file.startsWith(CLIENT_SRC) && fs.existsSync(file)) {
      await route.fulfill({ status: 200, contentType: 'text/javascript', body: fs.readFileSync(file) });
    } else {
      await route.fulfill({ status: 404, contentType: 'text/plain', body: `no ${rel}` });
    }
  });
  await page.goto(`${stack.httpUrl}${PREFIX}index.html`);
  // Loads the package's entry point as a browser would (index.js pulls in
  // serve.js too, which must not need node: modules to load).
  await page.evaluate(async (prefix) => {
    window.jobmesh = await import(`${prefix}index.js`);
  }, PREFIX);
});

after(async () => {
  if (browser) await browser.close();
  if (stack) {
    if (process.exitCode) console.error(stack.logs());
    await stack.close();
  }
});

function pageErrors() {
  return browser.problems.filter((p) => p.startsWith('pageerror'));
}

async function sseSubscribers() {
  const res = await fetch(`${stack.httpUrl}/metrics`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  const m = (await res.text()).match(/^jobmesh_event_subscribers (\d+)/m);
  return m ? Number(m[1]) : -1;
}

test('in the browser the client submits and waits with progress until the result', async () => {
  const base = await sseSubscribers();
  // Submit and wait inside the page; the test side opens the handler's gate
  // once the page's wait() has subscribed (the broker counts the stream).
  const running = page.evaluate(async (token) => {
    const jm = new window.jobmesh.Client({ url: location.origin, token, timeout: 20000 });
    const id = await jm.submit('docs', 'convert', { file: 'report.pdf' });
    window.convertId = id;
    const progress = [];
    window.convertProgress = progress;
    const result = await jm.wait(id, { timeout: 60000, onProgress: (p) => { progress.push(p); } });
    const job = await jm.get(id);
    return { id, result, progress, state: job.state };
  }, ADMIN);
  const id = await waitFor(() => page.evaluate(() => window.convertId), 'the page to submit the job');
  await waitFor(async () => (await sseSubscribers()) > base, "the page's wait() to subscribe to the job's events");
  fs.writeFileSync(path.join(stack.dir, `gate-${id}`), '');
  await waitFor(() => page.evaluate(() => window.convertProgress.some((p) => p.done === 2)),
    "the page's wait() to report page 2's progress");
  fs.writeFileSync(path.join(stack.dir, `gate2-${id}`), '');
  const out = await running;

  assert.match(out.id, /^\d+$/);
  assert.equal(out.state, 'completed');
  assert.deepEqual(JSON.parse(out.result), { job: out.id, pages: 3 });
  // Page 1 may be reported before wait() subscribed, and the worker may
  // fold page 3's report into the job's end; page 2's came while the job
  // was held, and reports only move forward.
  assert.ok(out.progress.some((p) => p.done === 2 && p.total === 3 && p.message === 'converting page 2'),
    JSON.stringify(out.progress));
  assert.ok(out.progress.every((p, i) => p.total === 3 && (i === 0 || p.done >= out.progress[i - 1].done)),
    JSON.stringify(out.progress));
  assert.deepEqual(pageErrors(), []);
});

test('in the browser the client iterates a queue\'s events from submit to completion', async () => {
  const out = await page.evaluate(async (token) => {
    const jm = new window.jobmesh.Client({ url: location.origin, token, timeout: 20000 });
    const ctl = new AbortController();
    const seen = [];
    let id = null;
    let submitted = null;
    const deadline = setTimeout(() => ctl.abort(new Error('no completion within 30 s')), 30000);
    try {
      for await (const ev of jm.events({
        queue: 'quick', signal: ctl.signal,
        // Subscribed: submit now, and every change of the job is on this stream.
        onOpen: () => { if (!submitted) submitted = jm.submit('quick', 'quick', 'item-7').then((x) => { id = x; }); },
      })) {
        seen.push({ kind: ev.kind, job: String(ev.data?.job_id ?? ''), state: ev.data?.state ?? null, id: ev.id });
        await submitted;
        if (ev.kind === 'job_state' && String(ev.data.job_id) === id && ev.data.state === 'completed') break;
      }
    } finally {
      clearTimeout(deadline);
    }
    return { id, seen, result: await jm.result(id) };
  }, ADMIN);

  const mine = out.seen.filter((e) => e.job === out.id);
  const states = mine.filter((e) => e.kind === 'job_state').map((e) => e.state);
  assert.deepEqual(states, ['pending', 'active', 'completed'], JSON.stringify(out.seen));
  // Every event has an id the client keeps for Last-Event-ID, increasing.
  const ids = mine.map((e) => Number(e.id));
  assert.ok(ids.every((x, i) => Number.isInteger(x) && (i === 0 || x > ids[i - 1])), JSON.stringify(ids));
  assert.equal(out.result, 'done item-7');
  assert.deepEqual(pageErrors(), []);
});

test('in the browser the client waits for a batch and a wrong token is refused', async () => {
  const out = await page.evaluate(async (token) => {
    const { Client, UnauthorizedError } = window.jobmesh;
    const jm = new Client({ url: location.origin, token, timeout: 20000 });
    const batch = await jm.submitBatch(['a', 'b', 'c', 'd'].map((p) => ({ queue: 'quick', type: 'quick', payload: p })));
    const final = await jm.waitBatch(batch.id, { timeout: 30000 });
    const bad = new Client({ url: location.origin, token: 'not-a-token' });
    let refused = null;
    try {
      await bad.submit('quick', 'quick', 'x');
    } catch (e) {
      refused = { unauthorized: e instanceof UnauthorizedError, name: e.name, message: e.message };
    }
    return { batch, final, refused };
  }, ADMIN);
  assert.equal(out.batch.jobIds.length, 4);
  assert.equal(out.final.state, 'completed');
  assert.equal(out.final.completed, 4);
  assert.ok(out.refused && out.refused.unauthorized, JSON.stringify(out.refused));
  assert.match(out.refused.message, /token not recognised/);
  // The refused submit stored nothing.
  const counts = (await stack.api('GET', '/v1/queues')).queues.find((q) => q.name === 'quick').counts;
  assert.equal(counts.completed + counts.pending + counts.active, 5);
  assert.deepEqual(pageErrors(), []);
});
