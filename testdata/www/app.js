// The tutorial's client: connect with a token and a room number on Join,
// log what the server sends, and send message_from_client events.
// The Socket.IO client bundle is served by Caddy from /vendor (no CDN).
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

  // show appends one line per event, as "event: text".
  function show(event, args) {
    const text = args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
    const li = document.createElement("li");
    li.textContent = text === "" ? event : event + ": " + text;
    events.appendChild(li);
  }

  function setStatus(text) {
    status.textContent = text;
  }

  byId("join").addEventListener("click", () => {
    if (socket) socket.disconnect();
    const roomNumber = roomInput.value.trim();
    socket = io({ auth: { token: tokenInput.value.trim() }, query: { roomNumber } });

    socket.on("connect", () => {
      console.log("connected", socket.id);
      setStatus("connected as " + socket.id);
      sendButton.disabled = false;
    });
    socket.on("connect_error", (err) => {
      console.log("connect_error", err.message);
      setStatus("refused: " + err.message);
      show("connect_error", [err.message]);
    });
    socket.on("disconnect", (reason) => {
      console.log("disconnect", reason);
      setStatus("disconnected: " + reason);
      sendButton.disabled = true;
    });
    socket.onAny((event, ...args) => {
      console.log(event, ...args);
      show(event, args);
    });
  });

  function send() {
    const text = messageInput.value;
    if (!socket || !socket.connected || text === "") return;
    socket.emit("message_from_client", text);
    show("sent", [text]);
    messageInput.value = "";
  }
  sendButton.addEventListener("click", send);
  messageInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") send();
  });
})();
