#!/usr/bin/env node
// driver.cjs runs official socket.io-client instances on behalf of Go tests.
//
// Protocol: newline-delimited JSON. Commands arrive on stdin, events leave on
// stdout, diagnostics go to stderr. Binary values travel as {"$bin":"<base64>"}
// in both directions, at any depth inside arrays and objects.
//
// Commands:
//   {"cmd":"connect","id":"a","version":"4"|"3"|"2","url":"...","opts":{...},
//    "acks":[{"event":"x","mode":"echo"|"reply"|"ignore","reply":[...]}]}
//   {"cmd":"emit","id":"a","event":"e","args":[...]}
//   {"cmd":"emit","id":"a","event":"e","args":[...],"ack":true,"timeout":2000,"seq":7}
//   {"cmd":"ack_rule","id":"a","event":"x","mode":"reply","reply":[...]}
//   {"cmd":"disconnect","id":"a"}   socket.disconnect(), the client stays known
//   {"cmd":"reconnect","id":"a"}    socket.connect() again after a disconnect
//   {"cmd":"drop","id":"a"}         close the engine transport (the manager may reconnect)
//   {"cmd":"close_all"}             disconnect and forget every client
//   {"cmd":"exit"}                  close_all, then exit
//
// Events:
//   {"type":"ready","versions":{"4":"4.8.x","3":"3.1.3"}}
//   {"type":"connect","id":"a","sid":"...","transport":"polling","recovered":false}
//   {"type":"connect_error","id":"a","message":"...","data":...}
//   {"type":"event","id":"a","event":"name","args":[...],"ack":true}
//   {"type":"disconnect","id":"a","reason":"..."}
//   {"type":"upgrade","id":"a","transport":"websocket"}
//   {"type":"reconnect_attempt"|"reconnect"|"reconnect_error"|"reconnect_failed","id":"a",...}
//   {"type":"ack","id":"a","seq":7,"args":[...]}
//   {"type":"ack_error","id":"a","seq":7,"error":"operation has timed out"}
//   {"type":"ack_error","id":"a","seq":7,"error":"...","driver":true}  the emit itself failed
//   {"type":"error","id":"a","message":"..."}   a command could not be carried out
"use strict";

const path = require("path");
const readline = require("readline");

// Keep stdout for protocol lines only: anything a library prints goes to stderr.
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

const DEFAULT_ACK_TIMEOUT_MS = 5000;

const libs = {};
function lib(version) {
  if (libs[version]) return libs[version];
  let name;
  if (version === "4") name = "socket.io-client";
  else if (version === "3") name = "socket.io-client-v3";
  else if (version === "2") name = "socket.io-client-v2";
  else throw new Error(`unknown client version ${JSON.stringify(version)} (want "4", "3" or "2")`);
  libs[version] = require(name);
  return libs[version];
}

function versionOf(name) {
  try {
    return require(path.join(name, "package.json")).version;
  } catch (e) {
    return null;
  }
}

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(id, message) {
  const o = { type: "error", message: String(message) };
  if (id !== undefined) o.id = id;
  send(o);
}

// toWire turns JS values into JSON-safe values, Buffers into {"$bin":..}.
function toWire(v, depth = 0) {
  if (depth > 64) return null;
  if (v === null || v === undefined) return v;
  if (Buffer.isBuffer(v)) return { $bin: v.toString("base64") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  }
  if (Array.isArray(v)) return v.map((x) => toWire(x, depth + 1));
  if (typeof v === "object") {
    if (typeof v.toJSON === "function") return toWire(v.toJSON(), depth + 1);
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === "function") continue;
      out[k] = toWire(x, depth + 1);
    }
    return out;
  }
  if (typeof v === "function") return undefined;
  return v;
}

// fromWire is the inverse of toWire: {"$bin":..} objects become Buffers.
function fromWire(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(fromWire);
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === "$bin" && typeof v.$bin === "string") {
    return Buffer.from(v.$bin, "base64");
  }
  const out = {};
  for (const k of keys) out[k] = fromWire(v[k]);
  return out;
}

// clients maps an id picked by the Go side to its socket and ack rules.
const clients = new Map();

function transportName(socket) {
  const engine = socket.io && socket.io.engine;
  return engine && engine.transport ? engine.transport.name : undefined;
}

function ackReply(entry, event, args) {
  const rule = entry.acks.get(event) || entry.acks.get("*") || { mode: "echo" };
  if (rule.mode === "ignore") return null;
  if (rule.mode === "reply") return fromWire(rule.reply || []);
  return args;
}

function setRule(entry, r) {
  if (!r || typeof r.event !== "string") throw new Error("ack rule needs an event name");
  const mode = r.mode || (r.reply ? "reply" : "echo");
  if (!["echo", "reply", "ignore"].includes(mode)) throw new Error(`unknown ack mode ${mode}`);
  entry.acks.set(r.event, { mode, reply: r.reply });
}

function connect(c) {
  if (typeof c.id !== "string" || c.id === "") throw new Error("connect needs an id");
  if (clients.has(c.id)) throw new Error(`client ${c.id} already exists`);
  if (typeof c.url !== "string") throw new Error("connect needs a url");
  const io = lib(c.version || "4");
  const opts = Object.assign({ forceNew: true }, fromWire(c.opts || {}));
  const autoConnect = opts.autoConnect !== false;
  // Listeners go on before the socket connects, so nothing is missed.
  opts.autoConnect = false;
  const socket = io(c.url, opts);
  const id = c.id;
  const entry = { socket, acks: new Map() };
  for (const r of c.acks || []) setRule(entry, r);
  clients.set(id, entry);

  socket.on("connect", () => {
    const o = { type: "connect", id, sid: socket.id, transport: transportName(socket) };
    if (typeof socket.recovered === "boolean") o.recovered = socket.recovered;
    send(o);
  });
  socket.on("connect_error", (err) => {
    const o = { type: "connect_error", id, message: err && err.message };
    if (err && err.data !== undefined) o.data = toWire(err.data);
    send(o);
  });
  socket.on("disconnect", (reason) => send({ type: "disconnect", id, reason }));
  // socket.io-client 2.x reports a refused CONNECT as "error" with the
  // refusal's data (a string or an object), and has no onAny.
  if (c.version === "2") {
    socket.on("error", (data) => {
      const o = { type: "connect_error", id, message: typeof data === "string" ? data : data && data.message };
      if (data && typeof data === "object") o.data = toWire(data);
      send(o);
    });
  }
  const onAny = (event, ...args) => {
    let ack = null;
    if (args.length > 0 && typeof args[args.length - 1] === "function") ack = args.pop();
    send({ type: "event", id, event, args: toWire(args), ack: ack !== null });
    if (ack) {
      const reply = ackReply(entry, event, args);
      if (reply !== null) ack(...reply);
    }
  };
  if (typeof socket.onAny === "function") {
    socket.onAny(onAny);
  } else {
    // 2.x: every incoming event goes through onevent(packet); the driver
    // has no listener of its own per event, so it takes them all here.
    socket.onevent = function (packet) {
      const args = (packet.data || []).slice();
      if (packet.id != null) args.push(this.ack(packet.id));
      onAny(...args);
    };
  }

  const manager = socket.io;
  const watchEngine = () => {
    const engine = manager.engine;
    if (!engine || engine.__driverWatched) return;
    engine.__driverWatched = true;
    engine.on("upgrade", (t) => send({ type: "upgrade", id, transport: t && t.name }));
  };
  manager.on("open", watchEngine);
  manager.on("reconnect_attempt", (n) => send({ type: "reconnect_attempt", id, attempt: n }));
  manager.on("reconnect", (n) => send({ type: "reconnect", id, attempt: n }));
  manager.on("reconnect_error", (err) =>
    send({ type: "reconnect_error", id, message: err && err.message }),
  );
  manager.on("reconnect_failed", () => send({ type: "reconnect_failed", id }));

  if (autoConnect) socket.connect();
  watchEngine();
}

function mustClient(c) {
  const entry = clients.get(c.id);
  if (!entry) throw new Error(`unknown client ${JSON.stringify(c.id)}`);
  return entry;
}

function emit(c) {
  const { socket } = mustClient(c);
  if (typeof c.event !== "string") throw new Error("emit needs an event name");
  const args = fromWire(c.args || []);
  if (!c.ack) {
    socket.emit(c.event, ...args);
    return;
  }
  const id = c.id;
  const seq = c.seq;
  const ms = typeof c.timeout === "number" && c.timeout > 0 ? c.timeout : DEFAULT_ACK_TIMEOUT_MS;
  if (typeof socket.timeout === "function") {
    socket.timeout(ms).emit(c.event, ...args, (err, ...res) => {
      if (err) send({ type: "ack_error", id, seq, error: err.message || String(err) });
      else send({ type: "ack", id, seq, args: toWire(res) });
    });
    return;
  }
  // socket.io-client 3.x has no timeout(): race the ack against a timer.
  let done = false;
  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    send({ type: "ack_error", id, seq, error: "operation has timed out" });
  }, ms);
  socket.emit(c.event, ...args, (...res) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    send({ type: "ack", id, seq, args: toWire(res) });
  });
}

function closeAll() {
  for (const { socket } of clients.values()) {
    try {
      socket.disconnect();
      if (socket.io && typeof socket.io._close === "function") socket.io._close();
    } catch (e) {
      console.error("driver: closing client:", e);
    }
  }
  clients.clear();
}

function handle(line) {
  if (line.trim() === "") return;
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    fail(undefined, `parsing command: ${e.message}`);
    return;
  }
  try {
    switch (c.cmd) {
      case "connect":
        connect(c);
        break;
      case "emit":
        emit(c);
        break;
      case "ack_rule":
        setRule(mustClient(c), c);
        break;
      case "disconnect":
        mustClient(c).socket.disconnect();
        break;
      case "reconnect":
        mustClient(c).socket.connect();
        break;
      case "drop": {
        const engine = mustClient(c).socket.io.engine;
        if (engine) engine.close();
        break;
      }
      case "close_all":
        closeAll();
        break;
      case "exit":
        closeAll();
        process.exit(0);
        break;
      default:
        throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
    }
  } catch (e) {
    fail(c.id, `${c.cmd}: ${e && e.message}`);
    // An emit waiting for its ack must not wait out its timeout in vain.
    if (c.cmd === "emit" && c.ack) {
      send({ type: "ack_error", id: c.id, seq: c.seq, error: `${c.cmd}: ${e && e.message}`, driver: true });
    }
  }
}

process.on("uncaughtException", (e) => {
  console.error("driver: uncaught:", e);
  fail(undefined, `uncaught: ${e && e.message}`);
});

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", handle);
// The Go side owns this process: when its end of stdin goes away, stop.
rl.on("close", () => {
  closeAll();
  process.exit(0);
});

send({
  type: "ready",
  versions: {
    4: versionOf("socket.io-client"),
    3: versionOf("socket.io-client-v3"),
    2: versionOf("socket.io-client-v2"),
  },
});
