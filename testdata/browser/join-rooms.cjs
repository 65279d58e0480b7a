#!/usr/bin/env node
// join-rooms.cjs checks the tutorial page (testdata/www) in a real headless
// Chromium, as a person would use it: two users in two browser contexts
// join the same room and write to each other.
//
// Usage: node join-rooms.cjs <site url> <token A> <token B> <screenshot.png>
//
// The users' names are the tokens' `sub` claims. Each page opens
// <site url>/?token=..., types the room number and presses Enter:
//   1. page A joins: its own join, the tutorial's announcement and welcome;
//   2. page B joins; A shows "<B> joined room 7" and a second announcement;
//   3. A types a message and presses Enter; B shows "<A> says <message>";
//   4. B does the same; A shows "<B> says <message>".
// It also checks the hint to open a second tab and the favicon. It saves
// both pages side by side in <screenshot.png>, and each page alone next to
// it (-a.png, -b.png), then prints one JSON line:
//   {"ok":true,"browser":"...","a":{"status":"...","events":[...]},"b":{...},"screenshots":[...]}
// or {"ok":false,"error":"...",...} with exit code 1. Diagnostics go to
// stderr. Every step is bounded; the whole run by OVERALL_MS.
//
// The browser is the system's Chromium (CHROMIUM_PATH or /usr/bin/chromium);
// playwright-core never downloads one. For an https:// site the browser
// must trust the site's CA itself (the HTTPS test puts Caddy's root in the
// NSS database under HOME); certificate errors are never ignored.
"use strict";

const path = require("path");
const { launch, out } = require("./chromium.cjs");

const OVERALL_MS = 75000; // the whole run, launch included
const STEP_MS = 15000; // each navigation, click or wait
const ROOM = "7";
const ANNOUNCEMENT = "Room You are in room number: " + ROOM;

// eventLines returns the page's event list, one string per <li>.
function eventLines(page) {
  return page.$$eval("#events li", (lis) => lis.map((li) => li.textContent));
}

// rawEvents returns the event name and text behind each line, the
// tutorial's protocol view.
function rawEvents(page) {
  return page.$$eval("#events li", (lis) =>
    lis.map((li) => ({ event: li.dataset.event, text: li.querySelector(".text").textContent })),
  );
}

// protocols lists the HTTP versions the page's Socket.IO requests went
// over (resource timing's nextHopProtocol: "http/1.1", "h2", "h3").
function protocols(page) {
  return page.evaluate(() => [
    ...new Set(
      performance
        .getEntriesByType("resource")
        .filter((e) => e.name.includes("/socket.io/"))
        .map((e) => e.nextHopProtocol),
    ),
  ]);
}

async function state(page) {
  return {
    status: await page.textContent("#status"),
    events: await eventLines(page),
    raw: await rawEvents(page),
    protocols: await protocols(page),
  };
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

// join types the room number and presses Enter, then waits until the page
// says it is connected.
async function join(page, what) {
  await page.fill("#roomId", ROOM);
  await page.press("#roomId", "Enter");
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
  await page.press("#message", "Enter");
}

// subjectOf reads a token's sub claim, the name the page shows.
function subjectOf(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8")).sub;
}

// checkChrome checks what a newcomer needs besides the events: the hint to
// open a second tab, and a favicon that loads.
async function checkChrome(page, what) {
  const hint = (await page.textContent("#hint")) || "";
  if (!/second tab/.test(hint)) throw new Error(`${what}: no hint to open a second tab: ${JSON.stringify(hint)}`);
  const icon = await page.evaluate(async () => {
    const link = document.querySelector('link[rel="icon"]');
    if (!link) return "no <link rel=icon>";
    const r = await fetch(link.href);
    return r.ok ? "" : `favicon ${link.href}: HTTP ${r.status}`;
  });
  if (icon) throw new Error(`${what}: ${icon}`);
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
  const browser = await launch(STEP_MS);
  let a, b;
  try {
    const nameA = subjectOf(tokenA);
    const nameB = subjectOf(tokenB);
    a = await openPage(browser, "A", url, tokenA, logs);
    b = await openPage(browser, "B", url, tokenB, logs);
    await checkChrome(a, "page A");

    await join(a, "page A joins");
    await waitCount(a, `You joined room ${ROOM} as ${nameA}`, 1, "page A, own join");
    await waitCount(a, ANNOUNCEMENT, 1, "page A, the tutorial's announcement");
    await waitPrefix(a, `Server Message: welcome ${nameA}, `, "page A, welcome");

    await join(b, "page B joins");
    await waitCount(b, ANNOUNCEMENT, 1, "page B, the tutorial's announcement");
    await waitPrefix(b, `Server Message: welcome ${nameB}, `, "page B, welcome");
    await waitCount(a, ANNOUNCEMENT, 2, "page A, the announcement of B's join");
    await waitCount(a, `${nameB} joined room ${ROOM}`, 1, "page A shows who joined");

    await send(a, "hello from page A");
    await waitCount(a, "You say hello from page A", 1, "page A shows what it sent");
    await waitCount(b, `${nameA} says hello from page A`, 1, "page B shows A's message and its sender");
    await send(b, "hello from page B");
    await waitCount(a, `${nameB} says hello from page B`, 1, "page A shows B's message and its sender");

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
