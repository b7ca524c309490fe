// Time to interactive of a run's detail page: from navigation until every
// chart of the run has drawn. Usage: node bench/page-detail.mjs URL CHARTS [REPEATS]
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const [url, charts, repeats = '5'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const times = [];
for (let i = 0; i < Number(repeats); i++) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const start = Date.now();
  await page.goto(url);
  await page.waitForFunction(
    (n) => document.querySelectorAll('.chart[data-rendered="1"]').length >= n,
    Number(charts), { timeout: 60000, polling: 20 });
  times.push(Date.now() - start);
  await context.close();
}
await browser.close();
times.sort((a, b) => a - b);
console.log(JSON.stringify({ runs_ms: times, median_ms: times[Math.floor(times.length / 2)] }));
