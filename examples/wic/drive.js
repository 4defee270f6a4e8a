// Runs the WIC page once in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core; no browser download) and reports what it did.
//
//   node drive.js [--url PAGE_URL] [--param NAME=VALUE]... [--screenshot FILE]
//                 [--modules DIR] [--chromium PATH] [--timeout-ms N]
//
// Without --url it serves the page itself on a free loopback port. Each
// --param is added to the page's query (ws, impu, impi, password, expires,
// check, gather_timeout_ms, revoke_grace_ms: see docs/wic.md).
//
// stderr: one line per step, as the page shows it. stdout: one JSON object,
// {"ok": bool, "url": ..., "steps": [...], "passwordShown": bool,
// "screenshot": ...}; passwordShown is there when a 200 OK carried a
// credential, and true fails the run (the page must never show it).
// Exit status: 0 the flow worked, 1 it did not, 2 the driver could not run.
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer } from './server.js';

const here = dirname(fileURLToPath(import.meta.url));

// The flags this machine's closed network needs (docs/wic.md); headless and
// a fresh --user-data-dir come from launchPersistentContext below.
export const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function parseArgs(argv) {
  const o = {
    params: [], modulesDir: join(here, 'node_modules'), chromium: '/usr/bin/chromium', timeoutMs: 60000,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${name} needs a value`);
    switch (name) {
      case '--url': o.url = value; break;
      case '--param': {
        const eq = value.indexOf('=');
        if (eq <= 0) throw new Error(`--param ${value}: expected NAME=VALUE`);
        o.params.push([value.slice(0, eq), value.slice(eq + 1)]);
        break;
      }
      case '--screenshot': o.screenshot = value; break;
      case '--modules': o.modulesDir = value; break;
      case '--chromium': o.chromium = value; break;
      case '--timeout-ms': o.timeoutMs = Number(value); break;
      default: throw new Error(`unknown option ${name}`);
    }
  }
  return o;
}

function printStep(s) {
  const mark = { ok: '✓', fail: '✗' }[s.status] || '•';
  process.stderr.write(`  ${mark} ${s.text}\n`);
  if (s.status === 'fail' && s.detail) process.stderr.write(`      ${s.detail.replace(/\n/g, '\n      ')}\n`);
}

async function drive(o) {
  // playwright-core from the same node_modules as JsSIP (the tests keep it
  // in the build tree, not beside this file).
  const { chromium } = createRequire(join(dirname(o.modulesDir), 'package.json'))('playwright-core');
  let server;
  let base = o.url;
  if (!base) {
    const s = await startServer({ modulesDir: o.modulesDir });
    server = s.server;
    base = s.url;
  }
  const url = new URL(base);
  for (const [k, v] of o.params) url.searchParams.set(k, v);

  const profile = await mkdtemp(join(tmpdir(), 'wic-chromium-'));
  let context;
  const result = { ok: false, url: url.href.replace(/([?&]password=)[^&]*/, '$1(hidden)'), steps: [] };
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS,
      viewport: { width: 1000, height: 760 },
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (err) => process.stderr.write(`page error: ${err.message}\n`));
    page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`page console: ${m.text()}\n`); });
    // The password as the 200 OK carried it on the wire, to check below
    // that the page never shows it (it is never printed here).
    let password = null;
    page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
      const text = String(payload);
      const header = /^TURN-Credential:[ \t]*(.*)$/im.exec(text);
      const value = header && /(?:^|;)\s*password="?([^";\s]+)/i.exec(header[1]);
      if (text.startsWith('SIP/2.0 200') && value) password = value[1];
    }));
    await page.goto(url.href);

    const deadline = Date.now() + o.timeoutMs;
    let printed = 0;
    for (;;) {
      const state = await page.evaluate(() => (window.wic
        ? { steps: window.wic.steps, done: window.wic.done, ok: window.wic.ok } : null));
      if (state) {
        state.steps.slice(printed).forEach(printStep);
        printed = state.steps.length;
        result.steps = state.steps;
        result.ok = state.ok;
        if (state.done) break;
      }
      if (Date.now() > deadline) {
        result.error = `the page did not finish within ${o.timeoutMs} ms`;
        break;
      }
      await new Promise((r) => { setTimeout(r, 100); });
    }
    if (password) {
      const shown = await page.evaluate(() => document.documentElement.outerHTML + JSON.stringify(window.wic));
      result.passwordShown = shown.includes(password);
      if (result.passwordShown) result.ok = false;
    }
    if (o.screenshot) {
      await page.screenshot({ path: o.screenshot, fullPage: true });
      result.screenshot = o.screenshot;
    }
  } finally {
    if (context) await context.close();
    if (server) server.close();
    await rm(profile, { recursive: true, force: true });
  }
  return result;
}

try {
  const result = await drive(parseArgs(process.argv.slice(2)));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`wic driver: ${err.message}\n`);
  process.stdout.write(`${JSON.stringify({ ok: false, error: err.message })}\n`);
  process.exit(2);
}
