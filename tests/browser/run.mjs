// ctest's entry for the browser tests (browser_dashboard,
// browser_dashboard_auth, browser_jsclient): checks what they need, then
// runs `node --test` on the file named (dashboard.test.mjs by default).
//
// Exit 77 (ctest: skipped) with a clear message only when chromium is not
// installed (scripts/install-browser-deps installs it; where it cannot, the
// tests cannot run). A missing playwright-core is a failure: it comes from
// npm through tests/browser/package-lock.json.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const here = path.dirname(new URL(import.meta.url).pathname);
const chromium = process.env.JOBMESH_CHROMIUM || '/usr/bin/chromium';

if (!fs.existsSync(chromium)) {
  console.log(`SKIP: ${chromium} is not installed, so the dashboard cannot be tested in a browser. ` +
    'Install it with scripts/install-browser-deps (apt-get install chromium).');
  process.exit(77);
}
try {
  createRequire(path.join(here, 'package.json')).resolve('playwright-core');
} catch {
  console.error('FAIL: playwright-core is not installed in tests/browser/node_modules: ' +
    'run scripts/install-browser-deps (npm ci in tests/browser).');
  process.exit(1);
}
// One test file per ctest entry (default: the dashboard's), so each can be
// repeated on its own.
const file = process.argv[2] || 'dashboard.test.mjs';
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', file],
  { cwd: here, stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
