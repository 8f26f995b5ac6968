// The dashboard in a real browser (Debian's chromium through playwright-core)
// against a real jobmesh-broker serving HTTP on 127.0.0.1 and real
// jobmesh-worker processes running exec handlers. Every wait polls a
// condition to a deadline; every process is stopped by PID (lib/stack.mjs).
//
// Run: node --test tests/browser/ (ctest runs it as browser_dashboard).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Stack, waitFor } from './lib/stack.mjs';
import { openBrowser } from './lib/browser.mjs';

const STATES = ['pending', 'delayed', 'active', 'completed', 'failed', 'cancelled'];
const UI_MS = 30000; // how long the page may take to show a change

let stack;
let browser;
let page;
const handlers = {};

before(async () => {
  stack = new Stack('jm-dash-test');
  // ok: reports progress on fd 3 and returns compact JSON naming the job;
  // a payload with "big" in it gets a result of 5,000 more characters.
  handlers.ok = stack.handler('ok.sh', [
    'payload=$(cat)',
    'echo "progress 1 2 reading job $JOBMESH_JOB_ID" >&3',
    'pad=""',
    'case "$payload" in *big*) pad=$(head -c 5000 /dev/zero | tr "\\\\0" x);; esac',
    'echo "progress 2 2 wrote job $JOBMESH_JOB_ID" >&3',
    'printf \'{"job":"%s","ok":true,"pad":"%s","end":"END-OF-RESULT"}\\n\' "$JOBMESH_JOB_ID" "$pad"',
  ].join('\n'));
  // gated: items above 15 wait for the file "gate" (bounded: 60 s), so the
  // test sees the batch's bar stop at 15/30 and then move on to 30/30.
  handlers.gated = stack.handler('gated.sh', [
    'n=$(sed -n \'s/.*"n":\\([0-9]*\\).*/\\1/p\')',
    'echo "progress 1 2 rendering item $n" >&3',
    'if [ "$n" -gt 15 ]; then',
    '  i=0',
    '  while [ ! -e "$JOBMESH_TEST_DIR/gate" ]; do',
    '    i=$((i + 1)); [ "$i" -gt 600 ] && { echo "gate never opened" >&2; exit 1; }',
    '    sleep 0.1',
    '  done',
    'fi',
    'echo "progress 2 2 rendered item $n" >&3',
    'echo "item $n"',
  ].join('\n'));
  // flaky: fails permanently (exit 100: dead-lettered at once) the first
  // time it sees a job, succeeds on the retry.
  handlers.flaky = stack.handler('flaky.sh', [
    'cat >/dev/null',
    'marker="$JOBMESH_TEST_DIR/flaky-$JOBMESH_JOB_ID"',
    'if [ ! -e "$marker" ]; then',
    '  : >"$marker"',
    '  echo "upstream answered 503 for job $JOBMESH_JOB_ID" >&2',
    '  exit 100',
    'fi',
    'echo "charged on retry"',
  ].join('\n'));
  await stack.startBroker();
  await stack.startWorker({ id: 'w-mail', queues: ['mail'], handlers: { 'mail.send': handlers.ok } });
  await stack.startWorker({ id: 'w-render', queues: ['render'], handlers: { render: handlers.gated }, concurrency: 3 });
  await stack.startWorker({ id: 'w-billing', queues: ['billing'], handlers: { charge: handlers.flaky } });
  await stack.startWorker({ id: 'w-bulk', queues: ['bulk'], handlers: { noop: stack.handler('noop.sh', 'cat >/dev/null') }, concurrency: 4 });
  browser = await openBrowser();
  page = await browser.newPage();
});

after(async () => {
  if (browser) await browser.close();
  if (stack) {
    if (process.exitCode) console.error(stack.logs());
    await stack.close();
  }
});

function submit(queue, type, job = {}) {
  return stack.api('POST', `/v1/queues/${queue}/jobs`, { type, ...job });
}

async function jobState(id) {
  return (await stack.api('GET', `/v1/jobs/${id}`)).state;
}

// The numbers a queue card shows, by state.
async function cardCounts(queue) {
  return page.evaluate(({ queue, states }) => {
    const card = document.querySelector(`.queue-card[data-queue="${queue}"]`);
    if (!card) return null;
    const out = {};
    for (const s of states) out[s] = Number(card.querySelector(`dd[data-state="${s}"]`).textContent.replace(/,/g, ''));
    return out;
  }, { queue, states: STATES });
}

function pageErrors() {
  return browser.problems.filter((p) => p.startsWith('pageerror'));
}

// Waits until every queue card shows exactly the broker's counts.
async function assertCardsMatchBroker() {
  await waitFor(async () => {
    const queues = (await stack.api('GET', '/v1/queues')).queues;
    for (const q of queues) {
      const shown = await cardCounts(q.name);
      for (const s of STATES) if (!shown || shown[s] !== q.counts[s]) return false;
    }
    return queues.length > 0;
  }, 'every queue card to show the counts GET /v1/queues gives', { timeoutMs: UI_MS });
}

test('the overview lists every queue with the right counts and marks a queue with no workers', async () => {
  for (let i = 0; i < 3; i++) await submit('ingest', 'scan', { payload: `doc ${i}` });
  const mailIds = [];
  for (let i = 0; i < 4; i++) mailIds.push((await submit('mail', 'mail.send', { data: { to: `u${i}@example.com` } })).id);
  await waitFor(async () => (await stack.queueCounts('mail'))?.completed === 4, 'the 4 mail jobs to complete');

  await page.goto(`${stack.httpUrl}/`);
  await waitFor(async () => {
    const ingest = await cardCounts('ingest');
    const mail = await cardCounts('mail');
    return ingest?.pending === 3 && mail?.completed === 4 && mail.pending === 0;
  }, 'the cards to show ingest pending 3 and mail completed 4', { timeoutMs: UI_MS });
  await assertCardsMatchBroker();

  const ingest = page.locator('.queue-card[data-queue="ingest"]');
  assert.equal(await ingest.getAttribute('class'), 'queue-card no-workers');
  assert.match(await ingest.locator('.alert').innerText(), /No workers for this queue: 3 jobs are waiting/);
  // The worker list is read beside the counts and may land a moment later
  // (a loaded machine): once the mail card counts its worker, no alert.
  await waitFor(async () => (await page.locator('.queue-card[data-queue="mail"] .workers-online').innerText()).startsWith('1 '),
    'the mail card to count its one worker', { timeoutMs: UI_MS });
  assert.equal(await page.locator('.queue-card[data-queue="mail"] .alert').isVisible(), false);
  // The chart counted the completions it saw or none, never more.
  assert.equal(await page.locator('.queue-card[data-queue="mail"] svg.spark').count(), 1);
  assert.deepEqual(pageErrors(), []);
});

test('a batch of 30 jobs reporting progress moves its bar and ends at 30/30', async () => {
  await page.goto(`${stack.httpUrl}/#/batches`);
  await page.locator('h1', { hasText: 'Batches' }).waitFor();
  const jobs = Array.from({ length: 30 }, (_, i) => ({ queue: 'render', type: 'render', data: { n: i + 1 } }));
  const { id } = await stack.api('POST', '/v1/batches', { jobs });
  const bar = page.locator(`tr[data-batch="${id}"] [role="progressbar"]`);

  // Items 1-15 finish; 16-30 wait for the gate: the bar must stand at 15.
  await waitFor(async () => (await bar.count()) === 1 && (await bar.getAttribute('data-done')) === '15',
    `batch ${id}'s bar to reach 15 done while items 16-30 wait`, { timeoutMs: UI_MS });
  assert.equal(await bar.getAttribute('data-total'), '30');
  assert.equal(await bar.getAttribute('aria-valuenow'), '15');
  // Items 16-18 were just leased (the operation is their type until their
  // first progress message arrives, which the gate does not hold back).
  await waitFor(async () => /render(ing|ed) item \d+/.test(await page.locator(`tr[data-batch="${id}"] .op`).innerText()),
    `batch ${id}'s current operation to show a progress message`, { timeoutMs: UI_MS });
  const running = page.locator('section.panel').filter({ has: page.locator('h2', { hasText: /^Running$/ }) });
  assert.equal(await running.locator(`tr[data-batch="${id}"]`).count(), 1);

  fs.writeFileSync(path.join(stack.dir, 'gate'), '');
  await waitFor(async () => (await bar.getAttribute('data-done')) === '30',
    `batch ${id}'s bar to reach 30 done`, { timeoutMs: UI_MS });
  await waitFor(async () => (await page.locator(`tr[data-batch="${id}"] .bar-label`).innerText()) === '30 done, 0 failed, of 30',
    'the bar label to read 30 done, 0 failed, of 30', { timeoutMs: UI_MS });
  await waitFor(async () => (await page.locator(`tr[data-batch="${id}"] .badge`).innerText()) === 'completed',
    `batch ${id} to show completed`, { timeoutMs: UI_MS });

  // Its own page (deep link) agrees.
  await page.goto(`${stack.httpUrl}/#/batches/${id}`);
  const big = page.locator('.batch-detail [role="progressbar"]');
  await waitFor(async () => (await big.getAttribute('data-done')) === '30' && (await big.getAttribute('data-total')) === '30',
    'the batch page to show 30/30', { timeoutMs: UI_MS });
  assert.deepEqual(pageErrors(), []);
});

test('a dead-lettered job is retried from the page and completes', async () => {
  const { id } = await submit('billing', 'charge', { data: { amount: 1299, currency: 'EUR' } });
  await waitFor(async () => (await jobState(id)) === 'failed', `job ${id} to be dead-lettered`);

  await page.goto(`${stack.httpUrl}/#/dead/billing`);
  const row = page.locator(`tr[data-key="${id}"]`);
  await row.waitFor({ timeout: UI_MS });
  assert.match(await row.innerText(), new RegExp(`upstream answered 503 for job ${id}`));
  assert.match(await row.innerText(), /1\/3/);
  // The dead letter shows the payload it was given, so it can be inspected.
  assert.match(await row.innerText(), /"amount":\s*1299/);
  await page.getByRole('button', { name: `Retry job ${id}` }).click();

  await waitFor(async () => (await jobState(id)) === 'completed', `job ${id} to complete after the retry`);
  // The dead-letter list drops it by itself (live), and the job page shows
  // it completed with its result.
  await row.waitFor({ state: 'detached', timeout: UI_MS });
  await page.goto(`${stack.httpUrl}/#/jobs/${id}`);
  await page.locator('.job-state .badge', { hasText: 'completed' }).waitFor({ timeout: UI_MS });
  await page.locator('pre.payload', { hasText: 'charged on retry' }).waitFor({ timeout: UI_MS });
  assert.deepEqual(pageErrors(), []);
});

test('the job search finds a job by id, a job is cancelled from its page, and a missing id is said so', async () => {
  const { id } = await submit('mail', 'mail.send', { data: { to: 'search@example.com' } });
  await waitFor(async () => (await jobState(id)) === 'completed', `job ${id} to complete`);
  await page.goto(`${stack.httpUrl}/#/jobs`);
  await page.locator('#job-id').focus();
  await page.keyboard.type(id);
  await page.keyboard.press('Enter');
  await waitFor(async () => new URL(page.url()).hash === `#/jobs/${id}`, `the URL to become #/jobs/${id}`, { timeoutMs: UI_MS });
  await page.locator('h1', { hasText: `Job #${id}` }).waitFor({ timeout: UI_MS });
  await page.locator('.job-state .badge', { hasText: 'completed' }).waitFor({ timeout: UI_MS });
  assert.match(await page.locator('.facts').innerText(), /mail\.send/);
  // Its payload (the JSON it was submitted with), pretty-printed.
  await page.locator('pre.payload', { hasText: '"to": "search@example.com"' }).waitFor({ timeout: UI_MS });
  // The handler's compact JSON result is shown pretty-printed.
  await page.locator('pre.payload', { hasText: `"job": "${id}",\n  "ok": true` }).waitFor({ timeout: UI_MS });

  // A long result is cut, and "Show all" shows the rest.
  const big = (await submit('mail', 'mail.send', { payload: 'big report' })).id;
  await waitFor(async () => (await jobState(big)) === 'completed', `job ${big} to complete`);
  await page.goto(`${stack.httpUrl}/#/jobs/${big}`);
  const showAll = page.getByRole('button', { name: /Show all \(5,\d{3} characters\)/ });
  await showAll.waitFor({ timeout: UI_MS });
  assert.equal(await page.locator('pre.payload', { hasText: 'END-OF-RESULT' }).count(), 0);
  await showAll.press('Enter');
  await page.locator('pre.payload', { hasText: 'END-OF-RESULT' }).waitFor({ timeout: UI_MS });

  // A job no worker takes is cancelled from its page.
  const held = (await submit('hold', 'wait', { payload: 'never run' })).id;
  await page.goto(`${stack.httpUrl}/#/jobs/${held}`);
  await page.locator('.job-state .badge', { hasText: 'pending' }).waitFor({ timeout: UI_MS });
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('.job-state .badge', { hasText: 'cancelled' }).waitFor({ timeout: UI_MS });
  assert.equal(await jobState(held), 'cancelled');
  assert.equal(await page.getByRole('button', { name: 'Cancel' }).count(), 0);

  await page.goto(`${stack.httpUrl}/#/jobs`);
  await page.locator('#job-id').fill('987654321');
  await page.locator('#job-id').press('Enter');
  await page.locator('[role="status"]', { hasText: 'No job #987654321' }).waitFor({ timeout: UI_MS });
  assert.deepEqual(pageErrors(), []);
});

test('a busy event stream is aggregated: the page does not grow with the events it sees', async (t) => {
  await submit('bulk', 'noop', { payload: 'warm-up' });
  await page.goto(`${stack.httpUrl}/`);
  await waitFor(async () => (await cardCounts('bulk'))?.completed === 1, 'the bulk card to show its first job', { timeoutMs: UI_MS });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const heap = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { metrics } = await cdp.send('Performance.getMetrics');
    return metrics.find((m) => m.name === 'JSHeapUsedSize').value;
  };
  const before = await page.evaluate(() => window.jobmeshStats());
  const heapBefore = await heap();

  const JOBS = 2000;
  for (let i = 0; i < JOBS; i += 500) {
    await stack.api('POST', '/v1/queues/bulk/jobs', Array.from({ length: 500 }, (_, k) => ({ type: 'noop', payload: `job ${i + k}` })));
  }
  await waitFor(async () => (await cardCounts('bulk'))?.completed === JOBS + 1,
    `the bulk card to show ${JOBS + 1} completed`, { timeoutMs: 180000, intervalMs: 200 });
  const afterStats = await page.evaluate(() => window.jobmeshStats());
  const heapAfter = await heap();
  await cdp.detach();
  t.diagnostic(`${afterStats.events - before.events} events; DOM nodes ${before.domNodes} -> ${afterStats.domNodes}; ` +
    `JS heap ${Math.round(heapBefore / 1024)} -> ${Math.round(heapAfter / 1024)} KiB`);

  // Each job is at least pending -> active -> completed on the stream.
  assert.ok(afterStats.events - before.events >= 3 * JOBS, `events seen: ${afterStats.events - before.events}`);
  assert.ok(Math.abs(afterStats.domNodes - before.domNodes) <= 10,
    `DOM nodes went from ${before.domNodes} to ${afterStats.domNodes}`);
  assert.ok(afterStats.jobsCached <= 300, `jobs cached: ${afterStats.jobsCached}`);
  assert.ok(heapAfter - heapBefore < 4 * 1024 * 1024,
    `JS heap grew by ${Math.round((heapAfter - heapBefore) / 1024)} KiB over ${JOBS} jobs`);
  await assertCardsMatchBroker();

  // The job list filters by queue, newest first, and pages on.
  await page.goto(`${stack.httpUrl}/#/jobs?queue=bulk&state=completed`);
  await page.locator('[role="status"]', { hasText: 'Page 1: 50 jobs, newest first.' }).waitFor({ timeout: UI_MS });
  const ids = async () => (await page.locator('table.jobs tbody tr td:first-child').allInnerTexts()).map((x) => Number(x.slice(1)));
  const first = await ids();
  assert.equal(first.length, 50);
  assert.deepEqual(first, [...first].sort((a, b) => b - a));
  assert.equal(await page.locator('#f-queue').inputValue(), 'bulk');
  await page.getByRole('button', { name: 'Next page' }).click();
  await page.locator('[role="status"]', { hasText: 'Page 2: 50 jobs, newest first.' }).waitFor({ timeout: UI_MS });
  const second = await ids();
  assert.ok(second[0] < first[49], `page 2 starts at ${second[0]}, page 1 ended at ${first[49]}`);
  assert.deepEqual(pageErrors(), []);
});

test('the page shows it is disconnected while the broker restarts, then recovers with the right counts', async () => {
  await page.goto(`${stack.httpUrl}/`);
  const banner = page.locator('#banner');
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: UI_MS });
  assert.equal(await banner.isVisible(), false);

  await stack.stopBroker('SIGTERM');
  await banner.waitFor({ state: 'visible', timeout: UI_MS });
  assert.match(await banner.innerText(), /Disconnected from the broker — reconnecting/);
  assert.equal(await page.locator('#conn').innerText(), 'offline');

  await stack.startBroker();
  await banner.waitFor({ state: 'hidden', timeout: UI_MS });
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: UI_MS });

  // Changes after the restart arrive live, and every card ends right.
  await submit('ingest', 'scan', { payload: 'after restart' });
  await waitFor(async () => (await cardCounts('ingest'))?.pending === 4,
    'the ingest card to show the job submitted after the restart', { timeoutMs: UI_MS });
  await assertCardsMatchBroker();
  assert.deepEqual(pageErrors(), []);
});
