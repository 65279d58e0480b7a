// node-server.cjs is the Node reference for the side-by-side benchmarks: a
// socket.io 4.8 server that implements the bench contract of README.md, so
// cmd/sioload can drive it exactly like cmd/siobench-server.
//
// Usage: node testdata/bench/node-server.cjs [port]   (or PORT=...; default 3000)
// Prints "listening <port>" once ready and nothing per message.
'use strict';

const http = require('node:http');
const path = require('node:path');
// Resolve socket.io from testdata/node_modules whatever the working directory.
const { Server } = require(require.resolve('socket.io', { paths: [path.join(__dirname, '..')] }));

const port = Number(process.argv[2] || process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';

const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: '/socket.io/',
  pingInterval: 25000,
  pingTimeout: 20000,
  serveClient: false,
});

// REDIS_URL set: a node of a cluster (@socket.io/redis-adapter, classic),
// for the cross-node fan-out bench (cluster.sh).
let redisClients = [];
if (process.env.REDIS_URL) {
  const from = { paths: [path.join(__dirname, '..')] };
  const { createClient } = require(require.resolve('redis', from));
  const { createAdapter } = require(require.resolve('@socket.io/redis-adapter', from));
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  redisClients = [pub, sub];
  for (const c of redisClients) c.on('error', () => {});
  io.adapter(createAdapter(pub, sub));
  Promise.all(redisClients.map((c) => c.connect())).catch((e) => {
    console.error('connecting to redis:', e);
    process.exit(1);
  });
}

io.on('connection', (socket) => {
  const room = socket.handshake.query.room;
  if (typeof room === 'string' && room !== '') {
    socket.join(room);
  }
  socket.on('publish', (room, ...rest) => {
    io.to(String(room)).emit('msg', ...rest);
  });
  socket.on('echo', (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    if (ack) ack(...args);
  });
});

Promise.all(redisClients.map((c) => (c.isReady ? null : new Promise((ok) => c.once('ready', ok))))).then(() => {
  httpServer.listen(port, host, () => {
    console.log(`listening ${httpServer.address().port}`);
  });
});

function shutdown() {
  io.close();
  httpServer.close();
  // Connections still open after a second are not worth waiting for.
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
