// Opens one object's trace in the real Jaeger UI in headless Chromium, as a person would, and
// prints what is on the screen as one JSON object on stdout (progress goes to stderr).
//
//   node hack/browser/jaeger-ui.mjs --ui http://127.0.0.1:16686 --start µs --end µs \
//       [--tags '{"group":"apps","resource":"deployments","namespace":"shop","name":"web"}'] \
//       [--services tracing,tree] [--artifacts DIR] [--screenshot FILE] [--no-details]
//
// For each service (a kairn display pipeline): open the search page, search with the tags over
// [start, end], click the result whose title names the object, wait for the timeline, screenshot
// it, then read every span row (label, depth from the indent guides, error icon), open every
// span's detail and its "Warnings" section, and read the page text. cmd/kairn's TestJaegerUIE2E
// asserts on the result; hack/ui.sh --screenshot uses only the screenshot (--no-details).
//
// Chromium: $KAIRN_CHROMIUM or /usr/bin/chromium (Debian's). puppeteer-core is resolved from
// $KAIRN_BROWSER_DIR/node_modules (hack/browser.sh modules), else from beside this script.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(process.env.KAIRN_BROWSER_DIR || here, 'noop.js'));
let puppeteer;
try {
  puppeteer = require('puppeteer-core');
} catch (e) {
  console.error(`jaeger-ui.mjs: puppeteer-core not found (${e.message}); run hack/browser.sh modules and set KAIRN_BROWSER_DIR to what it prints`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { services: 'tracing', details: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-details') o.details = false;
    else if (a.startsWith('--')) o[a.slice(2)] = argv[++i];
    else throw new Error(`unexpected argument ${a}`);
  }
  for (const k of ['ui', 'start', 'end']) if (!o[k]) throw new Error(`--${k} is required`);
  o.tags = o.tags || JSON.stringify({ group: 'apps', resource: 'deployments', namespace: 'shop', name: 'web' });
  o.services = o.services.split(',').filter(Boolean);
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('jaeger-ui.mjs:', ...a);

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const executablePath = process.env.KAIRN_CHROMIUM || '/usr/bin/chromium';
  // A fresh profile each run: nothing cached or remembered from an earlier run can hide a failure.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kairn-chromium-'));
  const result = { ui: opt.ui, chromium: executablePath, services: {}, consoleErrors: [], failedRequests: [], screenshots: [] };
  const t0 = Date.now();
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    // The flags keep Chromium from reaching out (updates, sync, field trials) and from needing a
    // GPU or a user namespace sandbox, neither of which CI has.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', `--user-data-dir=${profile}`],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    page.on('console', (m) => {
      if (m.type() === 'error') result.consoleErrors.push(`${m.text()} (${m.location()?.url || ''})`);
    });
    page.on('pageerror', (e) => result.consoleErrors.push(`uncaught: ${e.message}`));
    page.on('requestfailed', (r) => result.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) result.failedRequests.push(`${r.request().method()} ${r.url()}: HTTP ${r.status()}`);
    });
    result.launchMs = Date.now() - t0;
    for (const svc of opt.services) {
      log(`service ${svc}`);
      result.services[svc] = await openTrace(page, opt, svc, result);
    }
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  result.totalMs = Date.now() - t0;
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
}

async function openTrace(page, opt, svc, result) {
  const out = { searchResults: [], rows: [], details: [], warnings: [], timings: {} };
  // 1. The search page, as a person lands on it: the form renders and lists the services.
  let t = Date.now();
  const services = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/services', { timeout: 30000 });
  await page.goto(`${opt.ui}/search`, { waitUntil: 'domcontentloaded' });
  try {
    out.servicesListed = (await (await services).json()).data || [];
    await page.waitForSelector('.SearchForm--submit', { timeout: 30000 });
  } catch (e) {
    out.servicesListed = [];
    out.error = `the search page did not load the services: ${e.message}`;
  }
  // 2. The search itself. The form's antd date pickers and selects are not worth driving: the
  // form navigates to exactly this URL when "Find Traces" is pressed (and a shared link is this).
  const q = new URLSearchParams({ service: svc, start: opt.start, end: opt.end, limit: '20', lookback: 'custom', tags: opt.tags });
  await page.goto(`${opt.ui}/search?${q}`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('.ResultItemTitle, [data-test="no-results"], .ant-alert-error', { timeout: 30000 });
  out.searchResults = await page.$$eval('.ResultItemTitle--title', (els) => els.map((e) => e.innerText.trim()));
  out.timings.searchMs = Date.now() - t;
  if (out.searchResults.length === 0) {
    out.error = `search for ${svc} ${opt.tags} listed no trace: ${(await page.evaluate(() => document.body.innerText)).slice(0, 500)}`;
    return out;
  }
  // 3. Click the result that names the object (a search by name and namespace should list one).
  const tags = JSON.parse(opt.tags);
  let idx = out.searchResults.findIndex((s) => s.includes(tags.name || ''));
  if (idx < 0) idx = 0;
  out.opened = out.searchResults[idx];
  t = Date.now();
  const links = await page.$$('.ResultItemTitle a.ResultItemTitle--item');
  await Promise.all([page.waitForSelector('.span-row', { timeout: 30000 }), links[idx].click()]);
  await sleep(300); // let the minimap and the header settle before the screenshot
  out.timings.openMs = Date.now() - t;
  out.url = page.url();
  out.header = await page.$eval('.TracePageHeader', (e) => e.innerText).catch(() => '');
  const total = /Total Spans\s*(\d+)/.exec(out.header);
  out.totalSpans = total ? Number(total[1]) : -1;
  const shot = opt.screenshot && svc === opt.services[0] ? opt.screenshot : opt.artifacts && path.join(opt.artifacts, `trace-${svc.replace(/\W+/g, '_')}.png`);
  if (shot) {
    await page.mouse.move(5, 895); // no hover highlight on the row that was clicked
    await sleep(100);
    await page.screenshot({ path: shot });
    result.screenshots.push(shot);
  }
  if (!opt.details) return out;

  // 4. Every span row. The list is virtualized: a very tall viewport puts every row on screen.
  await page.setViewport({ width: 1400, height: Math.min(60000, 200 + 30 * Math.max(out.totalSpans, 30)) });
  await page.evaluate(() => window.scrollTo(0, 0));
  await sleep(300);
  out.rows = await page.$$eval('.span-row', (els) => els.map((e) => ({
    // One indent guide per level, the root's included: the depth a person sees.
    depth: e.querySelectorAll('.SpanTreeOffset--indentGuide').length - 1,
    service: (e.querySelector('.span-svc-name')?.innerText || '').trim(),
    operation: (e.querySelector('.endpoint-name')?.innerText || '').trim(),
    label: (e.querySelector('.span-name')?.innerText || '').replace(/\s+/g, ' ').trim(),
    error: !!e.querySelector('.SpanBarRow--errorIcon'),
  })));
  // 5. Open every span's detail and the "Warnings" section in it, read it, close it again (one
  // open detail at a time keeps every row rendered and each re-render small). In the page: a
  // click costs one React render instead of a round trip per element handle.
  t = Date.now();
  out.details = await page.evaluate(async () => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
    const names = () => document.querySelectorAll('.span-row .span-name');
    const text = (e) => (e?.innerText || '').replace(/\s+/g, ' ').trim();
    const details = [];
    const n = names().length;
    for (let i = 0; i < n; i++) {
      const name = names()[i];
      const label = text(name);
      name.click();
      await frame();
      const d = document.querySelector('.detail-row');
      if (!d) {
        details.push({ label, detail: '', warnings: '', missing: true });
        continue;
      }
      for (const h of d.querySelectorAll('.AccordianWarnings--header[aria-checked="false"]')) h.click();
      if (d.querySelector('.AccordianWarnings')) await frame();
      const d2 = document.querySelector('.detail-row');
      details.push({ label, detail: text(d2), warnings: text(d2?.querySelector('.AccordianWarnings')) });
      names()[i].click(); // close it again
      await frame();
    }
    return details;
  });
  out.warnings = out.details.filter((d) => d.warnings).map((d) => ({ span: d.label, text: d.warnings }));
  out.timings.detailsMs = Date.now() - t;
  out.pageText = await page.evaluate(() => document.body.innerText);
  await page.setViewport({ width: 1400, height: 900 });
  return out;
}

main().catch((e) => {
  console.error('jaeger-ui.mjs:', e.stack || e);
  process.exit(1);
});
