// Drives Debian's chromium (headless, through playwright-core) against a coordinator's live web
// view. Run by coordinator/tests/live_view_browser.rs, which starts the coordinator and a
// simulated worker and moves the sweep on when this script says so:
//
//   1. loads the page and checks that it shows every trial, one of them running at epoch 1;
//      prints "page loaded";
//   2. without reloading, waits until that trial has succeeded, its learning curve has all its
//      points and the accuracy table has a value, and the other running trial's curve grows;
//      then finds it among the succeeded trials with the page's "Find trials" (a page of
//      /api/status);
//   3. takes a full-page screenshot and prints "page updated".
//
// Settings come from the environment: SWEEP_LIVE_URL, SWEEP_LIVE_TRIALS (comma-separated),
// SWEEP_LIVE_FINISHING, SWEEP_LIVE_RUNNING, SWEEP_LIVE_EPOCHS, SWEEP_LIVE_SCREENSHOT,
// SWEEP_LIVE_PROFILE (a fresh, empty folder for chromium's profile). Exits 1 with a message
// naming what failed.

import { chromium } from "playwright-core";

const STEP_TIMEOUT = 30_000;
const TOTAL_TIMEOUT = 120_000;

function setting(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`live view test: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const url = setting("SWEEP_LIVE_URL");
const trials = setting("SWEEP_LIVE_TRIALS").split(",");
const finishing = setting("SWEEP_LIVE_FINISHING");
const running = setting("SWEEP_LIVE_RUNNING");
const epochs = setting("SWEEP_LIVE_EPOCHS");
const screenshot = setting("SWEEP_LIVE_SCREENSHOT");
const profile = setting("SWEEP_LIVE_PROFILE");

const problems = [];
let context = null;

async function fail(message) {
  console.error(`live view test failed: ${message}`);
  for (const p of problems) console.error(`  page problem: ${p}`);
  if (context) {
    try {
      await context.pages()[0]?.screenshot({ path: screenshot, fullPage: true });
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

function expectEqual(what, got, expected) {
  if (got !== expected) return fail(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
}

context = await step("launching /usr/bin/chromium", () =>
  chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  }));
const page = context.pages()[0] ?? (await context.newPage());
const origin = new URL(url).origin;
page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
page.on("request", (r) => {
  if (!r.url().startsWith(origin)) problems.push(`request to another origin: ${r.url()}`);
});
page.on("requestfailed", (r) => {
  // The event stream is cut when the page closes; anything else failing is a problem.
  if (!r.url().endsWith("/api/events")) problems.push(`request failed: ${r.url()}`);
});

// 1. The page loads and shows the sweep as it is.
await step("loading the page", () => page.goto(url, { waitUntil: "load" }));
await page.evaluate(() => { window.sweepTestMarker = "not reloaded"; });
for (const t of trials) {
  await step(`waiting for the row of trial ${t}`, () =>
    page.locator(`tr[data-trial="${t}"]`).waitFor({ timeout: STEP_TIMEOUT }));
}
await step(`waiting for ${finishing} to show as running at epoch 1`, () =>
  page.locator(`tr[data-trial="${finishing}"][data-state="running"]`)
    .filter({ hasText: `1/${epochs}` }).waitFor({ timeout: STEP_TIMEOUT }));
expectEqual("points of the running trial's curve",
  await page.locator(`polyline.curve[data-trial="${finishing}"]`).getAttribute("data-points"), "1");
expectEqual("trials done", (await page.locator("#done").textContent()).trim(), `0 / ${trials.length}`);
expectEqual("connection state", (await page.locator("#conn").textContent()).trim(), "live");
if (problems.length) await fail("the page had problems while loading");
console.log("page loaded");

// 2. The sweep moves on; the page follows without reloading.
await step(`waiting for ${finishing} to succeed`, () =>
  page.locator(`tr[data-trial="${finishing}"][data-state="succeeded"]`)
    .waitFor({ timeout: STEP_TIMEOUT }));
await step(`waiting for the whole curve of ${finishing}`, () =>
  page.locator(`polyline.curve[data-trial="${finishing}"][data-points="${epochs}"]`)
    .waitFor({ state: "attached", timeout: STEP_TIMEOUT }));
await step(`waiting for ${running}'s curve to grow`, () =>
  page.locator(`polyline.curve[data-trial="${running}"][data-points="2"]`)
    .waitFor({ state: "attached", timeout: STEP_TIMEOUT }));
await step("waiting for a value in the accuracy table", () =>
  page.locator("table.acc td.best").first().waitFor({ timeout: STEP_TIMEOUT }));
expectEqual("trials done", (await page.locator("#done").textContent()).trim(), `1 / ${trials.length}`);
const best = (await page.locator("#best-trial").textContent()).trim();
if (!best.startsWith(finishing)) await fail(`the best trial shows as ${JSON.stringify(best)}`);
expectEqual("marker set before the updates (a reload would clear it)",
  await page.evaluate(() => window.sweepTestMarker), "not reloaded");
const updates = Number(await page.evaluate(() => document.body.dataset.updates));
if (!(updates >= 2)) await fail(`the page rendered ${updates} snapshots; expected several`);
await step("finding the succeeded trials", async () => {
  await page.locator("#f-state").selectOption("succeeded");
  await page.locator("#f-list").click();
  await page.locator(`tr[data-found="${finishing}"][data-state="succeeded"]`)
    .waitFor({ timeout: STEP_TIMEOUT });
});
expectEqual("trials found", (await page.locator("#f-where").textContent()).trim(),
  "trials 1 to 1 of 1");

// 3. A picture for people, and a clean exit.
await step("taking the screenshot", () => page.screenshot({ path: screenshot, fullPage: true }));
if (problems.length) await fail("the page had problems");
clearTimeout(watchdog);
await context.close();
console.log(`page updated after ${updates} snapshots; screenshot ${screenshot}`);
