#!/usr/bin/env node
// admin-ui.cjs opens the @socket.io/admin-ui 0.5.1 dashboard, as Caddy
// serves it from the npm package's ui/dist, in a headless Chromium with
// the network to anything but the site cut off (offline: its two external
// stylesheets fail), and uses it as a person would:
//   1. the login form, with a wrong password: the form says so;
//   2. the right password: the form closes and the dashboard connects;
//   3. the Sockets page lists the socket whose id is given;
//   4. its row's disconnect button (an icon, blank offline) disconnects it:
//      the row goes.
//
// Usage: node admin-ui.cjs <site url> <user> <password> <socket id> <screenshot.png>
//
// It prints one JSON line: {"ok":true,"blocked":[...external URLs...],...}
// or {"ok":false,"error":"...",...} with exit code 1. Every step is
// bounded; the whole run by OVERALL_MS.
"use strict";

const { launch, out } = require("./chromium.cjs");

const OVERALL_MS = 75000;
const STEP_MS = 15000;

// login fills the connection form and submits it.
async function login(page, url, user, password) {
  await page.getByLabel("Server URL").fill(url);
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Connect" }).click();
}

async function main() {
  const [url, user, password, socketId, shot] = process.argv.slice(2);
  if (!url || !user || !password || !socketId || !shot) {
    throw new Error("usage: node admin-ui.cjs <site url> <user> <password> <socket id> <screenshot.png>");
  }
  const logs = [];
  const blocked = [];
  const browser = await launch(STEP_MS);
  const result = { ok: false, blocked, logs };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const origin = new URL(url).origin;
    await context.route("**/*", (route) => {
      const u = route.request().url();
      if (u.startsWith(origin + "/") || u.startsWith(origin.replace(/^http/, "ws") + "/")) return route.continue();
      blocked.push(u);
      return route.abort("internetdisconnected");
    });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on("console", (m) => logs.push(`console: ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`page error: ${e.message}`));
    await page.goto(url + "/admin-ui/", { waitUntil: "load" });

    await login(page, url, user, password + "-wrong");
    await page.getByText("Invalid credentials").waitFor();
    result.refused = true;

    await login(page, url, user, password);
    await page.getByLabel("Password").waitFor({ state: "hidden" });
    result.connected = true;

    await page.goto(url + "/admin-ui/#/sockets/", { waitUntil: "load" });
    await page.getByText(socketId).first().waitFor();
    result.socketShown = true;
    await page.screenshot({ path: shot, fullPage: true });
    result.screenshot = shot;
    // The row's button disconnects the socket (a click on the row opens
    // its details); back on the list, its row is gone.
    await page.locator("tbody tr", { hasText: socketId }).locator("button").click();
    await page.evaluate(() => (location.hash = "#/sockets/"));
    try {
      await page.waitForFunction(
        (id) => ![...document.querySelectorAll("tbody tr")].some((tr) => tr.textContent.includes(id)),
        socketId,
        { timeout: STEP_MS },
      );
    } catch (e) {
      throw new Error(`the socket is still listed after its disconnect button: ${await page.textContent("body")}`);
    }
    result.disconnected = true;
    result.ok = true;
  } finally {
    await browser.close();
  }
  return result;
}

const timer = setTimeout(() => {
  out({ ok: false, error: `timed out after ${OVERALL_MS} ms` });
  process.exit(1);
}, OVERALL_MS);

main().then(
  (r) => {
    clearTimeout(timer);
    out(r);
    process.exit(r.ok ? 0 : 1);
  },
  (e) => {
    clearTimeout(timer);
    out({ ok: false, error: String((e && e.stack) || e) });
    process.exit(1);
  },
);
