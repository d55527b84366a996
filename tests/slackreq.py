"""Signed requests, built as Slack builds them, sent through the real WSGI
front (`bot.web`), so signature checks, Bolt routing and our listeners all
run exactly as in production."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from dataclasses import dataclass
from itertools import count
from typing import Any
from urllib.parse import urlencode

_ids = count(1)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        """What the user sees in an ack-body reply (all text fields joined)."""
        data = self.json() or {}
        return json.dumps(data, ensure_ascii=False)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackClientSim:
    """Plays Slack's side: sends signed slash commands, button clicks and
    modal submissions to the bot's WSGI app."""

    def __init__(self, wsgi, secret: str, fake, settle=None):
        self.wsgi = wsgi
        self.secret = secret
        self.fake = fake
        # Called after each request, as a person looks at the screen once
        # the press has been answered: the bot answers button presses
        # after the acknowledgement (Runtime.wait_lanes).
        self.settle = settle

    def post(self, body: bytes, *, content_type="application/x-www-form-urlencoded", timestamp=None,
             signature=None, headers=None, path="/slack/events", settle=True) -> Response:
        timestamp = int(time.time()) if timestamp is None else timestamp
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "test",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type,
            "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(timestamp),
            "HTTP_X_SLACK_SIGNATURE": signature or sign(self.secret, body, timestamp),
        }
        for k, v in (headers or {}).items():
            environ["HTTP_" + k.upper().replace("-", "_")] = v
        response = self._call(environ)
        if settle and self.settle is not None:
            self.settle()
        return response

    def get(self, path: str) -> Response:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "test",
                   "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                   "wsgi.input": io.BytesIO(b"")}
        return self._call(environ)

    def _call(self, environ) -> Response:
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            captured["headers"] = dict(headers)

        body = b"".join(self.wsgi(environ, start_response))
        return Response(captured["status"], captured["headers"], body)

    def command(self, command: str, text: str = "", *, user: str = "U0DEMOCM1", channel: str = "C0TEAM",
                trigger_id: str | None = None, **kw) -> Response:
        form = {
            "token": "legacy", "team_id": "T1", "team_domain": "demo", "channel_id": channel,
            "channel_name": "team", "user_id": user, "user_name": user.lower(), "command": command,
            "text": text, "api_app_id": "A1", "response_url": self.fake.response_url(),
            "trigger_id": trigger_id or f"trig.{next(_ids)}",
        }
        return self.post(urlencode(form).encode(), **kw)

    def interact(self, payload: dict, **kw) -> Response:
        return self.post(urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode(), **kw)

    def click(self, action_id: str, value: str, *, user: str = "U0DEMOCM1", channel: str = "C0TEAM",
              message_ts: str = "1800000000.000001", view: dict | None = None, selected: str | None = None,
              **kw) -> Response:
        action = {"action_id": action_id, "block_id": "b", "type": "button", "value": value,
                  "action_ts": str(time.time())}
        if selected is not None:
            action = {"action_id": action_id, "block_id": "form_type", "type": "static_select",
                      "selected_option": {"value": selected, "text": {"type": "plain_text", "text": selected}}}
        payload = {
            "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T1"},
            "api_app_id": "A1", "team": {"id": "T1"}, "trigger_id": f"trig.{next(_ids)}",
            "response_url": self.fake.response_url(), "actions": [action],
        }
        if view is not None:
            payload["view"] = view
            payload["container"] = {"type": "view", "view_id": view["id"]}
        else:
            payload["channel"] = {"id": channel, "name": "team"}
            payload["container"] = {"type": "message", "channel_id": channel, "message_ts": message_ts}
            payload["message"] = {"ts": message_ts, "text": ""}
        return self.interact(payload, **kw)

    def submit(self, view: dict, values: dict[str, Any], *, user: str = "U0DEMOCM1", view_id: str | None = None,
               **kw) -> Response:
        """Submit a modal the bot opened, with values typed per block id."""
        state: dict[str, dict] = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            element = block["element"]
            block_id, action_id, kind = block["block_id"], element["action_id"], element["type"]
            value = values.get(block_id)
            if kind in ("static_select", "radio_buttons"):
                if block_id == "form_type" and value is None:
                    value = element["initial_option"]["value"]
                entry = {"type": kind, "selected_option": {"value": value} if value is not None else None}
            elif kind in ("multi_static_select", "checkboxes"):
                entry = {"type": kind, "selected_options": [{"value": v} for v in value or []]}
            elif kind == "datepicker":
                entry = {"type": kind, "selected_date": value}
            else:
                entry = {"type": kind, "value": value}
            state[block_id] = {action_id: entry}
        payload = {
            "type": "view_submission", "user": {"id": user, "username": user.lower(), "team_id": "T1"},
            "api_app_id": "A1", "team": {"id": "T1"}, "trigger_id": f"trig.{next(_ids)}",
            "view": {**view, "id": view_id or view.get("id", "V1"), "hash": "h1", "state": {"values": state}},
        }
        return self.interact(payload, **kw)
