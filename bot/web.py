"""HTTP front: `POST /slack/events` to Bolt, `GET /healthz` for probes,
`GET /calendar/<token>.ics` for a member's meeting calendar.

Before Bolt sees a request, the body is read here with a bound: over
`MAX_BODY` it is refused with 413 unread (a body of unknown length is read
to one byte past the bound, never whole). A body that is not UTF-8 or not
a Slack payload gets 400 and one warning line. Bolt then checks the
signature and its age (401) before any listener runs."""

from __future__ import annotations

import json
import logging

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse

from bot.council import ical
from bot.runtime import Runtime
from bot.store.db import is_reachable, session_scope

log = logging.getLogger(__name__)

EVENTS = "/slack/events"
# A view submission carries the whole modal: every block as drawn (labels,
# initial values) and its state (what was typed), so a form filled to its
# limits arrives twice over, Japanese at 9 bytes a character once
# form-encoded. Correcting a 退院時連携 note filled to its limits is about
# 113 KB; 512 KB leaves room for the longer forms a team may configure
# (Slack allows up to 100 blocks) and still bounds what one request may
# hold in memory. bot/serve.py gives waitress the same bound.
MAX_BODY = 512 * 1024


def read_body(environ, limit: int = MAX_BODY) -> bytes | None:
    """The request body, or None if it is longer than `limit`. A declared
    Content-Length over the limit is refused without reading; a missing or
    invalid one, or a chunked body, is read to at most limit + 1 bytes."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        length = -1
    if length >= 0 and not chunked:
        return None if length > limit else _read(stream, length)
    data = _read(stream, limit + 1)
    return None if len(data) > limit else data


def _read(stream, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _refuse(environ, start_response, status: str, reason: str):
    """A bare refusal and one line in the log (no traceback: nothing failed)."""
    log.warning("%s to %s %s from %s: %s", status, environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                environ.get("REMOTE_ADDR") or "?", reason)
    body = status.split(" ", 1)[1].encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def make_wsgi(app: App, runtime: Runtime, max_body: int = MAX_BODY):
    slack = SlackRequestHandler(app, path=EVENTS)

    def events(environ, start_response):
        raw = read_body(environ, max_body)
        if raw is None:
            return _refuse(environ, start_response, "413 Request Entity Too Large",
                           f"body over {max_body} bytes (Content-Length {environ.get('CONTENT_LENGTH') or '?'})")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return _refuse(environ, start_response, "400 Bad Request", f"body is not UTF-8 (byte {e.start})")
        try:
            # Parses the form or JSON payload; the signature is checked by Bolt next.
            request = BoltRequest(body=text, query=environ.get("QUERY_STRING") or "",
                                  headers=WsgiHttpRequest(environ).get_headers())
        except Exception as e:  # noqa: BLE001 (a pure parse of at most max_body bytes)
            return _refuse(environ, start_response, "400 Bad Request",
                           f"not a Slack payload ({e.__class__.__name__})")
        answer = app.dispatch(request)
        response = WsgiHttpResponse(status=answer.status, headers=answer.headers, body=answer.body)
        start_response(response.status, response.get_headers())
        return response.get_body()

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
        if path == EVENTS and environ.get("REQUEST_METHOD") == "POST":
            return events(environ, start_response)
        return slack(environ, start_response)  # Bolt's answer to anything else: 404, unread

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
