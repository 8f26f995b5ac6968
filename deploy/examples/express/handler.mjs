// The worker side: jobmesh-worker --serve email.send='node handler.mjs'
// keeps this process (and whatever it sets up: an SMTP pool) warm.
import { serve, PermanentError } from 'jobmesh';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

await serve({
  'email.send': async (job) => {
    const { to, subject } = job.data ?? {};
    if (!to) throw new PermanentError('no "to" address');
    const steps = ['rendering', 'connecting', 'sending'];
    for (let i = 0; i < steps.length; i++) {
      job.progress(i, steps.length, steps[i]);
      await sleep(Number(process.env.EXAMPLE_STEP_MS ?? 100));
    }
    job.progress(steps.length, steps.length, 'sent');
    return { sent: true, to, subject, by: process.pid };
  },
});
