// Takes the README's dashboard screenshots (docs/screenshots/*.png) against
// a real broker and workers with realistic traffic: emails parsed (a few
// malformed ones dead-lettered), a batch of documents OCR'd page by page,
// reports waiting on a paused queue with no worker, queue settings set at
// runtime and four schedules. The broker runs with --auth:
// the pages act as an admin ("ops"), and two shots show the token prompt
// and a viewer's dead-letter list (no Retry).
//
//   node tests/browser/screenshots.mjs [OUT_DIR]     (after a build; about 2 min)
//
// JOBMESH_BIN_DIR picks the binaries (default build/test/bin).

import fs from 'node:fs';
import path from 'node:path';
import { Stack, waitFor, sourceDir } from './lib/stack.mjs';
import { openBrowser, tabWithToken } from './lib/browser.mjs';

const out = path.resolve(process.argv[2] || path.join(sourceDir, 'docs/screenshots'));
fs.mkdirSync(out, { recursive: true });

const stack = new Stack('jm-shots');
let browser;
const ADMIN = 'ops-screenshot-secret';
const VIEWER = 'support-screenshot-secret';

// A tab that starts with token in its sessionStorage, as after the prompt.
const tabAs = (token) => tabWithToken(browser, token);

async function main() {
  const email = stack.handler('email-parse.sh', [
    'payload=$(cat)',
    'echo "progress 1 3 reading headers" >&3',
    'sleep 0.$(( $(od -An -N1 -tu1 /dev/urandom) % 4 + 1 ))',
    'case "$payload" in *malformed*)',
    '  echo "parse error: no From header (line 1): $(echo "$payload" | head -c 60)" >&2; exit 100;;',
    'esac',
    'echo "progress 2 3 extracting attachments" >&3',
    'sleep 0.1',
    'echo "progress 3 3 done" >&3',
    'printf \'{"from":"billing@example.com","subject":"Invoice %s","attachments":2,"spam_score":0.03}\\n\' "$JOBMESH_JOB_ID"',
  ].join('\n'));
  const ocr = stack.handler('ocr.sh', [
    'payload=$(cat)',
    'doc=$(echo "$payload" | sed -n \'s/.*"doc":"\\([^"]*\\)".*/\\1/p\')',
    'for p in 1 2 3 4 5 6; do',
    '  echo "progress $p 6 $doc: page $p of 6" >&3',
    '  sleep 0.4',
    'done',
    'printf \'{"doc":"%s","pages":6,"words":%d,"language":"en"}\\n\' "$doc" $(( $(od -An -N2 -tu2 /dev/urandom) % 4000 + 800 ))',
  ].join('\n'));
  stack.token = ADMIN;
  stack.workerToken = 'worker-screenshot-secret';
  const auth = stack.authFile([
    { name: 'ops', secret: ADMIN, role: 'admin' },
    { name: 'support', secret: VIEWER, role: 'viewer', queues: ['emails', 'reports'] },
    { name: 'workers', secret: stack.workerToken, role: 'worker', queues: ['*'] },
  ]);
  await stack.startBroker(['--queue-limit', 'documents=4', '--auth', auth]);
  await stack.startWorker({ id: 'mail-parser-1', queues: ['emails'], handlers: { 'email.parse': email }, concurrency: 4 });
  await stack.startWorker({ id: 'mail-parser-2', queues: ['emails'], handlers: { 'email.parse': email }, concurrency: 4 });
  await stack.startWorker({ id: 'ocr-1', queues: ['documents'], handlers: { 'document.ocr': ocr }, concurrency: 2 });
  await stack.startWorker({ id: 'ocr-2', queues: ['documents'], handlers: { 'document.ocr': ocr }, concurrency: 2 });

  // Runtime settings and schedules, as an operator would have set them.
  await stack.api('PATCH', '/v1/queues/emails/settings', { rate: { jobs: 50, period_ms: 1000 }, keep_finished: 20000 });
  await stack.api('PATCH', '/v1/queues/documents/settings', { max_attempts: 5, key_window_ms: 3600000 });
  await stack.api('POST', '/v1/queues/reports/pause');
  await stack.api('PUT', '/v1/schedules/nightly-report', { cron: '30 2 * * mon-fri', tz: 'Europe/Berlin', queue: 'reports', type: 'report.daily', payload: '{"kind":"daily"}' });
  await stack.api('PUT', '/v1/schedules/inbox-sweep', { every: '20s', queue: 'emails', type: 'email.parse', payload: 'From: sweep@example.com\nSubject: inbox sweep' });
  await stack.api('PUT', '/v1/schedules/ocr-backlog', { cron: '@hourly', queue: 'documents', type: 'document.ocr', payload: '{"doc":"backlog.pdf"}' });
  await stack.api('PUT', '/v1/schedules/month-end', { cron: '0 0 6 1 * *', tz: 'America/New_York', queue: 'reports', type: 'report.monthly' });

  browser = await openBrowser({ viewport: { width: 1360, height: 900 } });
  const overview = await tabAs(ADMIN);
  await overview.goto(`${stack.httpUrl}/`);

  // Waves of email, so the throughput chart has a shape.
  const submitEmails = async (n, wave) => {
    const jobs = [];
    for (let i = 0; i < n; i++) {
      const bad = i % 23 === 7;
      jobs.push({ type: 'email.parse', payload: bad ? `malformed message ${wave}-${i}` : `From: customer${i}@example.com\nSubject: Invoice ${wave}-${i}` });
    }
    await stack.api('POST', '/v1/queues/emails/jobs', jobs);
  };
  for (let wave = 0; wave < 6; wave++) {
    await submitEmails(20 + wave * 15, wave);
    await waitFor(async () => (await stack.queueCounts('emails')).pending === 0, 'the email wave to be taken', { timeoutMs: 120000, intervalMs: 500 });
    await new Promise((r) => setTimeout(r, 6000)); // spread the waves over chart buckets
  }
  for (let i = 0; i < 25; i++) {
    await stack.api('POST', '/v1/queues/reports/jobs', { type: 'report.daily', data: { account: 1000 + i, day: '2026-11-29' } });
  }
  // Two small batches that finish before the big one: "recent" batches.
  const inbox = await stack.api('POST', '/v1/batches', { jobs: Array.from({ length: 12 }, (_, i) => ({ queue: 'emails', type: 'email.parse', payload: `From: import${i}@example.com\nSubject: Import ${i}` })) });
  const mixed = await stack.api('POST', '/v1/batches', { jobs: Array.from({ length: 8 }, (_, i) => ({ queue: 'emails', type: 'email.parse', payload: i === 5 ? `malformed import ${i}` : `From: legacy${i}@example.com\nSubject: Legacy ${i}` })) });
  for (const b of [inbox, mixed]) {
    await waitFor(async () => (await stack.api('GET', `/v1/batches/${b.id}`)).state !== 'running', `batch ${b.id} to finish`, { timeoutMs: 120000, intervalMs: 200 });
  }
  const docs = Array.from({ length: 40 }, (_, i) => ({ queue: 'documents', type: 'document.ocr', data: { doc: `contract-${String(i + 1).padStart(3, '0')}.pdf` } }));
  const batch = await stack.api('POST', '/v1/batches', { jobs: docs });
  const watched = batch.job_ids[9];

  const page = await tabAs(ADMIN);
  await page.goto(`${stack.httpUrl}/#/jobs/${watched}`);
  await waitFor(async () => (await stack.api('GET', `/v1/batches/${batch.id}`)).completed >= 12, 'the OCR batch to be under way', { timeoutMs: 120000, intervalMs: 500 });

  const shot = async (p, name, fullPage = false) => {
    await p.waitForTimeout(600); // let the 250 ms render tick land
    await p.screenshot({ path: path.join(out, `${name}.png`), fullPage });
    console.log(`wrote ${path.join(out, `${name}.png`)}`);
  };
  await shot(page, 'job', true);
  await page.goto(`${stack.httpUrl}/#/batches`);
  await page.locator(`tr[data-batch="${batch.id}"]`).waitFor();
  await shot(page, 'batches');
  await page.goto(`${stack.httpUrl}/#/batches/${batch.id}`);
  await page.locator('.batch-detail [role="progressbar"]').waitFor();
  await shot(page, 'batch');
  await page.goto(`${stack.httpUrl}/#/workers`);
  await page.locator('table.workers tbody tr').first().waitFor();
  await shot(page, 'workers');
  await page.goto(`${stack.httpUrl}/#/jobs`);
  await page.locator('table.jobs tbody tr').first().waitFor();
  await shot(page, 'jobs');
  await page.goto(`${stack.httpUrl}/#/dead/emails`);
  await page.locator('table.dead tbody tr').first().waitFor();
  await shot(page, 'dead-letters');
  const viewer = await tabAs(VIEWER);
  await viewer.goto(`${stack.httpUrl}/#/dead/emails`);
  await viewer.locator('table.dead tbody tr').first().waitFor();
  await shot(viewer, 'dead-letters-viewer');
  await page.goto(`${stack.httpUrl}/#/settings`);
  await page.locator('table.settings tr[data-key="emails"]').waitFor();
  await page.getByRole('button', { name: 'Edit settings of queue emails' }).click();
  await page.evaluate(() => document.activeElement?.blur()); // no focus ring in the picture
  await shot(page, 'queues-settings', true);
  await page.goto(`${stack.httpUrl}/#/schedules`);
  await page.locator('table.schedules tr[data-key="inbox-sweep"] .last-run time').waitFor({ timeout: 60000 });
  await shot(page, 'schedules', true);
  const fresh = await browser.context.newPage();
  await fresh.goto(`${stack.httpUrl}/`);
  await fresh.locator('#token-dialog[open]').waitFor();
  await shot(fresh, 'token');
  await overview.bringToFront();
  await shot(overview, 'overview');
  await overview.emulateMedia({ colorScheme: 'dark' });
  await shot(overview, 'overview-dark');
}

try {
  await main();
} catch (e) {
  console.error(e);
  console.error(stack.logs());
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  await stack.close();
}
