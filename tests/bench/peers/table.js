// Formats the results of tests/bench/peers/run as one markdown table: rows
// are workloads, columns each system/config, then jobmesh/peer ratios and
// the targets of issue 12 with whether this run met them.
//
// usage: node table.js RESULTS key=value...   (RESULTS: "config key value"
// lines; the key=value pairs describe the run: jobs, rounds, uptime, ...)
'use strict';
const fs = require('fs');

const [resultsPath, ...metaArgs] = process.argv.slice(2);
const meta = Object.fromEntries(metaArgs.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
const r = {};
for (const line of fs.readFileSync(resultsPath, 'utf8').split('\n')) {
  const [config, key, value] = line.split(' ');
  if (config) (r[config] ??= {})[key] = Number(value);
}
const get = (config, key) => (r[config] || {})[key];

const configs = [
  ['bs', 'beanstalkd (no binlog)'],
  ['bs-f0', 'beanstalkd -b -f0'],
  ['bull-everysec', 'BullMQ / Redis AOF everysec'],
  ['bull-always', 'BullMQ / Redis AOF always'],
  ['jm-batch', 'jobmesh --fsync batch (default)'],
  ['jm-off', 'jobmesh --fsync off'],
  ['jm-always', 'jobmesh --fsync always'],
];

const num = (v) => (v === undefined || Number.isNaN(v) ? '' : Math.round(v).toLocaleString('en-US'));
const ratio = (v) => (v === undefined || !Number.isFinite(v) ? '' : `${v.toFixed(2)}×`);
const verdict = (ok) => (ok ? 'met' : 'not met');

// Floor of W1 durable: one NNG round trip + one fdatasync of a
// preallocated file, in µs; as jobs/s.
const floorUs = get('floor', 'nng_p50_us') + get('floor', 'prealloc_sync_p50_us');
const floorRate = 1e6 / floorUs;
// Floor of W3 durable over NNG, whatever the design: the submit's round
// trip, the worker's (the job out on a parked fetch, its completion in),
// and at least one fdatasync that makes the completion durable before the
// producer hears of it.
const w3FloorUs = 2 * get('floor', 'nng_p50_us') + get('floor', 'prealloc_sync_p50_us');

// Each row: label, per-config cell, jobmesh/beanstalkd, jobmesh/BullMQ,
// and the target text. "higher" rows compare rates (jobmesh ÷ peer, more
// is better); the others compare µs or bytes (jobmesh ÷ peer, less is better).
const rate = (key) => (c) => num(get(c, key));
const jm = (key) => get('jm-batch', key);
const rows = [
  ['W1 one by one, 1 connection, jobs/s', rate('w1'),
    jm('w1') / get('bs', 'w1'), jm('w1') / get('bull-everysec', 'w1'),
    (() => {
      const x = (1e6 / jm('w1')) / floorUs;
      return `durable within 1.3× of floor (${num(floorRate)} jobs/s): ${x.toFixed(2)}× ${verdict(x <= 1.3)}`;
    })()],
  [`W1b 100 per call, ${meta.w1b_in_flight} calls in flight (every system), jobs/s`, rate('w1b'),
    jm('w1b') / get('bs', 'w1b'), jm('w1b') / get('bull-everysec', 'w1b'),
    `≥ 3× beanstalkd: ${verdict(jm('w1b') / get('bs', 'w1b') >= 3)}`],
  ['W1x32 one by one, 32 producers, jobs/s', rate('w1x32'),
    jm('w1x32') / get('bs', 'w1x32'), jm('w1x32') / get('bull-everysec', 'w1x32'),
    (() => {
      const x = jm('w1x32') / get('bs-f0', 'w1x32');
      return `≥ 3× beanstalkd -f0: ${ratio(x)} ${verdict(x >= 3)}`;
    })()],
  ['W2 drain, concurrency 4, jobs/s', rate('drain'),
    jm('drain') / get('bs', 'drain'), jm('drain') / get('bull-everysec', 'drain'),
    `≥ 3× beanstalkd: ${verdict(jm('drain') / get('bs', 'drain') >= 3)}; ` +
    `≥ 6× BullMQ: ${verdict(jm('drain') / get('bull-everysec', 'drain') >= 6)}`],
  ['W3 submit → completed, p50 / p99 µs', (c) => (get(c, 'w3_p50') === undefined ? '' : `${num(get(c, 'w3_p50'))} / ${num(get(c, 'w3_p99'))}`),
    jm('w3_p50') / get('bs', 'w3_p50'), jm('w3_p50') / get('bull-everysec', 'w3_p50'),
    `p50 ≤ 0.5× BullMQ: ${verdict(jm('w3_p50') / get('bull-everysec', 'w3_p50') <= 0.5)} ` +
    `(the durable floor, ${num(w3FloorUs)} µs, is ${ratio(w3FloorUs / get('bull-everysec', 'w3_p50'))} BullMQ; ` +
    `jobmesh p50 is ${ratio(jm('w3_p50') / w3FloorUs)} the floor); ` +
    `p99 ≤ 1,000 µs: ${verdict(jm('w3_p99') <= 1000)}`],
  ['W4 W1 in the strictest durability mode, jobs/s',
    (c) => (['bs-f0', 'bull-always', 'jm-always'].includes(c) ? num(get(c, 'w1')) : ''),
    get('jm-always', 'w1') / get('bs-f0', 'w1'), get('jm-always', 'w1') / get('bull-always', 'w1'),
    '(report; ratios: jobmesh always ÷ beanstalkd -f0, ÷ BullMQ always)'],
  ['W2 with a subscriber reading every event, jobs/s (jobmesh: median of 3 drains with one; without one, the median of 4 on the same server, alternating: the target column)',
    (c) => (c === 'jm-batch' ? num(get(c, 'drain_sub')) : ''),
    undefined, undefined,
    (() => {
      const cost = 1 - jm('drain_sub') / jm('drain_nosub');
      return `a subscriber costs ≤ 10 % of W2: ${(100 * cost).toFixed(1)} % ` +
        `(${num(jm('drain_sub'))} against ${num(jm('drain_nosub'))} jobs/s) ${verdict(cost <= 0.1)}`;
    })()],
  ['server memory per queued job, bytes', (c) => num(get(c, 'mem_per_job')),
    jm('mem_per_job') / get('bs', 'mem_per_job'), jm('mem_per_job') / get('bull-everysec', 'mem_per_job'),
    `≤ 250 B: ${verdict(jm('mem_per_job') <= 250)}`],
];

const lines = [];
lines.push(`jobmesh ${meta.jobmesh} against ${meta.beanstalkd} and BullMQ ${meta.bullmq} on ${meta.redis}, ` +
  `${meta.date}, ${meta.cores} cores; ${num(Number(meta.jobs))} no-op jobs of 100 bytes per workload ` +
  `(W3: ${num(Number(meta.rounds))} round trips); load average (1, 5, 15 min) before the run: ${meta.uptime.replace(/.*load average: /, '')}, after: ${(meta.uptime_end || '').replace(/.*load average: /, '')}`);
lines.push('');
lines.push(`| workload | ${configs.map((c) => c[1]).join(' | ')} | jobmesh/beanstalkd | jobmesh/BullMQ | issue 12 target (jobmesh batch) |`);
lines.push(`|---|${configs.map(() => '---:').join('|')}|---:|---:|---|`);
for (const [label, cell, vsBs, vsBull, target] of rows)
  lines.push(`| ${label} | ${configs.map((c) => cell(c[0])).join(' | ')} | ${ratio(vsBs)} | ${ratio(vsBull)} | ${target} |`);
lines.push('');
lines.push(`Floors, same run: NNG req/rep over tcp, one 100 B request in flight: ` +
  `${num(get('floor', 'nng_rtt_per_s'))} round trips/s, p50 ${num(get('floor', 'nng_p50_us'))} µs; ` +
  `fdatasync after a 200 B append: p50 ${num(get('floor', 'append_sync_p50_us'))} µs, ` +
  `after an overwrite of a preallocated file: p50 ${num(get('floor', 'prealloc_sync_p50_us'))} µs; ` +
  `W1 durable floor = round trip + preallocated fdatasync = ${num(floorUs)} µs (${num(floorRate)} jobs/s); ` +
  `W3 durable floor = two round trips + preallocated fdatasync = ${num(w3FloorUs)} µs.`);
lines.push('');
lines.push('Ratios are jobmesh --fsync batch ÷ beanstalkd without binlog and ÷ BullMQ AOF everysec ' +
  '(W4: jobmesh --fsync always ÷ the peer\'s strictest mode). For jobs/s higher is better for jobmesh; ' +
  'for µs and bytes lower is. W1 vs floor compares µs per job. Memory: VmHWM of the server after ' +
  'queueing the W2 jobs minus its VmRSS before, ÷ jobs.');
console.log(lines.join('\n'));
