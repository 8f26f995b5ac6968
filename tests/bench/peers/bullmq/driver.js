// The BullMQ driver of `scripts/bench peers`: runs one workload against a
// redis-server that tests/bench/peers/run started, through the bullmq
// package (pinned by package-lock.json), checks BullMQ's own counts, and
// prints one line of key=value figures on stdout.
//
// usage: node driver.js --port P --workload W [--jobs N] [--rounds N]
//                       [--in-flight N]
//   w1     Queue.add N jobs one at a time                     jobs_per_s
//   w1b    Queue.addBulk 100 jobs per call, --in-flight calls (1..64,
//          default 1) awaited at once on the one connection   jobs_per_s
//   w1x32  Queue.add from 32 concurrent producers             jobs_per_s
//   fill   as w1b (queues jobs for drain)                     jobs_per_s
//   drain  Worker concurrency 4, no-op processor, until done  jobs_per_s
//   w3     add one job and waitUntilFinished, --rounds times,
//          with a Worker of concurrency 1                     p50_us p99_us
// Every job's data is a 100-character string. Exits 1 when the counts do
// not add up.
'use strict';
const { Queue, Worker, QueueEvents } = require('bullmq');

const BATCH = 100;
const PRODUCERS = 32;
const QUEUE = 'bench';
const payload = 'x'.repeat(100);

function args() {
  const a = { jobs: 100000, rounds: 2000, 'in-flight': 1 };
  for (let i = 2; i + 1 < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, '');
    a[k] = k === 'workload' ? process.argv[i + 1] : Number(process.argv[i + 1]);
  }
  a.jobs = Math.floor(a.jobs / BATCH) * BATCH;
  const inFlight = a['in-flight'];
  if (!(a.port > 0) || !a.workload || !(a.jobs > 0) || !(a.rounds > 0) ||
      !Number.isInteger(inFlight) || inFlight < 1 || inFlight > 64) {
    console.error('usage: node driver.js --port P --workload w1|w1b|w1x32|fill|drain|w3 ' +
                  '[--jobs N>=100] [--rounds N>=1] [--in-flight 1..64]');
    process.exit(2);
  }
  return a;
}

function nowUs() {
  return Number(process.hrtime.bigint() / 1000n);
}

function expect(what, got, want) {
  if (got !== want) {
    console.error(`bullmq driver: ${what} is ${got}, expected ${want}`);
    process.exit(1);
  }
}

async function put(queue, jobs, producers, perCall) {
  const calls = jobs / perCall;
  const start = nowUs();
  const loops = [];
  for (let p = 0; p < producers; p++) {
    const mine = Math.floor(calls / producers) + (p < calls % producers ? 1 : 0);
    loops.push((async () => {
      for (let c = 0; c < mine; c++) {
        if (perCall === 1)
          await queue.add('noop', payload);
        else
          await queue.addBulk(Array.from({ length: perCall }, () => ({ name: 'noop', data: payload })));
      }
    })());
  }
  await Promise.all(loops);
  const rate = jobs / ((nowUs() - start) / 1e6);
  expect('waiting count', await queue.getWaitingCount(), jobs);
  return rate;
}

async function drain(connection, queue, jobs) {
  let done = 0;
  let worker;
  const start = nowUs();
  await new Promise((resolve, reject) => {
    worker = new Worker(QUEUE, async () => {}, { connection, concurrency: 4 });
    worker.on('completed', () => { if (++done === jobs) resolve(); });
    worker.on('failed', (job, err) => reject(err));
    worker.on('error', reject);
  });
  const rate = jobs / ((nowUs() - start) / 1e6);
  await worker.close();
  expect('completed count', await queue.getCompletedCount(), jobs);
  expect('waiting count', await queue.getWaitingCount(), 0);
  expect('active count', await queue.getActiveCount(), 0);
  return rate;
}

async function roundTrips(connection, queue, rounds) {
  let handled = 0;
  const events = new QueueEvents(QUEUE, { connection });
  await events.waitUntilReady();
  const worker = new Worker(QUEUE, async () => { handled++; }, { connection, concurrency: 1 });
  await worker.waitUntilReady();
  const rtt = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = nowUs();
    const job = await queue.add('noop', payload);
    await job.waitUntilFinished(events, 10000);
    rtt.push(nowUs() - t0);
  }
  await worker.close();
  await events.close();
  expect('handled', handled, rounds);
  expect('completed count', await queue.getCompletedCount(), rounds);
  rtt.sort((a, b) => a - b);
  return `p50_us=${rtt[Math.floor(rounds / 2)]} p99_us=${rtt[Math.floor(rounds * 99 / 100)]}`;
}

async function main() {
  const a = args();
  const connection = { host: '127.0.0.1', port: a.port, maxRetriesPerRequest: null };
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  let line;
  switch (a.workload) {
  case 'w1': line = `jobs_per_s=${(await put(queue, a.jobs, 1, 1)).toFixed(0)}`; break;
  case 'w1b': line = `jobs_per_s=${(await put(queue, a.jobs, a['in-flight'], BATCH)).toFixed(0)}`; break;
  case 'fill': line = `jobs_per_s=${(await put(queue, a.jobs, 1, BATCH)).toFixed(0)}`; break;
  case 'w1x32': line = `jobs_per_s=${(await put(queue, a.jobs, PRODUCERS, 1)).toFixed(0)}`; break;
  case 'drain': line = `jobs_per_s=${(await drain(connection, queue, a.jobs)).toFixed(0)}`; break;
  case 'w3': line = await roundTrips(connection, queue, a.rounds); break;
  default:
    console.error(`bullmq driver: unknown workload ${a.workload}`);
    process.exit(2);
  }
  await queue.close();
  console.log(line);
  process.exit(0);
}

main().catch((err) => {
  console.error(`bullmq driver: ${err && err.stack || err}`);
  process.exit(1);
});
