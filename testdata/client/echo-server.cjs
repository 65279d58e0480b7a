#!/usr/bin/env node
// echo-server.cjs is a Node socket.io 4.8 server that the nodeclient tests
// use as a known-good peer, so the driver can be tested before our Go server
// exists. It listens on 127.0.0.1 (port from argv[2], default 0 = random) and
// prints {"type":"listening","port":N} on stdout. It exits when stdin closes.
//
// Namespaces "/" and "/admin" behave the same:
//   - middleware refuses auth.token === "bad" with err.data = {reason:"bad token"};
//   - on connection it emits "auth" with the handshake auth payload;
//   - "echo" (...args[, ack]): emits "echo" with the same args, and acks them;
//   - "add" (a, b, ack): acks a + b;
//   - "whoami" (ack): acks {nsp, id};
//   - "ask" ({event, args, timeout}): emits event to the client with an ack
//     and reports the outcome as "answer" {reply} or {error};
//   - "join"/"leave" (room[, ack]) and "to-room" ({room, event, args}) for rooms;
//   - "kick" (mode): "transport" closes the Engine.IO connection (the client
//     reconnects on its own), anything else is a namespace disconnect;
//   - "no-ack" (...args, ack): never acks (for client-side ack timeouts).
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const httpServer = http.createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });

function lastFn(args) {
  return args.length > 0 && typeof args[args.length - 1] === "function" ? args.pop() : null;
}

function setup(nsp) {
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth || {};
    if (auth.token === "bad") {
      const err = new Error("unauthorized");
      err.data = { reason: "bad token" };
      return next(err);
    }
    next();
  });

  nsp.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth || {});

    socket.on("echo", (...args) => {
      const ack = lastFn(args);
      socket.emit("echo", ...args);
      if (ack) ack(...args);
    });
    socket.on("add", (a, b, ack) => {
      if (typeof ack === "function") ack(a + b);
    });
    socket.on("whoami", (ack) => {
      if (typeof ack === "function") ack({ nsp: socket.nsp.name, id: socket.id });
    });
    socket.on("ask", (spec) => {
      spec = spec || {};
      const args = Array.isArray(spec.args) ? spec.args : [];
      socket.timeout(spec.timeout || 2000).emit(spec.event, ...args, (err, ...reply) => {
        if (err) socket.emit("answer", { error: err.message });
        else socket.emit("answer", { reply });
      });
    });
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack([...socket.rooms]);
    });
    socket.on("leave", (room, ack) => {
      socket.leave(room);
      if (typeof ack === "function") ack([...socket.rooms]);
    });
    socket.on("to-room", (spec) => {
      nsp.to(spec.room).emit(spec.event, ...(spec.args || []));
    });
    socket.on("kick", (mode) => {
      if (mode === "transport") socket.conn.close();
      else socket.disconnect();
    });
    socket.on("no-ack", () => {});
  });
}

setup(io.of("/"));
setup(io.of("/admin"));

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ type: "listening", port: httpServer.address().port }) + "\n");
});

function stop() {
  io.close();
  httpServer.close();
  setTimeout(() => process.exit(0), 200).unref();
}
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
