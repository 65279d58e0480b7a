"""The webhook backend of examples/backend/Caddyfile, in Python with Flask.

    WEBHOOK_SECRET=... python3 examples/backend/python/app.py

Flask from Debian (apt-get install python3-flask) or from pip. BACKEND
(default 127.0.0.1:9000) is the address to listen on, as the Caddyfile
reads it. Every call is verified (signature, timestamp, hook) before it is
read. The development server is for trying it; run the app under a WSGI
server (gunicorn, uwsgi) for anything else.
"""

import hashlib
import hmac
import json
import logging
import os
import time

from flask import Flask, Response, jsonify, request

MAX_SKEW = 300  # seconds a call's timestamp may be away from our clock

SECRET = os.environ.get("WEBHOOK_SECRET", "").encode()
if not SECRET:
    raise SystemExit("backend: WEBHOOK_SECRET is not set")

app = Flask(__name__)
log = logging.getLogger("backend")


def raw_path():
    """The path as Caddy sent it: escaped, without the query."""
    uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    return uri.split("?", 1)[0]


def verified():
    """Return the decoded call, or a refusal Response."""
    body = request.get_data()
    ts = request.headers.get("X-SocketIO-Timestamp", "")
    hook = request.headers.get("X-SocketIO-Hook", "")
    sig = request.headers.get("X-SocketIO-Signature", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > MAX_SKEW:
        log.warning("refused: timestamp %r missing or more than %ds away", ts, MAX_SKEW)
        return Response(status=401)
    signed = b".".join([ts.encode(), hook.encode(), raw_path().encode(), body])
    want = "sha256=" + hmac.new(SECRET, signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        log.warning("refused: bad signature on %s", raw_path())
        return Response(status=401)
    try:
        call = json.loads(body)
    except ValueError:
        call = None
    if not isinstance(call, dict) or call.get("type") != hook:
        log.warning("refused: hook header %r does not match the body", hook)
        return Response(status=400)
    return call


def user_of(call):
    return (call.get("data") or {}).get("user", "someone")


def on_connect(call):
    user = (call.get("claims") or {}).get("sub")
    if not isinstance(user, str) or not user:
        return jsonify(error={"message": "please log in", "data": {"login": "/login"}})
    log.info("connect %s (%s)", user, call.get("socket"))
    return jsonify(rooms=[f"user-{user}", "lobby"], data={"user": user})


def on_event(call):
    user, event, args = user_of(call), call.get("event", ""), call.get("args") or []
    if event != "chat":
        return jsonify(error=f"unknown event {event}")
    text = args[0] if args and isinstance(args[0], str) else ""
    log.info("event chat from %s: %s", user, text)
    emit = {"rooms": ["lobby"], "except": [call.get("socket", "")], "event": "chat",
            "args": [{"from": user, "text": text}]}
    return jsonify(ack=["delivered"], actions=[{"emit": emit}])


def on_disconnect(call):
    log.info("disconnect %s (%s): %s", user_of(call), call.get("socket"), call.get("reason", ""))
    return Response(status=204)


HOOKS = {"connect": on_connect, "event": on_event, "disconnect": on_disconnect}


@app.post("/socket/<hook>")
def socket_hook(hook):
    call = verified()
    if isinstance(call, Response):
        return call
    handle = HOOKS.get(call["type"])
    if handle is None:
        return jsonify(error="unknown hook"), 400
    return handle(call)


@app.get("/")
def index():
    return Response("backend is up\n", mimetype="text/plain")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="backend: %(message)s")
    host, _, port = os.environ.get("BACKEND", "127.0.0.1:9000").rpartition(":")
    app.run(host=host, port=int(port))
