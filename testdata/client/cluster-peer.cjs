#!/usr/bin/env node
// cluster-peer.cjs is a Node socket.io 4.8 server in a Redis cluster
// (@socket.io/redis-adapter 8.3, classic createAdapter) that the cluster
// tests drive as a peer of Caddy nodes, plus a @socket.io/redis-emitter
// 5.1. argv: <redis url> [<key>]. It listens on 127.0.0.1 (random port)
// and prints {"type":"listening","port":N}. Then it reads one JSON command
// per stdin line, {seq, cmd, ...}, and answers {seq, ok, result} or
// {seq, ok:false, error}. Values {"$bin": base64} are Buffers both ways;
// {"$date": iso} is a Date. It exits when stdin closes.
//
// Sockets join the rooms listed in auth.rooms; a client event "relay"
// (...args) is sent to the sender's other rooms (as a Caddy relay rule);
// "ask" events from the server are answered by the clients' own handlers.
// Server-side events "sse" are recorded (cmd "sse_log"); with auth-free
// handler "sse-ack" the callback answers "pong-from-node".
"use strict";

const http = require("http");
const readline = require("readline");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");

const url = process.argv[2];
const key = process.argv[3] || "socket.io";

function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string" && Object.keys(v).length === 1) return Buffer.from(v.$bin, "base64");
    if (typeof v.$date === "string" && Object.keys(v).length === 1) return new Date(v.$date);
    const out = {};
    for (const [k, e] of Object.entries(v)) out[k] = fromWire(e);
    return out;
  }
  return v;
}

function toWire(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v.buffer ? v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) : v).toString("base64") };
  }
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") {
    const out = {};
    for (const [k, e] of Object.entries(v)) out[k] = toWire(e);
    return out;
  }
  return v;
}

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const sseLog = [];

async function main() {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  const epub = pub.duplicate();
  for (const c of [pub, sub, epub]) c.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect(), epub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub, { key, requestsTimeout: 3000 }) });
  const emitter = new Emitter(epub, { key });

  io.on("connection", (socket) => {
    const rooms = (socket.handshake.auth && socket.handshake.auth.rooms) || [];
    socket.join(rooms);
    socket.on("relay", (...args) => {
      const others = [...socket.rooms].filter((r) => r !== socket.id);
      if (others.length) socket.to(others).emit("relay", ...args);
    });
  });
  io.on("sse", (...args) => sseLog.push(toWire(args)));
  io.on("sse-ack", (...args) => {
    const cb = args.pop();
    sseLog.push(toWire(args));
    cb("pong-from-node");
  });

  const target = (c) => {
    let op = io;
    if (c.to) op = op.to(c.to);
    if (c.except) op = op.except(c.except);
    return op;
  };
  const etarget = (c) => {
    let op = emitter;
    if (c.to) op = op.to(c.to);
    if (c.except) op = op.except(c.except);
    return op;
  };

  const commands = {
    async fetch_sockets(c) {
      const sockets = await target(c).fetchSockets();
      return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], handshake: s.handshake, data: s.data }));
    },
    async all_rooms() {
      return [...(await io.of("/").adapter.allRooms())];
    },
    async emit(c) {
      target(c).emit(c.event, ...fromWire(c.args || []));
      return true;
    },
    async emit_with_ack(c) {
      return toWire(await target(c).timeout(c.timeout || 2000).emitWithAck(c.event, ...fromWire(c.args || [])));
    },
    async sockets_join(c) {
      target(c).socketsJoin(c.rooms);
      return true;
    },
    async sockets_leave(c) {
      target(c).socketsLeave(c.rooms);
      return true;
    },
    async disconnect_sockets(c) {
      target(c).disconnectSockets(!!c.close);
      return true;
    },
    async server_side_emit(c) {
      io.serverSideEmit(...fromWire(c.args));
      return true;
    },
    async server_side_emit_with_ack(c) {
      return toWire(await io.serverSideEmitWithAck(...fromWire(c.args)));
    },
    async sse_log() {
      return sseLog;
    },
    async emitter_emit(c) {
      let op = etarget(c);
      if (c.volatile) op = op.volatile;
      op.emit(c.event, ...fromWire(c.args || []));
      return true;
    },
    async emitter_sockets_join(c) {
      etarget(c).socketsJoin(c.rooms);
      return true;
    },
    async emitter_disconnect_sockets(c) {
      etarget(c).disconnectSockets(!!c.close);
      return true;
    },
    async emitter_server_side_emit(c) {
      emitter.serverSideEmit(...fromWire(c.args));
      return true;
    },
    async numsub() {
      const res = await pub.sendCommand(["PUBSUB", "NUMSUB", `${key}-request#/#`]);
      return Number(res[1]);
    },
  };

  httpServer.listen(0, "127.0.0.1", () => send({ type: "listening", port: httpServer.address().port }));

  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    let c;
    try {
      c = JSON.parse(line);
    } catch (e) {
      return;
    }
    const fn = commands[c.cmd];
    if (!fn) return send({ seq: c.seq, ok: false, error: `unknown command ${c.cmd}` });
    try {
      send({ seq: c.seq, ok: true, result: await fn(c) });
    } catch (e) {
      send({ seq: c.seq, ok: false, error: String(e && e.message ? e.message : e) });
    }
  });
  rl.on("close", async () => {
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit(), epub.quit()]);
    process.exit(0);
  });
}

main().catch((e) => {
  process.stderr.write(`cluster-peer: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
