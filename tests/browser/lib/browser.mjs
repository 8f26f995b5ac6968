// Debian's chromium, driven by playwright-core (no browser download: the
// executable is /usr/bin/chromium), in a fresh profile directory that is
// removed on close. Page errors and console errors are collected so a test
// can assert the page ran clean.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.JOBMESH_CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run'];

// Opens a browser context; { colorScheme: 'dark' } for the dark theme.
export async function openBrowser({ colorScheme = 'light', viewport = { width: 1280, height: 900 } } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'jm-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      colorScheme,
      viewport,
      timeout: 60000,
    });
  } catch (e) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const problems = [];
  const watch = (page) => {
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
  };
  context.on('page', watch);
  for (const p of context.pages()) watch(p);
  return {
    context,
    problems,
    async newPage() {
      const existing = context.pages();
      return existing.length > 0 && existing[0].url() === 'about:blank' ? existing[0] : context.newPage();
    },
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Where the dashboard keeps a tab's token (sessionStorage), as after its
// prompt (dashboard_auth.test.mjs tests the prompt itself).
export const TOKEN_KEY = 'jobmesh.token';

// A new tab of browser whose sessionStorage starts with token, on every
// page it loads until the page changes it.
export async function tabWithToken(browser, token) {
  const page = await browser.context.newPage();
  await page.addInitScript(({ key, t }) => {
    if (!sessionStorage.getItem(key)) sessionStorage.setItem(key, t);
  }, { key: TOKEN_KEY, t: token });
  return page;
}

// A request from the page itself with the tab's token, as a user could
// send from the console: the broker, not the page, must refuse what the
// token may not do. body (optional) is sent as JSON.
export async function fetchFromPage(page, method, path, body) {
  return page.evaluate(async ({ method, path, body, key }) => {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(key)}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  }, { method, path, body, key: TOKEN_KEY });
}
