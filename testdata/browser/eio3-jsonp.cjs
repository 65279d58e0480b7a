#!/usr/bin/env node
// eio3-jsonp.cjs drives socket.io-client 2.x in a real headless Chromium
// with forceJSONP, against a Caddy with allow_eio3: JSONP polling is
// script tags (GET) and hidden forms (POST), which only a browser does.
//
// Usage: node eio3-jsonp.cjs <site url> <other-origin url>
//
// The site serves the 2.x bundle at /v2/socket.io.js and the tutorial
// page's /app.js, opened only as a page of the origin. In a page of the
// site's own origin, two JSONP clients join room j: each gets its welcome,
// one relays a message to the other, a room request is acked. In a page
// of another origin (the same server under another host name), a JSONP
// client must not connect: its script tags carry that origin as Referer.
// Prints one JSON line {"ok":true,"same":{...},"other":{...}} or
// {"ok":false,"error":"..."} (exit code 1). Every step is bounded.
"use strict";

const { launch, out } = require("./chromium.cjs");

const OVERALL_MS = 60000;
const STEP_MS = 15000;

// inPage runs in the browser: it loads the 2.x bundle and reports what the
// JSONP clients saw, within STEP_MS.
async function inPage(page, site, expectConnect) {
  await page.addScriptTag({ url: site + "/v2/socket.io.js" });
  return page.evaluate(
    ({ site, expectConnect, stepMs }) =>
      new Promise((resolve) => {
        const res = { transports: [], welcome: [], relayed: [], ack: null, errors: [] };
        const opts = { forceNew: true, forceJSONP: true, transports: ["polling"], reconnection: false, query: { room: "j" } };
        const a = io(site, opts);
        const done = () => {
          a.close();
          if (b) b.close();
          resolve(res);
        };
        const timer = setTimeout(() => {
          res.timeout = true;
          done();
        }, stepMs);
        let b = null;
        a.on("connect_error", (e) => {
          res.errors.push(String(e && (e.message || e.description || e)));
          if (!expectConnect) {
            clearTimeout(timer);
            done();
          }
        });
        a.on("welcome", (t) => res.welcome.push(t));
        a.on("connect", () => {
          const tr = a.io.engine.transport;
          // engine.io-client 3.x's JSONP transport numbers its callback.
          res.transports.push(typeof tr.index === "number" ? "jsonp" : tr.name);
          if (!expectConnect) return;
          b = io(site, opts);
          // The welcome comes from the emit rule, which runs after the
          // join rule: b is in room "j" once it has it, so a's message is
          // sent then (b's connect can come before its join).
          b.on("welcome", (t) => {
            res.welcome.push(t);
            a.emit("chat", 'hi "\u2028</script> from a');
          });
          b.on("chat", (m) => {
            res.relayed.push(m);
            a.emit("join_room", "extra-j", (reply) => {
              res.ack = reply;
              clearTimeout(timer);
              done();
            });
          });
        });
      }),
    { site, expectConnect, stepMs: STEP_MS },
  );
}

async function main() {
  const [site, other] = process.argv.slice(2);
  if (!site || !other) throw new Error("usage: node eio3-jsonp.cjs <site url> <other-origin url>");
  const browser = await launch(STEP_MS);
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.setDefaultTimeout(STEP_MS);
    await page.goto(site + "/app.js"); // any page of the origin; its text is shown, not run
    const same = await inPage(page, site, true);
    const page2 = await ctx.newPage();
    page2.setDefaultTimeout(STEP_MS);
    await page2.goto(other + "/app.js");
    const cross = await inPage(page2, site, false);
    out({ ok: true, browser: browser.version(), same, other: cross });
  } catch (e) {
    out({ ok: false, error: e && e.message ? e.message : String(e) });
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

const overall = setTimeout(() => {
  out({ ok: false, error: `eio3-jsonp.cjs did not finish within ${OVERALL_MS} ms` });
  process.exit(2);
}, OVERALL_MS);

main()
  .catch((e) => {
    out({ ok: false, error: e && e.message ? e.message : String(e) });
    process.exitCode = 1;
  })
  .finally(() => clearTimeout(overall));
