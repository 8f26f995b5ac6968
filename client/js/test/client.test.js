// The jobmesh npm package's Client through a real broker's HTTP API and a
// real jobmesh-worker whose handlers are the package's serve() (handler.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import {
  Client, InvalidNameError, NotFoundError, JobFailedError, JobCancelledError, TimeoutError,
  UnauthorizedError,
} from '../src/index.js';
import { Stack, root } from '../test-support/stack.js';

const handler = `node ${join(root, 'tests', 'clients', 'handler.mjs')}`;
const types = ['echo', 'sleep', 'async.echo', 'fail', 'noop'];
const serveArgs = types.flatMap((t) => ['--serve', `${t}=${handler}`]);
let stack;
let jm;

before(async () => {
  stack = await Stack.start();
  await stack.worker(serveArgs, { concurrency: 2 });
  jm = new Client({ url: stack.url, timeout: 20000 });
});

after(async () => {
  await stack?.close();
});

test('submit and wait resolve with the result and report progress', async () => {
  const id = await jm.submit('q', 'sleep', { ms: 300 });
  assert.match(id, /^\d+$/);
  const seen = [];
  const result = await jm.wait(id, { timeout: 30000, onProgress: (p) => seen.push(p) });
  assert.equal(JSON.parse(result).slept, true);
  assert.ok(seen.some((p) => p.done === 2 && p.total === 2 && p.message === 'slept'), JSON.stringify(seen));
  assert.equal((await jm.get(id)).state, 'completed');
  assert.equal(await jm.result(id), result);
});

test('result long-polls until the job finishes', async () => {
  const id = await jm.submit('q', 'sleep', { ms: 200 });
  assert.equal(JSON.parse(await jm.result(id, { wait: 30 })).slept, true);
});

test('submitMany, and a batch watched to its end', async () => {
  const ids = await jm.submitMany('q', [0, 1, 2].map((i) => ({ type: 'echo', payload: `m${i}` })));
  assert.equal(new Set(ids).size, 3);
  const batch = await jm.submitBatch(Array.from({ length: 20 }, (_, i) => ({ queue: 'q', type: 'sleep', data: { ms: 20 }, payload: `b${i}` })));
  assert.equal(batch.jobIds.length, 20);
  const seen = [];
  const status = await jm.waitBatch(batch.id, { timeout: 60000, onProgress: (b) => seen.push(b.completed) });
  assert.equal(status.state, 'completed');
  assert.equal(status.completed, 20);
  assert.deepEqual(seen, [...seen].sort((x, y) => x - y), 'batch progress never goes back');
  for (const id of batch.jobIds) assert.equal((await jm.get(id)).state, 'completed');
});

test('events resume after a dropped stream without a gap', { timeout: 60000 }, async () => {
  await stack.worker(['--serve', `echo=${handler}`], { queue: 'resume' });
  let opened;
  const open = new Promise((r) => { opened = r; });
  const stream = jm.events({ queue: 'resume', signal: AbortSignal.timeout(30000), onOpen: () => opened() })[Symbol.asyncIterator]();
  const pending = stream.next(); // starts the request
  await open; // subscribed before submitting: every completion is on the stream
  const first = await jm.submitMany('resume', Array(5).fill({ type: 'echo', payload: 'a' }));
  const done = new Set();
  let lastId = null;
  for (let r = await pending; !r.done; r = await stream.next()) {
    const ev = r.value;
    lastId = ev.id ?? lastId;
    if (ev.kind === 'job_state' && ev.data.state === 'completed') {
      done.add(ev.data.job_id);
      if (done.size === 2) break;
    }
  }
  await stream.return(); // drops the connection
  const second = await jm.submitMany('resume', Array(5).fill({ type: 'echo', payload: 'b' }));
  const want = new Set([...first, ...second]);
  const seenIds = new Set();
  for await (const ev of jm.events({ queue: 'resume', lastEventId: lastId, signal: AbortSignal.timeout(30000) })) {
    assert.notEqual(ev.kind, 'snapshot', 'the broker still had the gap');
    assert.ok(!seenIds.has(ev.id), 'an event came twice');
    seenIds.add(ev.id);
    if (ev.kind === 'job_state' && ev.data.state === 'completed') done.add(ev.data.job_id);
    if ([...want].every((id) => done.has(id))) break;
  }
  assert.deepEqual([...done].sort(), [...want].sort());
});

test('a bad queue name throws InvalidNameError', async () => {
  await assert.rejects(jm.submit('a!b', 'echo', 'x'), (e) => e instanceof InvalidNameError && e.status === 400 && e.message.includes('a!b'));
});

test('an unknown id throws NotFoundError', async () => {
  await assert.rejects(jm.get('987654321'), NotFoundError);
  await assert.rejects(jm.wait('987654321', { timeout: 10000 }), NotFoundError);
});

test('wait throws JobFailedError, TimeoutError and JobCancelledError', async () => {
  const failed = await jm.submit('q', 'fail', '', { maxAttempts: 3 });
  await assert.rejects(jm.wait(failed, { timeout: 30000 }), (e) => e instanceof JobFailedError && e.message.includes('refused for good'));
  await assert.rejects(jm.result(failed), JobFailedError);
  const parked = await jm.submit('q', 'echo', 'later', { delayMs: 60000 });
  await assert.rejects(jm.wait(parked, { timeout: 500 }), TimeoutError);
  const ctl = new AbortController();
  const waiting = jm.wait(parked, { signal: ctl.signal });
  ctl.abort(new Error('caller gave up'));
  await assert.rejects(waiting, /caller gave up/);
  await jm.cancel(parked);
  await assert.rejects(jm.wait(parked, { timeout: 30000 }), JobCancelledError);
});

test('submitAndWait resolves with the result in one request and rejects as wait', async () => {
  const result = JSON.parse(await jm.submitAndWait('q', 'echo', 'hi', { timeout: 30000 }));
  assert.equal(result.payload, 'hi');
  await assert.rejects(jm.submitAndWait('q', 'fail', '', { maxAttempts: 1, timeout: 30000 }),
    (e) => e instanceof JobFailedError && e.message.includes('refused for good'));
  let timedOut;
  await assert.rejects(jm.submitAndWait('q', 'echo', 'later', { delayMs: 60000, timeout: 1500 }),
    (e) => { timedOut = e; return e instanceof TimeoutError; });
  const id = timedOut.message.match(/job (\d+)/)?.[1];
  assert.ok(id, timedOut.message);
  assert.equal((await jm.get(id)).state, 'delayed');
  await jm.cancel(id);
});

test('a list of URLs skips one that does not answer', async () => {
  const c = new Client({ urls: ['http://127.0.0.1:9', stack.url] });
  const id = await c.submit('q', 'echo', 'failover');
  assert.match(await c.wait(id, { timeout: 30000 }), /failover/);
});

test('an idempotency key gives one job, and a resend after a lost answer too', async () => {
  const first = await jm.submit('keys', 'noop', '', { idempotencyKey: 'order-17', delayMs: 60000 });
  assert.equal(await jm.submit('keys', 'noop', '', { idempotencyKey: 'order-17' }), first);
  // The first try reaches the broker but its answer is lost: the client
  // tries the next URL with the same body, and so the same key it made.
  let lost = 0;
  const flaky = new Client({
    urls: [stack.url, stack.url],
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      if (lost++ === 0) { await res.text(); throw new TypeError('fetch failed: answer lost'); }
      return res;
    },
  });
  const resent = await flaky.submit('keys.resend', 'noop', '', { delayMs: 60000 });
  assert.equal(lost, 2);
  const listed = await jm.jobs({ queue: 'keys.resend' });
  assert.deepEqual(listed.jobs.map((j) => j.id), [resent]);
  const later = await jm.submit('keys', 'noop', '', { runAt: new Date('2030-01-02T03:04:05Z') });
  assert.equal((await jm.get(later)).run_at_us, 1893553445000000);
});

test('queues and workers list what runs', async () => {
  await jm.wait(await jm.submit('q', 'noop', ''), { timeout: 30000 });
  assert.ok((await jm.queues()).some((q) => q.name === 'q'));
  assert.ok((await jm.workers()).some((w) => w.queues.includes('q')));
});

test('with --auth, a wrong or missing token and another tenant\'s queue throw UnauthorizedError and store nothing', async () => {
  const sha = (secret) => createHash('sha256').update(secret).digest('hex');
  const probe = await Stack.start({ http: false });
  const authFile = join(probe.dir, 'auth.yaml');
  writeFileSync(authFile, 'tokens:\n'
    + `  - {name: shop, sha256: ${sha('shop-secret')}, role: producer, queues: ["shop.*"]}\n`
    + `  - {name: ops, sha256: ${sha('ops-secret')}, role: admin}\n`);
  const secured = await Stack.start({ brokerArgs: ['--auth', authFile] });
  try {
    const admin = new Client({ url: secured.url, token: 'ops-secret', timeout: 20000 });
    const shop = new Client({ url: secured.url, token: 'shop-secret', timeout: 20000 });
    const id = await shop.submit('shop.orders', 't', 'hello');
    assert.equal((await shop.get(id)).state, 'pending');
    const counts = async () => JSON.stringify((await admin.queues()).map((q) => [q.name, q.counts]));
    const before = await counts();
    for (const token of ['not-a-secret', undefined]) {
      const jm = new Client({ url: secured.url, token, timeout: 20000 });
      await assert.rejects(jm.submit('shop.orders', 't', 'x'),
        (e) => e instanceof UnauthorizedError && e.status === 401 && e.code === 'unauthorized');
    }
    await assert.rejects(shop.submit('billing.invoices', 't', 'x'),
      (e) => e instanceof UnauthorizedError && e.status === 403 && e.code === 'forbidden');
    assert.equal(await counts(), before);
  } finally {
    await secured.close();
    await probe.close();
  }
});

test('pauseQueue holds a queue\'s jobs, resumeQueue releases them, and setQueueSettings sets what queueSettings reads back', { timeout: 90000 }, async () => {
  await stack.worker(['--serve', `echo=${handler}`], { queue: 'flow,flowb' });
  assert.equal((await jm.pauseQueue('flow')).paused, true);
  const held = await jm.submit('flow', 'echo', 'held', { group: 'tenant-1' });
  // The worker runs two jobs of its other queue meanwhile: the paused one waits.
  for (const payload of ['free1', 'free2']) await jm.wait(await jm.submit('flowb', 'echo', payload), { timeout: 30000 });
  const waiting = await jm.get(held);
  assert.equal(waiting.state, 'pending');
  assert.equal(waiting.group, 'tenant-1');
  assert.equal((await jm.queues()).find((q) => q.name === 'flow').paused, true);
  assert.equal((await jm.resumeQueue('flow')).paused, false);
  assert.equal(JSON.parse(await jm.wait(held, { timeout: 30000 })).payload, 'held');

  const set = await jm.setQueueSettings('flow', {
    maxActive: 3, rate: { jobs: 10, periodMs: 1000 }, groupLimit: 2, keepFailed: 5, keep_completed_age_ms: 60000,
  });
  assert.equal(set.max_active, 3);
  assert.deepEqual(set.rate, { jobs: 10, period_ms: 1000 });
  assert.equal(set.group_limit, 2);
  assert.equal(set.keep_failed, 5);
  assert.equal(set.keep_completed_age_ms, 60000);
  assert.deepEqual(await jm.queueSettings('flow'), set);
  const cleared = await jm.setQueueSettings('flow', { rate: null, maxActive: 0, groupLimit: 0 });
  assert.equal(cleared.rate, null);
  assert.equal(cleared.max_active, 0);
  assert.equal(cleared.group_limit, 0);
  await assert.rejects(jm.setQueueSettings('flow', { speed: 1 }), TypeError);
  assert.deepEqual(await jm.queueSettings('flow'), cleared);
});

test('removeDead removes one dead letter and then all, retryDead revives them', { timeout: 90000 }, async () => {
  await stack.worker(['--serve', `fail=${handler}`], { queue: 'deadq' });
  const deadLettered = async (count) => {
    const ids = await jm.submitMany('deadq', Array(count).fill({ type: 'fail', payload: 'x' }));
    for (const id of ids) await assert.rejects(jm.wait(id, { timeout: 30000 }), JobFailedError);
    return ids;
  };
  const ids = await deadLettered(3);
  const one = await jm.removeDead('deadq', ids[0]);
  assert.deepEqual(one, { queue: 'deadq', removed: 1, ids: [ids[0]] });
  await assert.rejects(jm.get(ids[0]), NotFoundError);
  assert.deepEqual((await jm.dead('deadq')).map((j) => String(j.id)).sort(), ids.slice(1).sort());
  await assert.rejects(jm.removeDead('deadq', ids[0]), NotFoundError);

  const revived = await jm.retryDead('deadq');
  assert.equal(revived.revived, 2);
  assert.deepEqual(revived.ids.map(String).sort(), ids.slice(1).sort());
  for (const id of ids.slice(1)) await assert.rejects(jm.wait(id, { timeout: 30000 }), JobFailedError);

  const all = await jm.removeDead('deadq');
  assert.equal(all.removed, 2);
  assert.deepEqual((await jm.dead('deadq')), []);
  for (const id of ids) await assert.rejects(jm.get(id), NotFoundError);
});
