// The dashboard against a broker with --auth, in a real browser (Debian's
// chromium through playwright-core), with real jobmesh-worker processes
// presenting a worker token: the page asks for a token once per tab, shows
// who it acts as, and offers only what the token's role may do (GET
// /v1/whoami); what it hides the broker refuses anyway (403). An admin's
// "Retry all" revives every dead-lettered job in one request, an admin's
// "Remove" (after a confirm) and "Remove all" drop dead letters for good, and finished
// batches are listed after a reload (GET /v1/batches keeps the recent ones).
//
// Every wait polls a condition to a deadline; every process is stopped by
// PID (lib/stack.mjs). Run: node --test tests/browser/dashboard_auth.test.mjs
// (ctest: browser_dashboard_auth).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Stack, waitFor } from './lib/stack.mjs';
import { fetchFromPage, openBrowser } from './lib/browser.mjs';

const UI_MS = 30000;
const TOKENS = [
  { name: 'ops', secret: 'ops-secret-1', role: 'admin' },
  { name: 'look', secret: 'look-secret-2', role: 'viewer', queues: ['billing', 'hold'] },
  { name: 'shop', secret: 'shop-secret-3', role: 'producer', queues: ['shop.*'] },
  { name: 'runner', secret: 'runner-secret-4', role: 'worker', queues: ['*'] },
];
const secret = (name) => TOKENS.find((t) => t.name === name).secret;

let stack;
let browser;

before(async () => {
  stack = new Stack('jm-dash-auth');
  stack.token = secret('ops');
  stack.workerToken = secret('runner');
  // flaky: fails permanently (exit 100: dead-lettered at once) the first
  // time it sees a job, succeeds on the retry.
  const flaky = stack.handler('flaky.sh', [
    'cat >/dev/null',
    'marker="$JOBMESH_TEST_DIR/flaky-$JOBMESH_JOB_ID"',
    'if [ ! -e "$marker" ]; then',
    '  : >"$marker"',
    '  echo "card declined for job $JOBMESH_JOB_ID" >&2',
    '  exit 100',
    'fi',
    'echo "charged on retry"',
  ].join('\n'));
  const ok = stack.handler('ok.sh', 'cat >/dev/null; echo "progress 1 1 done" >&3; echo ok');
  await stack.startBroker(['--auth', stack.authFile(TOKENS)]);
  await stack.startWorker({ id: 'w-billing', queues: ['billing'], handlers: { charge: flaky } });
  await stack.startWorker({ id: 'w-render', queues: ['render', 'shop.orders'], handlers: { render: ok, order: ok }, concurrency: 3 });
  browser = await openBrowser();
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

async function jobState(id) {
  return (await stack.api('GET', `/v1/jobs/${id}`)).state;
}

async function deadLettered(count, data = {}) {
  const ids = [];
  for (let i = 0; i < count; i++) {
    ids.push((await stack.api('POST', '/v1/queues/billing/jobs', { type: 'charge', data: { ...data, i } })).id);
  }
  for (const id of ids) await waitFor(async () => (await jobState(id)) === 'failed', `job ${id} to be dead-lettered`);
  return ids;
}

// A new tab (so an empty sessionStorage) that counts the token prompts it
// shows, opened at hash; answers the first prompt with the token of name.
async function signedInPage(name, hash = '#/') {
  const page = await browser.context.newPage();
  await page.addInitScript(() => {
    window.jmPrompts = 0;
    const show = HTMLDialogElement.prototype.showModal;
    HTMLDialogElement.prototype.showModal = function showModal() {
      window.jmPrompts += 1;
      return show.call(this);
    };
  });
  await page.goto(`${stack.httpUrl}/${hash}`);
  await page.locator('#token-dialog[open]').waitFor({ timeout: UI_MS });
  await page.locator('#token-input').fill(secret(name));
  await page.getByRole('button', { name: 'Use token' }).click();
  await page.locator('#role', { hasText: `${name} (` }).waitFor({ timeout: UI_MS });
  return page;
}

async function prompts(page) {
  return page.evaluate(() => window.jmPrompts);
}


test('the page asks a viewer for a token once, hides retry and cancel, and the broker refuses them', async () => {
  const [dead] = await deadLettered(1, { who: 'viewer test' });
  const held = (await stack.api('POST', '/v1/queues/hold/jobs', { type: 'wait', payload: 'no worker' })).id;
  const page = await signedInPage('look');
  assert.equal(await page.locator('#role').innerText(), 'look (viewer: billing, hold)');
  // Only the viewer's queues are listed (the broker filters them).
  await page.locator('.queue-card[data-queue="billing"]').waitFor({ timeout: UI_MS });
  await page.locator('.queue-card[data-queue="hold"]').waitFor({ timeout: UI_MS });
  assert.equal(await page.locator('.queue-card[data-queue="render"]').count(), 0);
  // A viewer may read workers.
  assert.equal(await page.locator('#nav a[data-nav="workers"]').isVisible(), true);

  await page.goto(`${stack.httpUrl}/#/dead/billing`);
  const row = page.locator(`tr[data-key="${dead}"]`);
  await row.waitFor({ timeout: UI_MS });
  assert.match(await row.innerText(), new RegExp(`card declined for job ${dead}`));
  assert.equal(await page.getByRole('button', { name: /^Retry/ }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Retry all' }).isVisible(), false);
  assert.equal(await page.getByRole('button', { name: /^Remove/ }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Remove all' }).isVisible(), false);

  await page.goto(`${stack.httpUrl}/#/jobs/${held}`);
  await page.locator('.job-state .badge', { hasText: 'pending' }).waitFor({ timeout: UI_MS });
  assert.equal(await page.getByRole('button', { name: 'Cancel' }).count(), 0);
  await page.goto(`${stack.httpUrl}/#/jobs/${dead}`);
  await page.locator('.job-state .badge', { hasText: 'failed' }).waitFor({ timeout: UI_MS });
  assert.equal(await page.getByRole('button', { name: 'Retry' }).count(), 0);

  // What the page hides, the broker refuses, and nothing changes.
  for (const [method, path] of [['POST', `/v1/jobs/${dead}/retry`], ['POST', '/v1/queues/billing/dead/retry'],
    ['POST', `/v1/jobs/${held}/cancel`], ['DELETE', `/v1/queues/billing/dead/${dead}`],
    ['DELETE', '/v1/queues/billing/dead']]) {
    const r = await fetchFromPage(page, method, path);
    assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'forbidden');
    assert.match(r.body.error.message, /role viewer/);
  }
  assert.equal(await jobState(dead), 'failed');
  assert.equal(await jobState(held), 'pending');

  // The token was asked for once, and a reload keeps it (this tab only).
  assert.equal(await prompts(page), 1);
  await page.reload();
  await page.locator('#role', { hasText: 'look (viewer' }).waitFor({ timeout: UI_MS });
  await page.locator('h1', { hasText: 'Job #' }).waitFor({ timeout: UI_MS });
  assert.equal(await prompts(page), 0);
  assert.equal(await page.locator('#token-dialog[open]').count(), 0);
  assert.deepEqual(pageErrors(), []);
  await page.close();
});

test("a viewer's Batches view follows a batch of its queues to the end without batch events", async () => {
  const page = await signedInPage('look', '#/batches');
  await page.locator('h1', { hasText: 'Batches' }).waitFor({ timeout: UI_MS });
  // The stream of a non-admin carries no batch events (they name no
  // queue): the page re-reads the batch as its jobs' events come.
  const b = await stack.api('POST', '/v1/batches', { jobs: [{ queue: 'billing', type: 'charge', data: { batch: 'viewer' } }] });
  const row = page.locator(`tr[data-batch="${b.id}"]`);
  await row.waitFor({ timeout: UI_MS });
  await waitFor(async () => (await row.locator('.badge').innerText()) === 'failed', `batch ${b.id} to show failed`, { timeoutMs: UI_MS });
  assert.equal(await row.locator('.bar-label').innerText(), '0 done, 1 failed, of 1');
  assert.deepEqual(pageErrors(), []);
  await page.close();
});

test('a producer sees only its queues and no Workers view', async () => {
  const id = (await stack.api('POST', '/v1/queues/shop.orders/jobs', { type: 'order', payload: 'o-1' })).id;
  await waitFor(async () => (await jobState(id)) === 'completed', `job ${id} to complete`);
  const page = await signedInPage('shop');
  await page.locator('.queue-card[data-queue="shop.orders"]').waitFor({ timeout: UI_MS });
  assert.deepEqual(await page.locator('.queue-card').evaluateAll((els) => els.map((e) => e.dataset.queue)), ['shop.orders']);
  assert.equal(await page.locator('#nav a[data-nav="workers"]').isVisible(), false);
  // Its workers are unknown to it, so the queue is not marked as having none.
  assert.equal(await page.locator('.queue-card[data-queue="shop.orders"] .alert').isVisible(), false);
  assert.equal(await page.locator('.queue-card[data-queue="shop.orders"] .workers-online').innerText(), 'not shown to this token');
  assert.equal(await prompts(page), 1);
  assert.deepEqual(pageErrors(), []);
  await page.close();
});

test('with an admin token, Retry all revives every dead-lettered job in one request and they complete', async () => {
  const ids = await deadLettered(4, { who: 'admin test' });
  const page = await signedInPage('ops', '#/dead/billing');
  assert.equal(await page.locator('#role').innerText(), 'ops (admin)');
  // Every dead-lettered job of the queue (those of the viewer test too).
  const dead = (await stack.api('GET', '/v1/queues/billing/dead')).jobs.map((j) => j.id);
  assert.ok(ids.every((id) => dead.includes(id)), `dead: ${dead}`);
  for (const id of dead) await page.locator(`tr[data-key="${id}"]`).waitFor({ timeout: UI_MS });

  const retries = [];
  page.on('request', (r) => { if (r.method() === 'POST') retries.push(new URL(r.url()).pathname); });
  await page.getByRole('button', { name: 'Retry all' }).click();
  await waitFor(async () => (await page.locator('.outcome').innerText()) === `Retried ${dead.length} jobs.`,
    `the page to say "Retried ${dead.length} jobs."`, { timeoutMs: UI_MS });
  assert.deepEqual(retries, ['/v1/queues/billing/dead/retry']);
  for (const id of dead) await waitFor(async () => (await jobState(id)) === 'completed', `job ${id} to complete after Retry all`);
  for (const id of dead) await page.locator(`tr[data-key="${id}"]`).waitFor({ state: 'detached', timeout: UI_MS });
  assert.equal(await prompts(page), 1);
  assert.deepEqual(pageErrors(), []);
  await page.close();
});

test('with an admin token, Remove takes one dead letter away after a confirm, and Remove all the rest', async () => {
  const ids = await deadLettered(3, { who: 'remove test' });
  const page = await signedInPage('ops', '#/dead/billing');
  const dead = (await stack.api('GET', '/v1/queues/billing/dead')).jobs.map((j) => j.id);
  assert.ok(ids.every((id) => dead.includes(id)), `dead: ${dead}`);
  for (const id of dead) await page.locator(`tr[data-key="${id}"]`).waitFor({ timeout: UI_MS });
  const deletes = [];
  page.on('request', (r) => { if (r.method() === 'DELETE') deletes.push(new URL(r.url()).pathname); });
  const confirms = [];
  let answer = false;
  page.on('dialog', (d) => { confirms.push(d.message()); (answer ? d.accept() : d.dismiss()).catch(() => {}); });

  // A dismissed confirm removes nothing and sends nothing.
  const [first, ...rest] = dead;
  await page.getByRole('button', { name: `Remove job ${first}` }).click();
  await waitFor(async () => confirms.length === 1, 'the confirm to be shown', { timeoutMs: UI_MS });
  assert.match(confirms[0], new RegExp(`Remove job #${first} for good\\?`));
  assert.equal(await jobState(first), 'failed');

  answer = true;
  await page.getByRole('button', { name: `Remove job ${first}` }).click();
  await waitFor(async () => (await page.locator('.outcome').innerText()) === `Job #${first} was removed.`,
    `the page to say job ${first} was removed`, { timeoutMs: UI_MS });
  await page.locator(`tr[data-key="${first}"]`).waitFor({ state: 'detached', timeout: UI_MS });
  await assert.rejects(stack.api('GET', `/v1/jobs/${first}`), / 404 /);
  for (const id of rest) assert.equal(await jobState(id), 'failed');
  // For a look at the page (JOBMESH_SCREENSHOT_DIR keeps it).
  await page.screenshot({ path: path.join(process.env.JOBMESH_SCREENSHOT_DIR ?? stack.dir, 'dead-letters-remove.png') });

  await page.getByRole('button', { name: 'Remove all' }).click();
  await waitFor(async () => (await page.locator('.outcome').innerText()) === `Removed ${rest.length} jobs.`,
    `the page to say "Removed ${rest.length} jobs."`, { timeoutMs: UI_MS });
  assert.deepEqual(deletes, [`/v1/queues/billing/dead/${first}`, '/v1/queues/billing/dead']);
  assert.equal(confirms.length, 3);
  assert.deepEqual((await stack.api('GET', '/v1/queues/billing/dead')).jobs, []);
  for (const id of rest) await assert.rejects(stack.api('GET', `/v1/jobs/${id}`), / 404 /);
  await page.locator('tr[data-key]').first().waitFor({ state: 'detached', timeout: UI_MS });
  assert.equal(await page.getByRole('button', { name: 'Remove all' }).isVisible(), false);
  assert.deepEqual(pageErrors(), []);
  await page.close();
});

test('finished batches are listed with their final counts after a page reload', async () => {
  const page = await signedInPage('ops', '#/batches');
  const done = await stack.api('POST', '/v1/batches', { jobs: Array.from({ length: 5 }, (_, i) => ({ queue: 'render', type: 'render', data: { i } })) });
  const failed = await stack.api('POST', '/v1/batches', { jobs: [{ queue: 'render', type: 'render', payload: 'a' }, { queue: 'billing', type: 'charge', payload: 'b' }] });
  for (const b of [done, failed]) {
    await waitFor(async () => (await stack.api('GET', `/v1/batches/${b.id}`)).state !== 'running', `batch ${b.id} to finish`);
  }
  // A page opened after they finished knows them only from the broker.
  await page.reload();
  const recent = page.locator('section.panel').filter({ has: page.locator('h2', { hasText: /^Recent/ }) });
  const doneBar = recent.locator(`tr[data-batch="${done.id}"] [role="progressbar"]`);
  await doneBar.waitFor({ timeout: UI_MS });
  assert.equal(await doneBar.getAttribute('data-done'), '5');
  assert.equal(await doneBar.getAttribute('data-total'), '5');
  assert.equal(await recent.locator(`tr[data-batch="${done.id}"] .badge`).innerText(), 'completed');
  const failedRow = recent.locator(`tr[data-batch="${failed.id}"]`);
  await failedRow.waitFor({ timeout: UI_MS });
  assert.equal(await failedRow.locator('.badge').innerText(), 'failed');
  assert.equal(await failedRow.locator('.bar-label').innerText(), '1 done, 1 failed, of 2');
  assert.match(await failedRow.locator('.errors').innerText(), /card declined/);
  assert.equal(await page.locator(`section.panel tr[data-batch="${done.id}"]`).count(), 1);
  assert.deepEqual(pageErrors(), []);
  await page.close();
});
