// The headless Chromium every browser test drives: Debian's (or
// CHROMIUM_PATH), no sandbox (tests run in containers as root), and none
// of the background traffic a browser starts on its own (updates, sync,
// QUIC), so a run reaches nothing but the test's own servers. out() is
// how each script reports: one JSON line on stdout.
"use strict";

const { chromium } = require("playwright-core");

const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

// launch starts the browser, bounded by timeoutMs.
function launch(timeoutMs) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: ARGS,
    timeout: timeoutMs,
  });
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

module.exports = { launch, out };
