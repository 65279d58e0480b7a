"use strict";
// conformance-ws.cjs is preloaded into the protocol suites' mocha by
// scripts/conformance.sh (mocha --require). It changes no test; it changes
// when the suites' WebSocket client dispatches a message.
//
// The suites read WebSocket messages one at a time:
//     socket.addEventListener("message", resolve, { once: true }); await ...
// In a browser, each message event is its own task: the test has added its
// next listener before the next message is dispatched, and a message that
// comes while the test listens for nothing is dropped (some tests count on
// that). The Node `ws` client the suites use dispatches all the messages of
// one TCP read in one go, so when a server's frames arrive together (a
// CONNECT answer and the event after it), the second one finds no listener
// and is lost, and the test times out at random, against any server.
//
// Here every message (and a close or error behind queued messages) is
// dispatched in a task of its own, in order, as a browser does.

let path;
try {
  path = require.resolve("ws", { paths: [process.cwd()] });
} catch (e) {
  return; // no ws next to the suite: nothing to do
}
const ws = require(path);
const proto = (ws.WebSocket || ws).prototype;
const queued = Symbol("queued events");
const emit = proto.emit;

// dispatchOne emits the oldest queued event, to whoever listens now, and
// leaves the next one for the next task.
function dispatchOne(socket) {
  const queue = socket[queued];
  const [type, args] = queue.shift();
  try {
    emit.call(socket, type, ...args);
  } finally {
    if (queue.length > 0) setImmediate(dispatchOne, socket);
  }
}

proto.emit = function (type, ...args) {
  const queue = this[queued] || (this[queued] = []);
  const ordered = type === "message" || ((type === "close" || type === "error") && queue.length > 0);
  if (!ordered) return emit.call(this, type, ...args);
  queue.push([type, args]);
  if (queue.length === 1) setImmediate(dispatchOne, this);
  return true;
};
