// The tutorial's client: connect with a token and a room number, show what
// the server sends, and send message_from_client events.
// The Socket.IO client bundle is served by Caddy from /vendor (no CDN).
//
// Events of the tutorial (Caddyfile.example), shown with a readable label:
//   room-userId          "You are in room number: N", to the room on each join
//   message_from_server  the welcome, to the new socket
//   message_from_client  relayed to the others of the room: (text, {from})
//   user_joined          relayed to the others of the room: {name, room}
// The name is the token's `sub`, read by the page from its own token. The
// server relays what a page sends without vouching for it; an app that must
// trust names takes them from the verified claims on the server (see the
// webhooks in examples/backend/).
(function () {
  "use strict";

  const byId = (id) => document.getElementById(id);
  const tokenInput = byId("token");
  const roomInput = byId("roomId");
  const status = byId("status");
  const events = byId("events");
  const sendButton = byId("send");
  const messageInput = byId("message");

  // ?token=... (e.g. from `caddy socketio-token`) fills the token field.
  const params = new URLSearchParams(window.location.search);
  if (params.has("token")) tokenInput.value = params.get("token");
  if (params.has("roomNumber")) roomInput.value = params.get("roomNumber");

  let socket = null;
  let me = "";
  let room = "";

  // subjectOf reads the `sub` claim of a JWT without verifying it (the
  // server verifies the token; the page only wants the name to show).
  function subjectOf(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = decodeURIComponent(
        Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
      );
      const sub = JSON.parse(json).sub;
      return typeof sub === "string" && sub !== "" ? sub : "";
    } catch (e) {
      return "";
    }
  }

  function text(args) {
    return args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
  }

  // show appends one line: a label and a text; the event name is kept in
  // data-event (and as a tooltip) for whoever wants the raw protocol view.
  function show(event, label, body, cls) {
    const li = document.createElement("li");
    li.dataset.event = event;
    li.title = event;
    if (cls) li.className = cls;
    const l = document.createElement("span");
    l.className = "label";
    l.textContent = label;
    const t = document.createElement("span");
    t.className = "text";
    t.textContent = body;
    li.append(l, " ", t);
    events.appendChild(li);
  }

  function setStatus(s) {
    status.textContent = s;
  }

  function connectedStatus() {
    const transport = socket.io.engine ? socket.io.engine.transport.name : "?";
    setStatus(`connected as ${me || "(no name)"} · room ${room || "none"} · ${transport}`);
  }

  // The tutorial's events, in words.
  const handlers = {
    "room-userId": (args) => show("room-userId", "Room", text(args)),
    message_from_server: (args) => show("message_from_server", "Server", text(args)),
    message_from_client: (args) => {
      const from = args[1] && typeof args[1].from === "string" ? args[1].from : "someone";
      show("message_from_client", from + " says", text(args.slice(0, 1)));
    },
    user_joined: (args) => {
      const who = args[0] && typeof args[0].name === "string" ? args[0].name : "someone";
      const where = args[0] && args[0].room ? " room " + args[0].room : "";
      show("user_joined", who, `joined${where}`);
    },
  };

  function join() {
    if (socket) socket.disconnect();
    const token = tokenInput.value.trim();
    me = subjectOf(token);
    room = roomInput.value.trim();
    socket = io({ auth: { token }, query: { roomNumber: room } });

    socket.on("connect", () => {
      console.log("connected", socket.id);
      connectedStatus();
      socket.io.engine.once("upgrade", connectedStatus);
      sendButton.disabled = false;
      show("connect", "You", `joined${room ? " room " + room : ""} as ${me || "(no name)"}`, "mine");
      socket.emit("user_joined", { name: me || "someone", room });
      messageInput.focus();
    });
    socket.on("connect_error", (err) => {
      console.log("connect_error", err.message);
      setStatus("refused: " + err.message);
      show("connect_error", "Refused", err.message, "error");
    });
    socket.on("disconnect", (reason) => {
      console.log("disconnect", reason);
      setStatus("disconnected: " + reason);
      sendButton.disabled = true;
    });
    socket.onAny((event, ...args) => {
      console.log(event, ...args);
      (handlers[event] || ((a) => show(event, event, text(a))))(args);
    });
  }

  function send() {
    const t = messageInput.value;
    if (!socket || !socket.connected || t === "") return;
    socket.emit("message_from_client", t, { from: me || "someone" });
    show("message_from_client", "You say", t, "mine");
    messageInput.value = "";
  }

  // Enter in any field submits its form: join from the token or room field,
  // send from the message field.
  byId("connect").addEventListener("submit", (e) => {
    e.preventDefault();
    join();
  });
  byId("say").addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
})();
