// An Express app in front of jobmesh:
//   POST /jobs              -> 202 {id}, Location: /jobs/ID  (the job is durable)
//   GET  /jobs/:id          -> the job's state, progress and result
//   GET  /jobs/:id/events   -> its progress as Server-Sent Events, for the browser
//   GET  /                  -> a page that submits a job and shows its progress
// JOBMESH_URL: the broker's HTTP API (default http://127.0.0.1:7480); PORT
// (default 3000; 0 picks a free one). Prints "listening http://HOST:PORT".
import express from 'express';
import { Client, ApiError, NotFoundError } from 'jobmesh';

const jm = new Client({ url: process.env.JOBMESH_URL ?? 'http://127.0.0.1:7480' });
const app = express();
app.use(express.json({ limit: '256kb' }));

app.post('/jobs', async (req, res, next) => {
  try {
    const { to, subject = '', body = '' } = req.body ?? {};
    if (typeof to !== 'string' || !to.includes('@')) {
      return res.status(400).json({ error: 'give "to", an email address' });
    }
    const id = await jm.submit('emails', 'email.send', { to, subject, body }, { maxAttempts: 5 });
    res.status(202).location(`/jobs/${id}`).json({ id });
  } catch (e) { next(e); }
});

app.get('/jobs/:id', async (req, res, next) => {
  try {
    const job = await jm.get(req.params.id);
    const out = { id: job.id, state: job.state, attempt: job.attempt, progress: job.progress, error: job.last_error };
    if (job.state === 'completed') out.result = JSON.parse(await jm.result(job.id));
    res.json(out);
  } catch (e) { next(e); }
});

// The broker's event stream, relayed: the browser never talks to the broker.
app.get('/jobs/:id/events', async (req, res) => {
  const ctl = new AbortController();
  req.on('close', () => ctl.abort());
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  try {
    // Where the job is now (a page opened late, or reloaded, starts here);
    // wait() then relays what happens next.
    const now = await jm.get(req.params.id, { signal: ctl.signal });
    if (now.progress?.total > 0) send('progress', { done: now.progress.done, total: now.progress.total, message: now.progress.message ?? '' });
    const result = await jm.wait(req.params.id, {
      signal: ctl.signal,
      onProgress: (p) => send('progress', p),
    });
    send('done', { state: 'completed', result: JSON.parse(result) });
  } catch (e) {
    if (!ctl.signal.aborted) send('done', { state: e.job?.state ?? 'error', error: e.message });
  }
  res.end();
});

app.get('/', (req, res) => res.type('html').send(`<!doctype html>
<title>jobmesh + Express</title>
<form id=f><input name=to value="someone@example.com"> <button>send</button></form>
<progress id=p max=1 value=0></progress> <span id=s></span>
<script>
f.onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch('/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ to: f.to.value }) });
  const { id } = await r.json();
  const es = new EventSource('/jobs/' + id + '/events');
  es.addEventListener('progress', (m) => { const d = JSON.parse(m.data); p.max = d.total; p.value = d.done; s.textContent = d.message; });
  es.addEventListener('done', (m) => { s.textContent = m.data; es.close(); });
};
</script>`));

app.use((err, req, res, next) => {
  if (err instanceof NotFoundError) return res.status(404).json({ error: err.detail });
  if (err instanceof ApiError) return res.status(err.status >= 500 ? 502 : err.status).json({ error: err.detail, code: err.code });
  res.status(502).json({ error: String(err.message ?? err) });
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
