"""HTTP front: `POST /slack/events` to Bolt, `GET /healthz` for probes,
`GET /calendar/<token>.ics` for a member's meeting calendar."""

from __future__ import annotations

import json

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.council import ical
from bot.runtime import Runtime
from bot.store.db import is_reachable, session_scope


def make_wsgi(app: App, runtime: Runtime):
    slack = SlackRequestHandler(app, path="/slack/events")

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            ok = is_reachable(runtime.engine)
            body = json.dumps({"ok": ok, "database": "reachable" if ok else "unreachable"}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        path = environ.get("PATH_INFO") or ""
        if path.startswith("/calendar/") and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return calendar(environ, start_response, path[len("/calendar/"):])
        return slack(environ, start_response)

    def calendar(environ, start_response, name: str):
        """The feed behind a secret token; anything else is a bare 404 that
        says nothing about who or what exists."""
        body = None
        if name.endswith(".ics"):
            with session_scope(runtime.engine) as session:
                member_id = ical.member_for_token(session, name[:-len(".ics")])
                if member_id is not None:
                    now = runtime.clock()
                    body = ical.member_feed(session, member_id, now, runtime.settings.timezone)
        if body is None:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        start_response("200 OK", [("Content-Type", "text/calendar; charset=utf-8"),
                                  ("Content-Disposition", "inline; filename=renkei.ics"),
                                  ("Cache-Control", "private, max-age=300"), ("Content-Length", str(len(body)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return application
