// The dashboard of a standby broker, in Debian's chromium, for
// tests/http/test_ha_follow.py (which starts etcd and the brokers, kills
// the leader and says "go" on stdin). Not a node --test file: it prints
// one line per step and exits 0 when all held.
//
//   node ha_standby.mjs STANDBY_HTTP LEADER_NAME LEADER_HTTP
import readline from 'node:readline';
import { openBrowser } from './lib/browser.mjs';

const [standby, leaderName, leaderHttp] = process.argv.slice(2);
const browser = await openBrowser();
const fail = async (why) => {
  console.log(`fail ${why}`);
  await browser.close();
  process.exit(1);
};
try {
  const page = await browser.newPage();
  await page.goto(`${standby}/#/jobs`);
  // The standby says what it is and links to the leader's dashboard, at
  // the same view; the "reconnecting" banner stays hidden.
  const banner = page.locator('#standby');
  await banner.waitFor({ state: 'visible', timeout: 20000 });
  const text = await page.locator('#standby-text').textContent();
  if (!text.includes('standby') || !text.includes(`The leader is ${leaderName}`)) await fail(`banner text: ${text}`);
  const href = await page.locator('#leader-link').getAttribute('href');
  if (href !== `${leaderHttp}/#/jobs`) await fail(`leader link: ${href}`);
  if (await page.locator('#banner').isVisible()) await fail('the reconnecting banner shows on a standby');
  console.log('standby-shown');
  // Once this broker leads, the same page comes alive without a reload.
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) if (line === 'go') break;
  await banner.waitFor({ state: 'hidden', timeout: 30000 });
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 30000 });
  const errors = browser.problems.filter((p) => p.startsWith('pageerror'));
  if (errors.length) await fail(errors.join('; '));
  console.log('leader-shown');
} catch (e) {
  await fail(e.message.split('\n')[0]);
}
await browser.close();
process.exit(0);
