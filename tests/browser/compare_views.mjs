// Drives Debian's chromium (headless, through playwright-core) against the comparison views of
// a report.html (a file: URL) or of a coordinator's live view (an http: URL). Run by
// tests/tests/compare_views_browser.rs:
//
//   1. loads the page; waits until the parallel coordinates have drawn (a canvas with lines),
//      the importance has rows (or says why it has none) and the trial table lists rows;
//   2. checks the table: sorting by test accuracy puts the best first (report), the filter
//      narrows it (report), the next page comes from the server (live); then brushes the first
//      axis of the plot by dragging along it and checks the table lists fewer trials;
//   3. takes a screenshot, and prints one JSON line: the times to first paint, first
//      contentful paint and the views drawn (ms from navigation), and the rows listed.
//
// Settings come from the environment: SWEEP_VIEWS_URL, SWEEP_VIEWS_KIND (report or live),
// SWEEP_VIEWS_SCREENSHOT, SWEEP_VIEWS_PROFILE (a fresh, empty folder for chromium's profile).
// Exits 1 with a message naming what failed; any console error or script error fails it.

import { chromium } from "playwright-core";

const STEP_TIMEOUT = 60_000;
const TOTAL_TIMEOUT = 240_000;

function setting(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`comparison views test: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const url = setting("SWEEP_VIEWS_URL");
const kind = setting("SWEEP_VIEWS_KIND");
const screenshot = setting("SWEEP_VIEWS_SCREENSHOT");
const profile = setting("SWEEP_VIEWS_PROFILE");

const problems = [];
let context = null;

async function fail(message) {
  console.error(`comparison views test (${kind}) failed: ${message}`);
  for (const p of problems) console.error(`  page problem: ${p}`);
  if (context) {
    try {
      await context.pages()[0]?.screenshot({ path: screenshot, fullPage: false });
      console.error(`screenshot of the failure: ${screenshot}`);
    } catch (e) {
      // The page is gone too: nothing more to show.
    }
    await context.close().catch(() => {});
  }
  process.exit(1);
}

const watchdog = setTimeout(() => fail(`not done after ${TOTAL_TIMEOUT / 1000} s`), TOTAL_TIMEOUT);

async function step(what, action) {
  try {
    return await action();
  } catch (e) {
    return fail(`${what}: ${e.message.split("\n")[0]}`);
  }
}

context = await step("launching /usr/bin/chromium", () =>
  chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  }));
const page = context.pages()[0] ?? (await context.newPage());
page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
page.on("request", (r) => {
  const u = r.url();
  const ok = kind === "report" ? u.startsWith("file:") || u.startsWith("data:")
    : u.startsWith(new URL(url).origin) || u.startsWith("data:");
  if (!ok) problems.push(`request to another origin: ${u}`);
});
page.on("requestfailed", (r) => {
  if (!r.url().endsWith("/api/events")) problems.push(`request failed: ${r.url()}`);
});

// 1. The views draw.
await step("loading the page", () => page.goto(url, { waitUntil: "load", timeout: STEP_TIMEOUT }));
await step("waiting for the parallel coordinates' canvas", () =>
  page.locator("#cmp-parallel canvas").first().waitFor({ timeout: STEP_TIMEOUT }));
await step("waiting for the trial table's rows", () =>
  page.locator("#cmp-table .tabulator-row").first().waitFor({ timeout: STEP_TIMEOUT }));
await step("waiting for the importance", () =>
  page.locator("#cmp-importance table tr, #cmp-importance .cmp-note").first()
    .waitFor({ timeout: STEP_TIMEOUT }));
await step("waiting for the views to say they are drawn", () =>
  page.waitForFunction(() => document.body.dataset.compareDrawn, null, { timeout: STEP_TIMEOUT }));
const importanceRows = await page.locator("#cmp-importance table tr").count();
const drawnText = (await page.locator("#cmp-count").textContent()).trim();
const drawn = Number(drawnText.split(" ")[0]);
if (!(drawn > 0)) await fail(`the plot draws no trial: ${JSON.stringify(drawnText)}`);
// The canvas has coloured pixels (the lines), not only a blank background.
const inked = await page.evaluate(() => {
  const c = document.querySelector("#cmp-parallel canvas");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] > 240 && d[i + 1] > 240 && d[i + 2] > 240)) n++;
  return n;
});
if (inked < 1000) await fail(`the parallel coordinates' canvas is nearly blank (${inked} pixels drawn)`);
const rowsShown = await page.locator("#cmp-table .tabulator-row").count();
if (kind === "report" && rowsShown > 200) {
  await fail(`the table has ${rowsShown} rows in the DOM: it is not virtualised`);
}

const shownText = async () => (await page.locator("#cmp-shown").textContent()).trim();
const firstCount = async () => Number((await shownText()).split(" ")[0]);

// 2. The table sorts, filters and pages; the brush filters it.
if (kind === "report") {
  const total = await firstCount();
  await step("sorting by test accuracy, lowest first", async () => {
    // The table starts sorted by test accuracy, highest first; one click turns it round.
    await page.locator('#cmp-table .tabulator-col[tabulator-field="test"]').click();
  });
  const cells = await page.locator('#cmp-table .tabulator-row .tabulator-cell[tabulator-field="test"]')
    .allTextContents();
  const values = cells.map(Number).filter((x) => isFinite(x));
  for (let i = 1; i < values.length; i++) {
    if (values[i] < values[i - 1]) await fail(`not sorted ascending after a click: ${values.slice(0, 10)}`);
  }
  await step("filtering by a trial's name", async () => {
    const name = (await page.locator('#cmp-table .tabulator-row .tabulator-cell[tabulator-field="name"]')
      .first().textContent()).trim();
    await page.locator("#cmp-filter").fill(name);
    await page.waitForFunction((t) => Number(document.getElementById("cmp-shown").textContent.split(" ")[0]) < t,
      total, { timeout: STEP_TIMEOUT });
    await page.locator("#cmp-filter").fill("");
    await page.waitForFunction((t) => Number(document.getElementById("cmp-shown").textContent.split(" ")[0]) === t,
      total, { timeout: STEP_TIMEOUT });
  });
} else {
  await step("turning to the table's next page (from the server)", async () => {
    const before = await page.locator('#cmp-table .tabulator-row .tabulator-cell[tabulator-field="name"]')
      .first().textContent();
    await page.locator('#cmp-table .tabulator-page[data-page="next"]').click();
    await page.waitForFunction((b) => {
      const c = document.querySelector('#cmp-table .tabulator-row .tabulator-cell[tabulator-field="name"]');
      return c && c.textContent !== b;
    }, before, { timeout: STEP_TIMEOUT });
  });
}
const beforeBrush = await shownText();
await step("brushing the first axis", async () => {
  await page.locator("#cmp-parallel").scrollIntoViewIfNeeded();
  const box = await page.locator("#cmp-parallel").boundingBox();
  // compare.js lays the plot out with 60 px left and 40 px top; the first axis is at the left.
  const x = box.x + 60, top = box.y + 40 + 20, bottom = box.y + box.height / 2;
  await page.mouse.move(x, top);
  await page.mouse.down();
  await page.mouse.move(x, (top + bottom) / 2, { steps: 5 });
  await page.mouse.move(x, bottom, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction((b) => document.getElementById("cmp-shown").textContent.trim() !== b,
    beforeBrush, { timeout: STEP_TIMEOUT });
});
const afterBrush = await shownText();

// 3. A picture, the times, and a clean exit.
const times = await page.evaluate(() => {
  const paint = Object.fromEntries(performance.getEntriesByType("paint").map((p) => [p.name, p.startTime]));
  const nav = performance.getEntriesByType("navigation")[0];
  return {
    first_paint_ms: Math.round(paint["first-paint"] ?? -1),
    first_contentful_paint_ms: Math.round(paint["first-contentful-paint"] ?? -1),
    load_event_ms: Math.round(nav ? nav.loadEventEnd : -1),
    views_drawn_ms: Number(document.body.dataset.compareDrawn),
  };
});
await step("scrolling to the views", () => page.locator("#sweep-compare").scrollIntoViewIfNeeded());
await step("taking the screenshot", () => page.locator(kind === "report" ? "#sweep-compare" : "#compare-section")
  .screenshot({ path: screenshot }));
if (problems.length) await fail("the page had problems");
clearTimeout(watchdog);
await context.close();
console.log("views " + JSON.stringify({
  kind, ...times, lines_drawn: drawn, importance_rows: importanceRows, table_rows_in_dom: rowsShown,
  listed_before_brush: beforeBrush, listed_after_brush: afterBrush, screenshot,
}));
