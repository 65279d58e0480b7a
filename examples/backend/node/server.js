// The webhook backend of examples/backend/Caddyfile, in Node with no
// packages (node:http and node:crypto only).
//
//   WEBHOOK_SECRET=... node examples/backend/node/server.js
//
// BACKEND (default 127.0.0.1:9000) is the address to listen on, as the
// Caddyfile reads it. Every call is verified (signature, timestamp, hook)
// before it is read.
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");

const MAX_SKEW = 300; // seconds a call's timestamp may be away from our clock
const MAX_BODY = 1 << 20; // Caddy's calls are far smaller

const SECRET = process.env.WEBHOOK_SECRET || "";
if (!SECRET) {
  console.error("backend: WEBHOOK_SECRET is not set");
  process.exit(1);
}

const log = (line) => console.error("backend: " + line);

function send(res, status, body) {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
}

// verify returns the decoded call, or null after answering 401/400.
function verify(req, res, body) {
  const ts = req.headers["x-socketio-timestamp"] || "";
  const hook = req.headers["x-socketio-hook"] || "";
  const sig = req.headers["x-socketio-signature"] || "";
  const path = req.url.split("?", 1)[0]; // as Caddy sent it: escaped, no query
  if (!/^[0-9]+$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > MAX_SKEW) {
    log(`refused: timestamp '${ts}' missing or more than ${MAX_SKEW}s away`);
    send(res, 401);
    return null;
  }
  const mac = crypto.createHmac("sha256", SECRET);
  mac.update(`${ts}.${hook}.${path}.`);
  mac.update(body);
  const want = Buffer.from("sha256=" + mac.digest("hex"));
  const got = Buffer.from(sig);
  // timingSafeEqual needs equal lengths; the length of a signature is no secret.
  if (want.length !== got.length || !crypto.timingSafeEqual(want, got)) {
    log(`refused: bad signature on ${path}`);
    send(res, 401);
    return null;
  }
  let call = null;
  try {
    call = JSON.parse(body.toString("utf8"));
  } catch (e) {
    call = null;
  }
  if (call === null || typeof call !== "object" || call.type !== hook) {
    log(`refused: hook header '${hook}' does not match the body`);
    send(res, 400);
    return null;
  }
  return call;
}

const userOf = (call) => (call.data && typeof call.data.user === "string" ? call.data.user : "someone");

const hooks = {
  connect(call, res) {
    const user = call.claims && call.claims.sub;
    if (typeof user !== "string" || user === "") {
      send(res, 200, { error: { message: "please log in", data: { login: "/login" } } });
      return;
    }
    log(`connect ${user} (${call.socket})`);
    send(res, 200, { rooms: [`user-${user}`, "lobby"], data: { user } });
  },
  event(call, res) {
    const user = userOf(call);
    if (call.event !== "chat") {
      send(res, 200, { error: `unknown event ${call.event}` });
      return;
    }
    const args = Array.isArray(call.args) ? call.args : [];
    const text = typeof args[0] === "string" ? args[0] : "";
    log(`event chat from ${user}: ${text}`);
    send(res, 200, {
      ack: ["delivered"],
      actions: [{ emit: { rooms: ["lobby"], except: [call.socket], event: "chat", args: [{ from: user, text }] } }],
    });
  },
  disconnect(call, res) {
    log(`disconnect ${userOf(call)} (${call.socket}): ${call.reason || ""}`);
    send(res, 204);
  },
};

const server = http.createServer((req, res) => {
  if (!req.url.startsWith("/socket/")) {
    res.writeHead(200, { "Content-Type": "text/plain" }).end("backend is up\n");
    return;
  }
  if (req.method !== "POST") {
    send(res, 405);
    return;
  }
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      send(res, 413);
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on("end", () => {
    if (res.writableEnded) return;
    const call = verify(req, res, Buffer.concat(chunks));
    if (call === null) return;
    const handle = Object.hasOwn(hooks, call.type) ? hooks[call.type] : null;
    if (!handle) {
      send(res, 400, { error: "unknown hook" });
      return;
    }
    handle(call, res);
  });
});

const addr = process.env.BACKEND || "127.0.0.1:9000";
const cut = addr.lastIndexOf(":");
server.listen(Number(addr.slice(cut + 1)), addr.slice(0, cut), () => log(`listening on ${addr}`));
