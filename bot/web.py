"""HTTP front: `POST /slack/events` to Bolt, `GET /healthz` for probes."""

from __future__ import annotations

import json

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.runtime import Runtime
from bot.store.db import is_reachable


def make_wsgi(app: App, runtime: Runtime):
    slack = SlackRequestHandler(app, path="/slack/events")

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            ok = is_reachable(runtime.engine)
            body = json.dumps({"ok": ok, "database": "reachable" if ok else "unreachable"}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return slack(environ, start_response)

    return application
