"""From Slack's payloads to the core's neutral request: who acts, where,
the request key that makes a retry harmless, and the typed text with
Slack's markup turned into mention and channel tokens."""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import Any

from bot.people import Handle, Place, channel_token, mention_token, untokened
from bot.requests import Who
from bot.slack.mrkdwn import PLATFORM

_MARKUP = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")
_SLACK_ID = re.compile(r"[A-Z0-9]+").fullmatch  # a user or channel id; anything else stays literal text
# C0 controls but tab and newline (carriage returns become newlines), DEL,
# and lone surrogates (a `\ud800` escape in JSON): PostgreSQL refuses NUL in
# text and surrogates in UTF-8, SQLite would keep them; neither ever shows.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_DIRTY = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]").search  # the same, or a carriage return


def clean(text: str) -> str:
    if not _DIRTY(text):
        return text
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def scrub(body: Any) -> Any:
    """Every string of a payload cleaned, in place (the listeners' `command`,
    `action` and `view` are parts of it): command text, form values, button
    values, ids. The one place where what people type enters the core."""
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(isinstance(k, str) and _DIRTY(k) for k in node):
                items = [(clean(k) if isinstance(k, str) else k, v) for k, v in node.items()]
                node.clear()
                node.update(items)
            for k, v in node.items():
                if isinstance(v, str):
                    if _DIRTY(v):
                        node[k] = clean(v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, str):
                    if _DIRTY(v):
                        node[i] = clean(v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
    return clean(body) if isinstance(body, str) else body


MAX_MENTIONS = 50  # each is a member looked up (or made) in the request


def typed(text: str) -> tuple[str, list[Handle]]:
    """(what the person typed, with tokens for mentions and channels; the
    people mentioned, in order). Slack escapes `& < >` in typed text; they
    are decoded. Other markup (links, `<!channel>`) stays as literal
    characters: rendering escapes it, so it displays and pings nobody.
    Past `MAX_MENTIONS`, a mention stays literal text too, and so does one
    whose id is not a Slack id. The characters the core's tokens are made
    of are removed first (`people.untokened`): none typed can forge one."""
    mentions: list[Handle] = []

    def swap(m: re.Match) -> str:
        sigil, ident, label = m[1], m[2], m[3] or ""
        if sigil in ("@", "#") and not _SLACK_ID(ident):
            return m[0]
        if sigil == "@" and ident[:1] in ("U", "W") and len(mentions) < MAX_MENTIONS:
            mentions.append(Handle(PLATFORM, ident, label))
            # What the person saw as they typed: `@佐藤` (the markup if Slack gave no name).
            return mention_token(len(mentions) - 1, '@' + label if label else m[0])
        if sigil == "#" and ident[:1] in ("C", "G", "D"):
            return channel_token(Place(PLATFORM, ident), m[0])
        return m[0]

    return clean(html.unescape(_MARKUP.sub(swap, untokened(text or "")))), mentions


def typed_values(values: dict[str, Any]) -> dict[str, Any]:
    """A form's values as typed, without token characters (see `typed`)."""

    def one(value: Any) -> Any:
        if isinstance(value, list):
            return [one(v) for v in value]
        return untokened(value) if isinstance(value, str) else value

    return {k: one(v) for k, v in values.items()}


def malformed(body: Any) -> str | None:
    """Why a signed payload cannot be a request from a person (None if it
    can): the core needs to know who acts, and on what."""
    if not isinstance(body, dict):
        return "payload is not an object"
    if "command" in body:  # a slash command (form fields, all strings)
        if not isinstance(body.get("command"), str) or not body["command"]:
            return "slash command without command"
        if not isinstance(body.get("user_id"), str) or not body["user_id"]:
            return "slash command without user_id"
        if not isinstance(body.get("text", ""), str):
            return "slash command text is not a string"
        return None
    kind = body.get("type")
    if kind in ("block_actions", "view_submission", "view_closed", "block_suggestion"):
        user = body.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"]:
            return f"{kind} without user.id"
        if kind == "block_actions" and (not isinstance(body.get("actions"), list) or not body["actions"]
                                        or not all(isinstance(a, dict) for a in body["actions"])):
            return "block_actions without actions"
        if kind.startswith("view") and not isinstance(body.get("view"), dict):
            return f"{kind} without view"
        for name in ("view", "container", "channel", "message"):
            if body.get(name) is not None and not isinstance(body[name], dict):
                return f"{kind} with {name} that is not an object"
    return None


def place(channel_id: str | None) -> Place | None:
    return Place(PLATFORM, channel_id) if channel_id else None


def person(user: dict[str, Any]) -> Handle:
    return Handle(PLATFORM, user.get("id", ""), user.get("username") or user.get("name", ""))


KEY_ROOM = 100  # request keys are stored in 128 characters


def request_key(kind: str, ident: Any, body: dict[str, Any]) -> str:
    """The key that makes a retry harmless and keeps two requests apart.
    Slack's own id (trigger_id, view id) when there is one; without it, a
    hash of the whole payload, which a retry resends unchanged and which
    two different requests never share (text, response_url, action_ts)."""
    if isinstance(ident, str) and ident:
        return f"{kind}:{ident}" if len(ident) <= KEY_ROOM else f"{kind}:#{_digest(ident)}"
    return f"{kind}:#{_digest(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str))}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:40]


def who_of_command(command: dict[str, Any], mentions: list[Handle]) -> Who:
    return Who(handle=Handle(PLATFORM, command.get("user_id", ""), command.get("user_name", "")),
               place=place(command.get("channel_id")),
               request_key=request_key("cmd", command.get("trigger_id"), command), mentions=mentions)


def who_of_action(body: dict[str, Any], channel_id: str | None = None) -> Who:
    return Who(handle=person(body.get("user", {})),
               place=place(channel_id or (body.get("channel") or {}).get("id")),
               request_key=request_key("act", body.get("trigger_id"), body))


def who_of_view(body: dict[str, Any], view: dict[str, Any], channel: str | None) -> Who:
    return Who(handle=person(body.get("user", {})), place=Place.parse(channel),
               request_key=request_key("view", view.get("id"), body))


def press_key(body: dict[str, Any], action_id: str, value: str) -> str | None:
    """A double tap on the same button of the same message is one action:
    the key names the person, the message and the button, not the tap."""
    message_ts = (body.get("container") or {}).get("message_ts")
    if not message_ts:
        return None
    digest = hashlib.sha1(f"{action_id}\n{value}".encode("utf-8", "replace")).hexdigest()[:16]
    key = f"press:{(body.get('user') or {}).get('id', '')}:{message_ts}:{digest}"
    return key if len(key) <= KEY_ROOM else f"press:#{_digest(key)}"
