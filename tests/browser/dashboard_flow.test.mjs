// The dashboard's queue settings and schedules in a real browser (Debian's
// chromium through playwright-core) against a real broker with --auth and
// real jobmesh-worker processes: an admin pauses a queue from the page
// (its jobs wait while another queue's run on the same worker) and resumes
// it (they run), sets its active limit and rate; adds a schedule that
// shows its next run and fires, and removes it. A viewer sees the same
// settings and its queues' schedules with no control, and the broker
// refuses the requests the page hides (403), changing nothing.
//
// Every wait polls a condition to a deadline; every process is stopped by
// PID (lib/stack.mjs). Run: node --test tests/browser/dashboard_flow.test.mjs
// (ctest: browser_dashboard_flow).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Stack, waitFor } from './lib/stack.mjs';
import { fetchFromPage, openBrowser, tabWithToken } from './lib/browser.mjs';

const UI_MS = 30000;
const TOKENS = [
  { name: 'ops', secret: 'ops-secret-1', role: 'admin' },
  { name: 'look', secret: 'look-secret-2', role: 'viewer', queues: ['flow', 'other', 'sched'] },
  { name: 'runner', secret: 'runner-secret-4', role: 'worker', queues: ['*'] },
];
const secret = (name) => TOKENS.find((t) => t.name === name).secret;

let stack;
let browser;

before(async () => {
  stack = new Stack('jm-dash-flow');
  stack.token = secret('ops');
  stack.workerToken = secret('runner');
  const ok = stack.handler('ok.sh', 'cat >/dev/null; echo ok');
  await stack.startBroker(['--auth', stack.authFile(TOKENS)]);
  await stack.startWorker({ id: 'w-flow', queues: ['flow', 'other'], handlers: { t: ok }, concurrency: 2 });
  await stack.startWorker({ id: 'w-sched', queues: ['sched'], handlers: { tick: ok } });
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

// A new tab holding the token of name, opened at hash.
async function pageAs(name, hash) {
  const page = await tabWithToken(browser, secret(name));
  await page.goto(`${stack.httpUrl}/${hash}`);
  await page.locator('#role', { hasText: `${name} (` }).waitFor({ timeout: UI_MS });
  return page;
}

async function submit(queue, n) {
  const ids = [];
  for (let i = 0; i < n; i++) ids.push((await stack.api('POST', `/v1/queues/${queue}/jobs`, { type: 't', data: { i } })).id);
  return ids;
}

async function jobState(id) {
  return (await stack.api('GET', `/v1/jobs/${id}`)).state;
}

async function queueOf(name) {
  return (await stack.api('GET', '/v1/queues')).queues.find((q) => q.name === name);
}

test('an admin pauses a queue from the page, its jobs wait, Resume releases them, and limit and rate are set', async () => {
  const [first] = await submit('flow', 1);
  await waitFor(async () => (await jobState(first)) === 'completed', `job ${first} to complete`);
  const page = await pageAs('ops', '#/settings');
  const row = page.locator('table.settings tr[data-key="flow"]');
  await row.waitFor({ timeout: UI_MS });
  assert.equal(await row.locator('.badge').innerText(), 'running');
  const sent = [];
  page.on('request', (r) => { if (r.method() !== 'GET') sent.push(`${r.method()} ${new URL(r.url()).pathname}`); });

  await page.getByRole('button', { name: 'Pause queue flow' }).click();
  await waitFor(async () => (await row.locator('.badge').innerText()) === 'paused', 'the row to say paused', { timeoutMs: UI_MS });
  assert.equal((await queueOf('flow')).paused, true);
  const held = await submit('flow', 3);
  // The same worker serves "other": once its job ran, the worker has
  // fetched past the paused queue, whose jobs are still pending.
  const [other] = await submit('other', 1);
  await waitFor(async () => (await jobState(other)) === 'completed', `job ${other} of queue other to complete`);
  for (const id of held) assert.equal(await jobState(id), 'pending', `job ${id} of the paused queue`);
  // The overview marks the queue paused too.
  await page.goto(`${stack.httpUrl}/#/queues/flow`);
  await page.locator('.queue-card[data-queue="flow"] .flow-badge', { hasText: 'paused' }).waitFor({ timeout: UI_MS });
  await page.goto(`${stack.httpUrl}/#/settings`);

  await page.getByRole('button', { name: 'Resume queue flow' }).click();
  for (const id of held) await waitFor(async () => (await jobState(id)) === 'completed', `job ${id} to complete after Resume`);
  await waitFor(async () => (await row.locator('.badge').innerText()) === 'running', 'the row to say running', { timeoutMs: UI_MS });

  await page.getByRole('button', { name: 'Edit settings of queue flow' }).click();
  const form = page.getByRole('form', { name: 'Settings of flow' });
  await form.getByLabel('Active limit', { exact: true }).fill('2');
  await form.getByLabel('Rate limit', { exact: true }).fill('10');
  await form.getByLabel('rate period', { exact: true }).selectOption({ label: 'per second' });
  await form.getByRole('button', { name: 'Save' }).click();
  await waitFor(async () => /flow: max active, rate saved/.test(await page.locator('.outcome').innerText()),
    'the page to say the settings were saved', { timeoutMs: UI_MS });
  const q = await queueOf('flow');
  assert.equal(q.max_active, 2);
  assert.deepEqual(q.rate, { jobs: 10, period_ms: 1000 });
  assert.deepEqual(q.own_settings.sort(), ['max_active', 'rate']);
  await waitFor(async () => (await row.locator('td').nth(3).innerText()) === '10/s', 'the row to show the rate', { timeoutMs: UI_MS });
  assert.equal(await row.locator('td').nth(2).innerText(), '2');
  assert.match(await row.locator('td').nth(4).innerText(), /default/); // max attempts: the broker's
  // Retention per finished state: dead letters are kept until retried or
  // removed by default; completed jobs 100,000 for 7 days.
  assert.match(await row.locator('td').nth(6).innerText(), /^100,000, for 7d/);
  assert.match(await row.locator('td').nth(7).innerText(), /^unlimited, no age limit/);
  // The group limit and a keep count set from the form show as the queue's own.
  await page.getByRole('button', { name: 'Edit settings of queue flow' }).click();
  await form.getByLabel('Group limit', { exact: true }).fill('3');
  await form.getByLabel('Keep failed', { exact: true }).fill('50');
  await form.getByRole('button', { name: 'Save' }).click();
  await waitFor(async () => /flow: group limit, keep failed saved/.test(await page.locator('.outcome').innerText()),
    'the page to say the group limit and keep failed were saved', { timeoutMs: UI_MS });
  await waitFor(async () => (await row.locator('td').nth(5).innerText()) === '3', 'the row to show the group limit', { timeoutMs: UI_MS });
  assert.match(await row.locator('td').nth(7).innerText(), /^50, no age limit$/);
  const after = await queueOf('flow');
  assert.equal(after.group_limit, 3);
  assert.equal(after.keep_failed, 50);
  assert.equal(after.keep_completed, 100000);
  assert.deepEqual(sent, ['POST /v1/queues/flow/pause', 'POST /v1/queues/flow/resume', 'PATCH /v1/queues/flow/settings',
    'PATCH /v1/queues/flow/settings']);
  assert.deepEqual(pageErrors(), []);
  await page.close();
});

test('a schedule added from the page shows its next run, fires, and is removed', async () => {
  const page = await pageAs('ops', '#/schedules');
  const form = page.getByRole('form', { name: 'Add a schedule' });
  await form.getByLabel('Name', { exact: true }).fill('tick');
  await form.getByLabel('Runs', { exact: true }).selectOption('every');
  await form.getByLabel('Interval or expression', { exact: true }).fill('2s');
  await form.getByLabel('Queue', { exact: true }).fill('sched');
  await form.getByLabel('Job type', { exact: true }).fill('tick');
  await form.getByLabel('Payload', { exact: true }).fill('{"from":"the page"}');
  const before = Date.now();
  await form.getByRole('button', { name: 'Add schedule' }).click();
  const row = page.locator('table.schedules tr[data-key="tick"]');
  await row.waitFor({ timeout: UI_MS });
  const stored = (await stack.api('GET', '/v1/schedules/tick'));
  assert.equal(stored.schedule, '@every 2s');
  assert.equal(stored.queue, 'sched');
  assert.equal(stored.payload, '{"from":"the page"}');
  assert.ok(stored.next_run_us / 1000 > before - 1000, `next run ${stored.next_run_us}`);
  assert.equal(await row.locator('td').nth(1).innerText(), 'every 2s');
  assert.match(await row.locator('.next-run time').innerText(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
  assert.equal(await row.locator('.last-run').innerText(), 'not yet');
  // It fires: a job of its template completes, and the page shows the run.
  await waitFor(async () => (await queueOf('sched'))?.counts.completed >= 1, 'a run of tick to complete');
  const job = (await stack.api('GET', '/v1/jobs?queue=sched')).jobs[0];
  assert.equal(job.type, 'tick');
  await waitFor(async () => /^\d{4}-/.test(await row.locator('.last-run').innerText()), 'the page to show the last run', { timeoutMs: UI_MS });

  await page.getByRole('button', { name: 'Remove schedule tick' }).click();
  await row.waitFor({ state: 'detached', timeout: UI_MS });
  assert.equal((await stack.api('GET', '/v1/schedules')).schedules.some((s) => s.name === 'tick'), false);
  // A bad expression is refused with the broker's one line, nothing stored.
  await form.getByLabel('Name', { exact: true }).fill('bad');
  await form.getByLabel('Runs', { exact: true }).selectOption('cron');
  await form.getByLabel('Interval or expression', { exact: true }).fill('0 25 * * *');
  await form.getByLabel('Queue', { exact: true }).fill('sched');
  await form.getByLabel('Job type', { exact: true }).fill('tick');
  await form.getByRole('button', { name: 'Add schedule' }).click();
  await waitFor(async () => /field 2 of 5 \(hour\)/.test(await page.locator('.outcome').innerText()),
    'the page to show why the expression was refused', { timeoutMs: UI_MS });
  assert.equal((await stack.api('GET', '/v1/schedules')).schedules.some((s) => s.name === 'bad'), false);
  assert.deepEqual(pageErrors(), []);
  await page.close();
});

test('a viewer sees settings and its schedules without controls, and the broker refuses the requests', async () => {
  await stack.api('PUT', '/v1/schedules/nightly', { cron: '0 3 * * *', tz: 'Europe/Berlin', queue: 'sched', type: 'tick' });
  await stack.api('PUT', '/v1/schedules/elsewhere', { every: '1h', queue: 'hidden', type: 'tick' });
  const before = await queueOf('flow');
  const page = await pageAs('look', '#/settings');
  const row = page.locator('table.settings tr[data-key="flow"]');
  await row.waitFor({ timeout: UI_MS });
  assert.equal(await row.locator('.badge').innerText(), before.paused ? 'paused' : 'running');
  assert.equal(await page.getByRole('button', { name: /^(Pause|Resume|Edit)/ }).count(), 0);
  await page.locator('main p.muted[role="status"]', { hasText: 'may read the settings, not change them' }).waitFor({ timeout: UI_MS });

  await page.goto(`${stack.httpUrl}/#/schedules`);
  const nightly = page.locator('table.schedules tr[data-key="nightly"]');
  await nightly.waitFor({ timeout: UI_MS });
  assert.match(await nightly.locator('.next-run time').innerText(), /^\d{4}-/);
  assert.equal(await nightly.locator('td').nth(2).innerText(), 'Europe/Berlin');
  // Only the schedules of its queues.
  assert.equal(await page.locator('table.schedules tr[data-key="elsewhere"]').count(), 0);
  assert.equal(await page.getByRole('button', { name: /^Remove/ }).count(), 0);
  assert.equal(await page.getByRole('form', { name: 'Add a schedule' }).count(), 0);

  for (const [method, path, body] of [
    ['POST', '/v1/queues/flow/pause'],
    ['PATCH', '/v1/queues/flow/settings', { max_active: 1 }],
    ['PUT', '/v1/schedules/mine', { every: '1s', queue: 'sched', type: 'tick' }],
    ['DELETE', '/v1/schedules/nightly'],
  ]) {
    const r = await fetchFromPage(page, method, path, body);
    assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'forbidden');
    assert.match(r.body.error.message, /role viewer/);
  }
  const now = await queueOf('flow');
  assert.equal(now.paused, before.paused);
  assert.equal(now.max_active, before.max_active);
  const names = (await stack.api('GET', '/v1/schedules')).schedules.map((s) => s.name);
  assert.ok(names.includes('nightly') && !names.includes('mine'), `schedules: ${names}`);
  assert.deepEqual(pageErrors(), []);
  await page.close();
});
