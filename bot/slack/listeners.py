"""The Bolt listeners: one for every slash command, one for every button,
one for every form submission. Each turns the payload into a neutral
request, hands it to `Runtime.handle` and sends the Reply where it says.
No business rule lives here; adding a button or a form touches nothing in
this package."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App, BoltResponse, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import commands
from bot.people import Place
from bot.render import render_text
from bot.replies import DM, REPLACE, Reply
from bot.requests import ACTION, COMMAND, SUBMIT, Request
from bot.runtime import Runtime
from bot.slack import blocks, deliver, inbound

ANY = re.compile(".*")
log = logging.getLogger(__name__)


def register(app: App, runtime: Runtime) -> None:
    app.use(_inbound)
    for name in commands.COMMANDS:
        app.command(name)(_on_command(runtime))
    app.action(ANY)(_on_action(runtime))
    app.view(ANY)(_on_submit(runtime))
    app.error(_on_error)


def _inbound(body: dict, next) -> BoltResponse | None:
    """Runs after Bolt checked the signature, before every listener: control
    characters leave the payload, and a payload that names no person (no
    user_id, no actions) is a 400 and one warning line, not a traceback."""
    inbound.scrub(body)
    problem = inbound.malformed(body)
    if problem:
        log.warning("400 Bad Request to a signed request: %s", problem)
        return BoltResponse(status=400, body="Bad Request")
    next()
    return None


def _on_error(error: Exception, body: dict) -> BoltResponse:
    """Whatever went wrong in the glue (a Slack error we did not foresee, a
    bug), the person gets words and Slack gets a 200, never an HTTP 500."""
    deliver.log.error("listener failed: %s: %s", error.__class__.__name__, error,
                      exc_info=not isinstance(error, SlackApiError))
    if (body or {}).get("command"):  # a slash command shows the ack body
        code = error.response.get("error") if isinstance(error, SlackApiError) else error.__class__.__name__
        # Plain text only: the Block Kit builders may be what failed.
        text = render_text("common/reply_failed", {"error": code})
        return BoltResponse(status=200, body=json.dumps({"response_type": "ephemeral", "text": text},
                                                        ensure_ascii=False),
                            headers={"content-type": "application/json;charset=utf-8"})
    return BoltResponse(status=200, body="")


def _on_command(runtime: Runtime):
    def on_command(ack: Ack, command: dict, client: WebClient) -> None:
        text, mentions = inbound.typed(command.get("text", ""))
        reply = runtime.handle(inbound.who_of_command(command, mentions),
                               Request(COMMAND, command["command"], text))
        if reply.form:
            failed = deliver.open_form(client, command.get("trigger_id"), reply)
            if failed or reply.template:  # a form can come with a word of why
                ack(**deliver.ephemeral(failed or reply))
            else:
                ack()
        else:
            # The reply travels in the HTTP response itself: no extra API call.
            ack(**deliver.ephemeral(reply))
        deliver.send_posts(runtime, client, reply)

    return on_command


def _meta(view: dict | None) -> dict[str, Any]:
    try:
        meta = json.loads((view or {}).get("private_metadata") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _on_action(runtime: Runtime):
    def on_action(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond) -> None:
        ack()
        action_id = blocks.registered_id(action.get("action_id", ""))
        value = action.get("value") or (action.get("selected_option") or {}).get("value") or ""
        view = body.get("view")
        meta = _meta(view) if view else {}
        who = inbound.who_of_action(body)
        if view:
            who.place = Place.parse(meta.get("place"))
        else:
            who.request_key = inbound.press_key(body, action_id, value) or who.request_key
        typed = inbound.typed_values(blocks.submitted_values(view)) if view else {}  # what the open form holds now
        reply = runtime.handle(who, Request(ACTION, action_id, value, values=typed, meta=meta))
        if view or reply.form:
            deliver.send_posts(runtime, client, reply)
            _answer_press(client, body, respond, reply)  # a form's trigger_id expires within 3 s: now
            return
        pressed = _pressed_message(body) if reply.update else None
        # The posts first: a redraw of the channel's announcement is queued before the
        # pressed message's, so neither can be drawn before both are queued (they share a draw).
        deliver.send_posts(runtime, client, reply, drawn_already=pressed)
        _answer_press_after(runtime, body, respond, reply, client, pressed)

    return on_action


def _answer_press(client: WebClient, body: dict, respond: Respond, reply: Reply) -> None:
    view = body.get("view")
    if view:  # a field of an open form was changed (the liaison form type)
        try:
            if reply.form:
                client.views_update(view_id=view["id"], hash=view.get("hash"), view=blocks.view(reply.form))
            elif reply.template:  # e.g. the switch was refused: say why over the form
                client.views_push(trigger_id=body.get("trigger_id") or "", view=blocks.notice(reply))
        except SlackApiError as e:  # hash_conflict, expired trigger: say so over the form
            try:
                client.views_push(trigger_id=body.get("trigger_id") or "",
                                 view=blocks.notice(deliver.slack_failed(e, "views")))
            except SlackApiError as again:
                deliver.slack_failed(again, "views.push")
        return
    if reply.form:
        failed = deliver.open_form(client, body.get("trigger_id"), reply)
        if failed:
            respond(replace_original=False, **deliver.ephemeral(failed))
        elif reply.answer == REPLACE:
            respond(delete_original=True)


def _pressed_message(body: dict) -> tuple[str, str] | None:
    container = body.get("container", {})
    channel, ts = container.get("channel_id"), container.get("message_ts")
    return (channel, ts) if channel and ts else None


def _answer_press_after(runtime: Runtime, body: dict, respond: Respond, reply: Reply, client: WebClient,
                        pressed: tuple[str, str] | None) -> None:
    """A press on a message is stored by now; redrawing the `pressed`
    message and answering the presser are Slack round trips that need not
    hold the acknowledgement. Each goes in its lane: the message's redraws
    (only the latest one waiting is kept) and the presser's answers, in press order."""
    if reply.update and pressed:
        deliver.redraw_later(runtime, client, *pressed, reply.update)
    if reply.template:
        runtime.after(lambda: respond(replace_original=reply.answer == REPLACE and not reply.error,
                                      **deliver.ephemeral(reply)),
                      lane=("answers to", (body.get("user") or {}).get("id")))


def _on_submit(runtime: Runtime):
    def on_submit(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        meta = _meta(view)
        who = inbound.who_of_view(body, view, meta.get("place"))
        reply = runtime.handle(who, Request(SUBMIT, view.get("callback_id", ""),
                                            values=inbound.typed_values(blocks.submitted_values(view)), meta=meta))
        if reply.field_errors:
            # Errors go on their fields and the form stays open: nothing typed is lost.
            ack(response_action="errors", errors=deliver.field_errors(reply))
            return
        if reply.error:
            first = next((b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input"), "")
            ack(response_action="errors", errors={first: render_text(reply.template, reply.values)[:150]})
            return
        ack()
        if reply.answer == DM and reply.template:  # a closed form confirms by DM, after its posts
            deliver.confirm_after_posts(runtime, client, who.handle.external_id, reply)
        else:
            deliver.send_posts(runtime, client, reply)

    return on_submit
