// serve()'s reader of "jobs" lines without JSON.parse (scanJobs) against
// JSON.parse itself: for every line written the way jobmesh-worker writes
// one, the same jobs; for any other shape, null (serve() then uses
// JSON.parse). The lines go through a real worker in tests/clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scanJobs } from '../src/serve.js';

const emit = () => {};

// A job item as serve_proto_job_put writes it (JSON.stringify escapes a
// string as the worker does, up to which characters get \uXXXX: both are
// valid JSON, and the reader must take either).
function item({ id, type = 'noop', queue = 'q', attempt = 1, payload = '', base64, deadline = null, timeout = 0 }) {
  const p = base64 === undefined ? JSON.stringify(payload) : 'null';
  const tail = base64 === undefined ? '' : `,"${base64}"`;
  return `["${id}","${type}","${queue}",${attempt},${p},${deadline === null ? 'null' : deadline},${timeout}${tail}]`;
}

function line(items) {
  return `{"op":"jobs","jobs":[${items.join(',')}]}`;
}

// What the JSON.parse path makes of the line.
function expected(text) {
  return JSON.parse(text).jobs.map((it) => ({
    id: it[0], type: it[1], queue: it[2], attempt: it[3],
    payload: it.length > 7 ? null : it[4], base64: it.length > 7 ? it[7] : undefined,
    deadline: it[5], timeoutMs: it[6],
  }));
}

function got(jobs) {
  return jobs.map((j) => ({
    id: j.id, type: j.type, queue: j.queue, attempt: j.attempt,
    payload: j._bytes === undefined ? j.payload : null,
    base64: j._bytes === undefined ? undefined : Buffer.from(j._bytes).toString('base64'),
    deadline: j.deadline, timeoutMs: j.timeoutMs,
  }));
}

test('a worker-written jobs line reads the same as with JSON.parse, escapes and all', () => {
  const payloads = [
    '', 'x'.repeat(100), '{"to":"a@b.c","n":1}', 'back\\slash', '\\', '\\\\"', 'tab\there\nnew line',
    'héllo wörld ✓', '"', '""', 'end with backslash \\', '\u0001\u001f control', 'emoji 😀 pair',
    '[["1","noop","q",1,"x",null,0]]', ',"',
  ];
  let id = 1;
  const items = [];
  for (const payload of payloads) {
    items.push(item({ id: id++, payload }));
    items.push(item({ id: id++, type: 'email.send', queue: 'emails', attempt: 3, payload, deadline: 1764500000123, timeout: 30000 }));
  }
  items.push(item({ id: '18446744073709551615', base64: '/wBBww==' }));
  items.push(item({ id: id++, payload: 'after base64' }));
  const text = line(items);
  const jobs = scanJobs(text, emit);
  assert.notEqual(jobs, null, 'the worker\'s own shape must take the fast path');
  assert.deepEqual(got(jobs), expected(text));
  // One job alone, and an empty line of jobs.
  for (const one of items) assert.deepEqual(got(scanJobs(line([one]), emit)), expected(line([one])));
  assert.deepEqual(scanJobs(line([]), emit), []);
});

test('the type and queue strings are reused from job to job, and change when they change', () => {
  const text = line([item({ id: 1, type: 'a' }), item({ id: 2, type: 'a' }), item({ id: 3, type: 'ab' }),
    item({ id: 4, type: 'a', queue: 'qq' }), item({ id: 5, type: 'a', queue: 'q' })]);
  const names = { type: '', queue: '' };
  const jobs = scanJobs(text, emit, names);
  assert.deepEqual(jobs.map((j) => [j.type, j.queue]), [['a', 'q'], ['a', 'q'], ['ab', 'q'], ['a', 'qq'], ['a', 'q']]);
  assert.deepEqual(names, { type: 'a', queue: 'q' });
  // The next line starts from the last job's names.
  assert.deepEqual(scanJobs(line([item({ id: 6, type: 'ab' })]), emit, names).map((j) => j.type), ['ab']);
});

test('any other shape is left to JSON.parse', () => {
  const good = item({ id: 7, payload: 'p' });
  const others = [
    '{"op":"job","id":"1","type":"noop","queue":"q","attempt":1,"payload":"","deadline":null,"timeout_ms":0}',
    '{"op": "jobs", "jobs": [["1", "noop", "q", 1, "", null, 0]]}', // blanks (e.g. Python's json.dumps)
    '{"jobs":[["1","noop","q",1,"",null,0]],"op":"jobs"}', // other key order
    line(['["1","noop","q",1,"",null]']), // a value short
    line(['["1","noop","q",1,"",null,0,"x","y"]']), // too many
    line(['[1,"noop","q",1,"",null,0]']), // id a number
    line(['["","noop","q",1,"",null,0]']), // empty id
    line(['["1","no\\"op","q",1,"",null,0]']), // an escape in a name
    line(['["1","noop","q",1.5,"",null,0]']), // attempt not whole
    line(['["1","noop","q",-1,"",null,0]']),
    line(['["1","noop","q",1,"",true,0]']),
    line(['["1","noop","q",1,"",null,0e3]']),
    line(['["1","noop","q",1,null,null,0]']), // null payload without base64
    line(['["1","noop","q",1,"unterminated,null,0]']),
    line(['["1","noop","q",1,"bad \\x escape",null,0]']),
    line([good, '["2","noop","q",1,"\\"",null,0']), // the last job cut short
    `${line([good])} `, line([good]).slice(0, -1), `${line([good]).slice(0, -2)},]}`,
    line([`${good} `]), line([good, '']), '{"op":"jobs","jobs":[', '',
  ];
  for (const text of others) assert.equal(scanJobs(text, emit), null, text);
});
