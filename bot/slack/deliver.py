"""Sending a Reply: as the HTTP ack body, with respond(), views.open or
chat.postMessage. Rendering is done by `bot.render`."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import schedule
from bot.render import render_message, render_text, render_view
from bot.replies import Modal, Post, Reply
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def message(reply: Reply) -> dict[str, Any]:
    payload = render_message(reply.template, reply.values)
    payload["response_type"] = "in_channel" if reply.in_channel else "ephemeral"
    return payload


def view(modal: Modal) -> dict[str, Any]:
    return render_view(f"views/{modal.kind}", modal.values)


def field_errors(reply: Reply) -> dict[str, str]:
    return {
        block: render_text("common/field_error", {"code": code, **params})[:150]
        for block, (code, params) in reply.field_errors.items()
    }


def open_modal(client: WebClient, trigger_id: str, modal: Modal) -> None:
    client.views_open(trigger_id=trigger_id, view=view(modal))


def send_posts(runtime: Runtime, client: WebClient, reply: Reply) -> None:
    """Post to other channels after the reply has gone, off the request path."""
    for post in reply.posts:
        runtime.after(lambda post=post: send_post(runtime, client, post))


def follow_up(runtime: Runtime, client: WebClient, reply: Reply, dm_to: str | None = None) -> None:
    """After a modal closed: its posts, and with `dm_to` the reply itself as a
    DM, since a closed modal has nowhere else to show what was stored."""
    if reply.error or reply.field_errors:
        return
    if dm_to and reply.template:
        runtime.after(lambda: client.chat_postMessage(channel=dm_to, **message(reply)))
    send_posts(runtime, client, reply)


class SendError(RuntimeError):
    """Slack refused a message; the text is Slack's error code."""


def post_message(runtime: Runtime, client: WebClient, post: Post) -> str:
    """chat.postMessage (a user id as channel is a DM); runs `on_sent`.
    Raises SendError with Slack's reason, so a caller can record or report it."""
    try:
        response = client.chat_postMessage(channel=post.channel, **render_message(post.template, post.values))
    except SlackApiError as e:
        raise SendError(e.response.get("error") or "slack_error") from None
    if post.on_sent:
        runtime.in_session(post.on_sent, response["channel"], response["ts"])
    return response["ts"]


def send_post(runtime: Runtime, client: WebClient, post: Post) -> None:
    """A reply's follow-up post, sent once through the delivery table when it
    has a key. On refusal, tell the person who acted."""
    if post.delivery:
        error = schedule.send_once(runtime.engine, post.delivery, post, scheduler_sender(runtime, client),
                                   runtime.clock())
    else:
        try:
            post_message(runtime, client, post)
            error = None
        except SendError as e:
            error = str(e)
    if error and error != "taken":
        log.warning("post to %s failed: %s", post.channel, error)
        if post.tell_on_failure:
            reason = error.split(": ", 1)[-1]  # "SendError: not_in_channel" -> Slack's code
            notice = render_message("common/post_failed", {"channel": post.channel, "error": reason, **post.values})
            client.chat_postMessage(channel=post.tell_on_failure, **notice)


def scheduler_sender(runtime: Runtime, client: WebClient):
    """`send(post) -> bool` for `bot.schedule.tick`; a refusal raises, so the
    delivery row records the reason and a later tick retries."""

    def send(post: Post) -> bool:
        post_message(runtime, client, post)
        return True

    return send


def update_message(client: WebClient, channel: str, ts: str, post: Post) -> None:
    try:
        client.chat_update(channel=channel, ts=ts, **render_message(post.template, post.values))
    except SlackApiError as e:
        log.warning("update of %s/%s failed: %s", channel, ts, e.response.get("error"))
