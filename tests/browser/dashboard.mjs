// Drives Debian's chromium through Playwright against benchctl's pages and prints what it
// saw as one JSON line on stdout; tests/dashboard_browser.rs runs it and judges the result.
//
//   node dashboard.mjs live URL      the live page of a running `benchctl run --dashboard`
//   node dashboard.mjs report FILE   a static report.html
//   node dashboard.mjs history URL   the page of `benchctl dashboard DIR`
//
// It never downloads a browser: CHROMIUM (default /usr/bin/chromium) is launched as is.
import { chromium } from "playwright-core";

const [mode, target] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Chart titles with their point counts.
async function charts(page) {
  return page.$$eval("svg.plot", (l) => l.map((s) => ({ title: s.dataset.title, points: +s.dataset.points })));
}

// At the current viewport: horizontal overflow of the page, the smallest rendered text in a
// chart (px on screen), and whether every chart fits inside the viewport.
async function layout(page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    let minText = Infinity, widest = 0;
    for (const svg of document.querySelectorAll("svg.plot")) {
      const r = svg.getBoundingClientRect();
      widest = Math.max(widest, r.right);
      const scale = r.width / (svg.viewBox.baseVal.width || r.width);
      for (const t of svg.querySelectorAll("text")) {
        if (!t.textContent.trim()) continue;
        minText = Math.min(minText, parseFloat(getComputedStyle(t).fontSize) * scale);
      }
    }
    // Tables may scroll inside their own box, never the page.
    const tables = [...document.querySelectorAll(".table")].map((d) => ({
      scrolls: d.scrollWidth > d.clientWidth + 1,
      overflowX: getComputedStyle(d).overflowX,
    }));
    return {
      viewport: vw,
      pageWidth: document.documentElement.scrollWidth,
      minChartText: minText === Infinity ? null : minText,
      widestChartRight: widest,
      tables,
    };
  });
}

// At the current viewport: elements wider than the card (section or panel) that holds them,
// and cells squeezed into a narrow column (three or more lines of under 12 characters each:
// a row far taller than its content needs).
async function fit(page) {
  return page.evaluate(() => {
    const SVG = "http://www.w3.org/2000/svg";
    const name = (e) => e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className.split(" ")[0] : "");
    const wide = [], squeezed = [];
    for (const card of document.querySelectorAll("section, .panel, .card")) {
      const c = card.getBoundingClientRect();
      if (!c.width) continue;
      for (const e of card.querySelectorAll("*")) {
        if (e.namespaceURI === SVG && e.tagName.toLowerCase() !== "svg") continue;
        const r = e.getBoundingClientRect();
        if (r.width && (r.right > c.right + 1 || r.left < c.left - 1)) {
          wide.push({ card: (card.querySelector("h2, .label") || card).textContent.slice(0, 40), element: name(e), width: Math.round(r.width), cardWidth: Math.round(c.width) });
        }
      }
    }
    for (const e of document.querySelectorAll("td, th, dd, li, .msg, .exp-measured")) {
      const r = e.getBoundingClientRect();
      const cs = getComputedStyle(e);
      const lh = parseFloat(cs.lineHeight) || parseFloat(cs.fontSize) * 1.45;
      const lines = Math.round(r.height / lh);
      const chars = e.textContent.trim().length;
      if (lines >= 3 && chars / lines < 12) squeezed.push({ element: name(e), lines, chars, text: e.textContent.trim().slice(0, 40) });
    }
    return { viewport: document.documentElement.clientWidth, pageWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 12), squeezed: squeezed.slice(0, 12) };
  });
}

async function main() {
  const browser = await chromium.launch({ executablePath, args, headless: true });
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  const requests = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("request", (r) => requests.push(r.url()));
  const out = { mode, consoleErrors, requests };
  // A hostile scenario description tries to run `window.pwned = 1`.
  const pwned = () => page.evaluate(() => window.pwned === 1);
  try {
    if (mode === "report") {
      await page.goto("file://" + target, { waitUntil: "load" });
      await page.waitForSelector("svg.plot", { timeout: 10000 });
      out.charts = await charts(page);
      out.statusPanel = await page.$("#status") !== null;
      out.pwned = await pwned();
      out.alerts = await page.$$eval("li.alert", (l) => l.map((a) => a.dataset.key));
      out.phaseRows = await page.$$eval("#phases tr", (l) => l.length - 1);
      await page.setViewportSize({ width: 1280, height: 900 });
      await sleep(700);
      out.desktop = await layout(page);
      out.desktopFit = await fit(page);
      await page.setViewportSize({ width: 390, height: 844 });
      await sleep(700);
      out.phone = await layout(page);
      out.phoneFit = await fit(page);
    } else if (mode === "live") {
      await page.goto(target, { waitUntil: "load" });
      await page.waitForSelector('svg.plot[data-title="a: throughput"]', { timeout: 15000 });
      const first = (await charts(page)).find((c) => c.title === "a: throughput").points;
      await sleep(2500);
      const second = (await charts(page)).find((c) => c.title === "a: throughput").points;
      out.throughputPoints = [first, second];
      // The expectation's status over time, and the alerts shown, until the run ends.
      out.statuses = [];
      out.alertCounts = [];
      out.phoneChecked = false;
      const started = Date.now();
      while (Date.now() - started < 60000) {
        const s = await page.$$eval("[data-expectation]", (l) => l.map((c) => c.dataset.status));
        const last = out.statuses[out.statuses.length - 1];
        if (s.length && s[0] !== last) out.statuses.push(s[0]);
        out.alertCounts.push(await page.$$eval('li.alert[data-key^="expect:"]', (l) => l.length));
        const state = await page.$eval("#state", (e) => e.textContent).catch(() => "");
        // Halfway through the run: the phone layout, while the page is live.
        if (!out.phoneChecked && (Date.now() - started) > 4000) {
          await page.setViewportSize({ width: 390, height: 844 });
          await sleep(700);
          out.phone = await layout(page);
          out.phoneChecked = true;
          await page.setViewportSize({ width: 1200, height: 900 });
        }
        if (state === "finished") break;
        await sleep(250);
      }
      await sleep(600);
      out.finalState = await page.$eval("#state", (e) => e.textContent).catch(() => "");
      out.alerts = await page.$$eval("li.alert", (l) => l.map((a) => a.dataset.key));
      out.charts = await charts(page);
      out.verdict = await page.$$eval("header .badge", (l) => l.map((b) => b.textContent));
      out.title = await page.title();
      out.heading = await page.$eval("header h1", (h) => h.firstChild.textContent);
      out.pwned = await pwned();
    } else if (mode === "history") {
      await page.goto(target, { waitUntil: "load" });
      await page.waitForSelector("svg.plot", { timeout: 15000 });
      out.charts = await charts(page);
      out.markers = await page.$$eval("#markers tr.marker-row", (l) => l.map((r) => r.textContent));
      out.exportCsv = await page.$eval("#export-csv", (a) => a.href);
      await page.selectOption("#f-metric", "throughput");
      await sleep(300);
      out.chartsAfterFilter = await charts(page);
      out.phone = await (async () => { await page.setViewportSize({ width: 390, height: 844 }); await sleep(500); return layout(page); })();
    } else {
      throw new Error("mode must be live, report or history, not " + mode);
    }
  } catch (e) {
    out.error = String(e && e.stack || e);
  }
  await browser.close();
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => { process.stdout.write(JSON.stringify({ error: String(e && e.stack || e) }) + "\n"); process.exit(1); });
