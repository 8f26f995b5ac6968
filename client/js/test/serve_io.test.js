// serve()'s two ways of reading and writing: a child process whose stdin
// and stdout are pipes (read through fd 0's onread buffer, written with
// write(2)), here fed a line split across many writes and reads with
// multi-byte characters on the splits; and streams given as input and
// output (the Readable/Writable path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { serve } from '../src/serve.js';

const src = fileURLToPath(new URL('../src/index.js', import.meta.url));
const child = `
import { serve } from ${JSON.stringify(src)};
await serve({ echo: (job) => job.payload, len: (job) => String(job.payloadBytes.length) });
`;

// Resolves with the lines the child wrote once it exits (bounded by a timer).
function run(chunks) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['pipe', 'pipe', 'inherit'] });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('the child did not finish in 30 s')); }, 30000);
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => { out += d; });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`the child exited with ${code}`));
      else resolve(out.split('\n').filter((l) => l).map((l) => JSON.parse(l)));
    });
    // Each chunk its own write, a tick apart, so the child reads them apart.
    let i = 0;
    const next = () => {
      if (i === chunks.length) { proc.stdin.end(); return; }
      proc.stdin.write(chunks[i++], () => setTimeout(next, 5));
    };
    next();
  });
}

test('a piped child reads a jobs line split across reads, multi-byte characters on the splits', async () => {
  const payload = `${'é✓😀'.repeat(60000)}"\\end`; // ~540 KB of UTF-8: more than one read
  const line = Buffer.from(`${JSON.stringify({ op: 'jobs', jobs: [['1', 'echo', 'q', 1, payload, null, 0], ['2', 'len', 'q', 1, payload, null, 0]] })}\n`);
  const chunks = [];
  for (let at = 0; at < line.length; at += 77777) chunks.push(line.subarray(at, at + 77777)); // splits inside characters
  chunks.push(Buffer.from(`${JSON.stringify({ op: 'stop' })}\n`));
  const lines = await run(chunks);
  assert.deepEqual(lines[0], { op: 'hello', pipeline: 128, batch: true });
  const results = lines.filter((l) => l.op === 'results');
  assert.equal(results.length, 1, JSON.stringify(lines).slice(0, 300));
  assert.deepEqual(results[0].ids, ['1', '2']);
  assert.equal(results[0].results[0], payload);
  assert.equal(results[0].results[1], String(Buffer.byteLength(payload)));
});

test('streams given as input and output are read and written', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  let out = '';
  output.setEncoding('utf8');
  output.on('data', (d) => { out += d; });
  const done = serve({ echo: (job) => job.payload }, { input, output });
  input.write('{"op":"job","id":"5","type":"echo","queue":"q","attempt":1,"payload":"one","deadline":null,"timeout_ms":0}\n{"op":"jo');
  input.write('bs","jobs":[["6","echo","q",1,"two",null,0]]}\n');
  input.end('{"op":"stop"}\n');
  await done;
  const lines = out.split('\n').filter((l) => l).map((l) => JSON.parse(l));
  assert.deepEqual(lines, [
    { op: 'hello', pipeline: 128, batch: true },
    { op: 'result', id: '5', result: 'one' },
    { op: 'results', ids: ['6'], results: ['two'] },
  ]);
});
