// Dashboard render benchmark (run by scripts/bench-dashboard.sh, not by the tests): in Debian's
// Chromium, how long from asking for a report (the URL's hash changes) to its table and chart on
// the page, over the data set the script generated. Prints the median of --runs, and the API's
// own time for the same report as the page reports it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const execFileP = promisify(execFile);
const args = Object.fromEntries(process.argv.slice(2).map((a, i, all) => (a.startsWith('--') ? [a.slice(2), all[i + 1]] : null)).filter(Boolean));
const { url, data, bin } = args;
const runs = Number(args.runs ?? 5);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const cdp = await context.newCDPSession(page);
await cdp.send('WebAuthn.enable');
await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true } });
const { stdout } = await execFileP(bin, ['admin', 'create', 'bench@example.com', '--data', data], { env: { ...process.env, HEARTH_AUTH__ORIGIN: url } });
await page.goto(stdout.match(/(http:\/\/\S+\/enrol#[0-9a-f]{64})/)[1]);
await page.getByRole('button', { name: 'Create my passkey' }).click();
await page.getByRole('link', { name: 'Continue' }).click();
await page.getByRole('link', { name: 'Insights' }).waitFor();

const reports = [
  ['insights: every event per day, 90 days', `#/insights?event=%24any&measure=total&interval=day&from=${args.from}&to=${args.to}&view=line`, '[data-testid=insights-table]'],
  ['insights: uniques per day by country', `#/insights?event=%24any&measure=uniques&breakdown=mp_country_code&interval=day&from=${args.from}&to=${args.to}&view=line`, '[data-testid=insights-table]'],
  ['funnel: 3 steps, 14-day window', `#/funnels?step=Sign+Up&step=Create+API+Key&step=API+Request&window=14d&counting=uniques&from=${args.from}&to=${args.to}`, '[data-testid=funnel-table]'],
  ['retention: weekly, 8 periods', `#/retention?born=Sign+Up&return=API+Request&unit=week&periods=8&from=${args.from}&to=${args.to}`, '[data-testid=retention-table]'],
];
console.log(`report rendered in the dashboard (Chromium), median of ${runs} after one warm-up | page ms | API ms (as the page measured)`);
for (const [name, hash, selector] of reports) {
  const pageTimes = [];
  const apiTimes = [];
  for (let run = 0; run <= runs; run += 1) {
    await page.evaluate(() => { location.hash = '#/dashboards'; });
    await page.getByRole('heading', { name: 'Dashboards' }).waitFor();
    const started = Date.now();
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.waitForSelector(selector);
    const elapsed = Date.now() - started;
    const said = await page.locator('main .status').first().innerText();
    if (run > 0) {
      pageTimes.push(elapsed);
      const api = said.match(/in (\d+) ms/);
      if (api) apiTimes.push(Number(api[1]));
    }
  }
  console.log(`${name.padEnd(42)} | ${String(median(pageTimes)).padStart(7)} | ${apiTimes.length ? String(median(apiTimes)).padStart(7) : '      –'}`);
}
await browser.close();
