#!/usr/bin/env node
// join-rooms.cjs checks the tutorial page (testdata/www) in a real headless
// Chromium, as the tutorial's "joining the rooms" picture shows it: two
// pages join the same room and each shows the other's join and message.
//
// Usage: node join-rooms.cjs <site url> <token A> <token B> <screenshot.png>
//
// Two browser contexts (two independent users) open <site url>/?token=...,
// type the room number into #roomId and press Join:
//   1. page A joins and sees its own announcement and welcome message;
//   2. page B joins; A shows B's join (a second announcement);
//   3. page A presses Join again (a new socket, as after a page reload);
//      B shows A's join;
//   4. A sends a message that B shows, then B one that A shows.
// It saves both pages side by side in <screenshot.png>, and each page alone
// next to it (-a.png, -b.png), then prints one JSON line:
//   {"ok":true,"browser":"...","a":{"status":"...","events":[...]},"b":{...},"screenshots":[...]}
// or {"ok":false,"error":"...",...} with exit code 1. Diagnostics go to
// stderr. Every step is bounded; the whole run by OVERALL_MS.
//
// The browser is the system's Chromium (CHROMIUM_PATH or /usr/bin/chromium);
// playwright-core never downloads one.
"use strict";

const path = require("path");
const { chromium } = require("playwright-core");

const OVERALL_MS = 75000; // the whole run, launch included
const STEP_MS = 15000; // each navigation, click or wait
const ROOM = "7";
const ANNOUNCEMENT = "room-userId: You are in room number: " + ROOM;
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// eventLines returns the page's event list, one string per <li>.
function eventLines(page) {
  return page.$$eval("#events li", (lis) => lis.map((li) => li.textContent));
}

async function state(page) {
  return { status: await page.textContent("#status"), events: await eventLines(page) };
}

// waitCount waits until the event list holds at least n lines equal to line.
async function waitCount(page, line, n, what) {
  try {
    await page.waitForFunction(
      ([l, k]) => [...document.querySelectorAll("#events li")].filter((li) => li.textContent === l).length >= k,
      [line, n],
      { timeout: STEP_MS },
    );
  } catch (e) {
    throw new Error(`${what}: want ${n} x ${JSON.stringify(line)}, page shows ${JSON.stringify(await eventLines(page))}`);
  }
}

// waitPrefix waits for a line starting with prefix.
async function waitPrefix(page, prefix, what) {
  try {
    await page.waitForFunction(
      (p) => [...document.querySelectorAll("#events li")].some((li) => li.textContent.startsWith(p)),
      prefix,
      { timeout: STEP_MS },
    );
  } catch (e) {
    throw new Error(`${what}: no line starting ${JSON.stringify(prefix)}, page shows ${JSON.stringify(await eventLines(page))}`);
  }
}

// join types the room number and presses Join, then waits until the page
// says it is connected.
async function join(page, what) {
  await page.fill("#roomId", ROOM);
  await page.click("#join");
  try {
    await page.waitForFunction(
      () => document.querySelector("#status").textContent.startsWith("connected as "),
      null,
      { timeout: STEP_MS },
    );
  } catch (e) {
    throw new Error(`${what}: not connected; status ${JSON.stringify(await page.textContent("#status"))}`);
  }
}

async function send(page, text) {
  await page.fill("#message", text);
  await page.click("#send");
}

async function openPage(browser, name, url, token, logs) {
  const context = await browser.newContext({ viewport: { width: 640, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on("console", (m) => logs.push(`${name} console: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`${name} page error: ${e.message}`));
  await page.goto(url + "/?token=" + encodeURIComponent(token), { waitUntil: "load" });
  return page;
}

// screenshots saves each page and a side-by-side picture of both.
async function screenshots(browser, pages, shot) {
  const ext = path.extname(shot) || ".png";
  const base = shot.slice(0, shot.length - path.extname(shot).length);
  const files = [];
  const images = [];
  for (const [name, page] of pages) {
    const file = `${base}-${name}${ext}`;
    const buf = await page.screenshot({ path: file, fullPage: true });
    files.push(file);
    images.push(buf.toString("base64"));
  }
  const context = await browser.newContext({ viewport: { width: 1300, height: 780 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const cells = images
    .map((b, i) => `<figure><figcaption>page ${"AB"[i]}</figcaption><img src="data:image/png;base64,${b}"></figure>`)
    .join("");
  await page.setContent(
    `<style>body{margin:0;display:flex;gap:10px;background:#888;font:14px sans-serif}` +
      `figure{margin:0;background:#fff}figcaption{padding:2px 6px}img{display:block;border-top:1px solid #888}</style>${cells}`,
  );
  await page.screenshot({ path: shot, fullPage: true });
  await context.close();
  return [shot, ...files];
}

async function main() {
  const [url, tokenA, tokenB, shot] = process.argv.slice(2);
  if (!url || !tokenA || !tokenB || !shot) {
    throw new Error("usage: node join-rooms.cjs <site url> <token A> <token B> <screenshot.png>");
  }
  const logs = [];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: STEP_MS,
  });
  let a, b;
  try {
    a = await openPage(browser, "A", url, tokenA, logs);
    b = await openPage(browser, "B", url, tokenB, logs);

    await join(a, "page A joins");
    await waitCount(a, ANNOUNCEMENT, 1, "page A, own join");
    await waitPrefix(a, "message_from_server: Message: ", "page A, welcome");

    await join(b, "page B joins");
    await waitCount(b, ANNOUNCEMENT, 1, "page B, own join");
    await waitPrefix(b, "message_from_server: Message: ", "page B, welcome");
    await waitCount(a, ANNOUNCEMENT, 2, "page A shows B's join");

    await join(a, "page A joins again");
    await waitCount(b, ANNOUNCEMENT, 2, "page B shows A's join");
    await waitCount(a, ANNOUNCEMENT, 3, "page A, own second join");

    await send(a, "hello from page A");
    await waitCount(b, "message_from_client: hello from page A", 1, "page B shows A's message");
    await send(b, "hello from page B");
    await waitCount(a, "message_from_client: hello from page B", 1, "page A shows B's message");

    const files = await screenshots(browser, [["a", a], ["b", b]], shot);
    out({ ok: true, browser: browser.version(), a: await state(a), b: await state(b), screenshots: files });
  } catch (e) {
    // Keep what the pages showed, and a picture of it, for the test log.
    const res = { ok: false, error: e.message, logs };
    try {
      if (a) res.a = await state(a);
      if (b) res.b = await state(b);
      if (a && b) res.screenshots = await screenshots(browser, [["a", a], ["b", b]], shot);
    } catch (e2) {
      res.artifactError = e2.message;
    }
    out(res);
    process.exitCode = 1;
  } finally {
    for (const l of logs) console.error(l);
    await browser.close();
  }
}

const overall = setTimeout(() => {
  out({ ok: false, error: `join-rooms.cjs did not finish within ${OVERALL_MS} ms` });
  process.exit(2);
}, OVERALL_MS);

main()
  .catch((e) => {
    out({ ok: false, error: e && e.message ? e.message : String(e) });
    process.exitCode = 1;
  })
  .finally(() => clearTimeout(overall));
