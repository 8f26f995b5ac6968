// A --serve handler for the tests (serve from client/js).
import { serve, PermanentError, DEFAULT_PIPELINE } from '../../client/js/src/index.js';

const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));

await serve({
  echo: (job) => ({ pid: process.pid, payload: job.payload, attempt: job.attempt }),
  sleep: async (job) => {
    job.progress(0, 2, `pid ${process.pid}`);
    await sleepMs(job.data?.ms ?? 1000);
    job.progress(2, 2, 'slept');
    return { pid: process.pid, slept: true };
  },
  'async.echo': async (job) => `async ${job.payload} ${process.pid}`,
  die: () => process.exit(3),
  'die.once': async (job) => {
    if (job.attempt === 1) {
      await sleepMs(500); // the jobs beside it are in flight by then
      process.exit(3);
    }
    return { pid: process.pid, payload: job.payload, attempt: job.attempt };
  },
  fail: () => { throw new PermanentError('refused for good'); },
  noop: () => '',
  hex: (job) => Buffer.from(job.payloadBytes).toString('hex'),
}, { // as handler.py's environment says
  batch: process.env.JOBMESH_TEST_SERVE_BATCH !== '0', // 0: job lines
  pipeline: Number(process.env.JOBMESH_TEST_SERVE_PIPELINE ?? DEFAULT_PIPELINE),
});
