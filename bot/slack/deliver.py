"""Sending what the core returned: Block Kit messages, modals, posts to
channels and DMs, and redraws of a pressed message. Posts go through the
delivery table when they carry a key, so each is sent once."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import delivery
from bot.people import Place
from bot.render import field_error
from bot.replies import Message, Post, Reply
from bot.runtime import Runtime
from bot.slack import blocks
from bot.slack.mrkdwn import PLATFORM
from bot.store.models import Member

log = logging.getLogger(__name__)


class SendError(RuntimeError):
    """Slack refused a message; `code` is Slack's error code."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def ephemeral(message: Message) -> dict[str, Any]:
    return {**blocks.message(message), "response_type": "ephemeral"}


def field_errors(reply: Reply) -> dict[str, str]:
    return {field_id: field_error(problem)[:150] for field_id, problem in reply.field_errors.items()}


def slack_user(runtime: Runtime, member_id: int) -> str:
    """A member's Slack user id, for a DM (a user id as channel is a DM)."""
    found: list[str | None] = []
    runtime.in_session(lambda session: found.append(
        (session.get(Member, member_id) or Member()).handle(PLATFORM) if member_id else None))
    if not found[0]:
        raise SendError("no_slack_identity")
    return found[0]


def channel_of(runtime: Runtime, post: Post) -> str:
    if post.dm_to is not None:
        return slack_user(runtime, post.dm_to)
    if post.place is None or post.place.platform != PLATFORM:
        raise SendError("not_a_slack_channel")
    return post.place.id


def post_message(runtime: Runtime, client: WebClient, post: Post) -> str:
    """chat.postMessage; runs `on_sent`. Raises SendError with Slack's reason."""
    if post.attachment:
        return _upload(runtime, client, post)
    try:
        response = client.chat_postMessage(channel=channel_of(runtime, post), **blocks.message(post))
    except SlackApiError as e:
        raise SendError(e.response.get("error") or "slack_error") from None
    if post.on_sent:
        runtime.in_session(post.on_sent, Place(PLATFORM, response["channel"]), response["ts"])
    for reply in post.replies:  # the thread is a courtesy: the post itself has gone out
        try:
            client.chat_postMessage(channel=response["channel"], thread_ts=response["ts"], **blocks.message(reply))
        except SlackApiError as e:
            log.warning("thread reply failed: %s", e.response.get("error"))
    return response["ts"]


def _upload(runtime: Runtime, client: WebClient, post: Post) -> str:
    """A file with the message as its comment (Slack's external upload). A
    DM needs the conversation's id, not the user's."""
    name, content = post.attachment
    try:
        channel = channel_of(runtime, post)
        if post.dm_to is not None:
            channel = client.conversations_open(users=channel)["channel"]["id"]
        client.files_upload_v2(channel=channel, content=content, filename=name, title=name,
                               initial_comment=blocks.message(post)["text"])
    except SlackApiError as e:
        raise SendError(e.response.get("error") or "slack_error") from None
    return ""


def send_posts(runtime: Runtime, client: WebClient, reply: Reply) -> None:
    """Post to other places after the reply has gone, off the request path."""
    for post in reply.posts:
        runtime.after(lambda post=post: send_post(runtime, client, post))


def send_post(runtime: Runtime, client: WebClient, post: Post, tell: bool = True) -> bool:
    """A reply's follow-up post, sent once through the delivery table when it
    has a key. On refusal, tell the person who acted (unless `tell` is off
    because their confirmation will say it). True if it went out."""
    if post.edit_of and post.place:
        update_message(client, post.place.id, post.edit_of, post)
        return True
    refusal: list[str] = []

    def send(p: Post) -> bool:
        try:
            post_message(runtime, client, p)
        except SendError as e:
            refusal.append(e.code)
            raise
        return True

    if post.delivery:
        outcome = delivery.send_once(runtime.engine, post.delivery, post, send, runtime.clock())
        if outcome == delivery.TAKEN:
            return True  # another request or tick owns it
    else:
        try:
            send(post)
        except SendError:
            pass
    if not refusal:
        return True
    log.warning("post to %s failed: %s", post.place or post.dm_to, refusal[-1])
    if post.tell_on_failure and tell:
        notice = Post("common/post_failed", {"channel": str(post.place), "error": refusal[-1], **post.values},
                      dm_to=post.tell_on_failure)
        try:
            post_message(runtime, client, notice)
        except SendError as e:
            log.warning("could not tell member %s: %s", post.tell_on_failure, e.code)
    return False


def scheduler_sender(runtime: Runtime, client: WebClient):
    """`send(post) -> bool` for the scheduler tick; a refusal raises, so the
    delivery row records the reason and a later tick retries."""

    def send(post: Post) -> bool:
        post_message(runtime, client, post)
        return True

    return send


def update_message(client: WebClient, channel: str, ts: str, message: Message) -> None:
    try:
        client.chat_update(channel=channel, ts=ts, **blocks.message(message))
    except SlackApiError as e:
        log.warning("update of %s/%s failed: %s", channel, ts, e.response.get("error"))


def open_form(client: WebClient, trigger_id: str, reply: Reply) -> Reply | None:
    """Open the form; if Slack refuses, the Reply that tells the user why."""
    try:
        client.views_open(trigger_id=trigger_id, view=blocks.view(reply.form))
    except SlackApiError as e:
        return slack_failed(e, "views.open")
    return None


def slack_failed(error: SlackApiError, method: str) -> Reply:
    code = error.response.get("error") or "slack_error"
    log.warning("%s failed: %s", method, code)
    return Reply("common/slack_failed", {"error": code, "stored": False})


def dm(runtime: Runtime, client: WebClient, user_id: str, message: Message) -> None:
    runtime.after(lambda: client.chat_postMessage(channel=user_id, **blocks.message(message)))


def confirm_after_posts(runtime: Runtime, client: WebClient, user_id: str, reply: Reply) -> None:
    """After a form closed: send its posts, then confirm by DM, saying
    whether the team was actually told (`posted`)."""

    def run() -> None:
        posted = all([send_post(runtime, client, post, tell=False) for post in reply.posts])
        message = Message(reply.template, {**reply.values, "posted": posted}, reply.actions)
        client.chat_postMessage(channel=user_id, **blocks.message(message))

    runtime.after(run)
