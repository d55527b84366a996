"""Sending what the core returned: Block Kit messages, modals, posts to
channels and DMs, and redraws of a pressed message. Posts go through the
delivery table when they carry a key, so each is sent once: each such post
carries its key as Slack message metadata, so a retry after an unknown
outcome first looks for it in the channel's recent history."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import delivery
from bot.delivery import Key
from bot.people import Place
from bot.render import field_error
from bot.replies import Message, Post, Reply
from bot.runtime import Runtime
from bot.slack import blocks
from bot.slack.mrkdwn import PLATFORM
from bot.slack.pace import ChannelPacer
from bot.store.models import Member

log = logging.getLogger(__name__)
PACER = ChannelPacer()
METADATA_TYPE = "renkei_delivery"
# Refusals that no retry can change; anything else (ratelimited, a 5xx, a
# timeout, a reset connection) is temporary and left to the next tick.
PERMANENT = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "no_slack_identity", "not_a_slack_channel",
    "user_not_found", "user_disabled", "cannot_dm_bot", "account_inactive", "invalid_auth", "not_authed",
    "token_revoked", "token_expired", "missing_scope", "restricted_action", "invalid_blocks", "msg_too_long",
    "no_text", "invalid_arguments", "invalid_metadata_format", "team_access_not_granted",
})


class SendError(RuntimeError):
    """Slack refused a message; `code` is Slack's error code (or, for an
    answer that was not Slack's JSON, `server_error`)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT


def _code(error: SlackApiError) -> str:
    # A 5xx answer from a proxy is HTML, not Slack's JSON: slack_sdk puts
    # its own English sentence where Slack's error code would be.
    status = error.response.status_code
    if status == 429:
        return "ratelimited"
    if status >= 500:
        return "server_error"
    return error.response.get("error") or "slack_error"


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


def post_message(runtime: Runtime, client: WebClient, post: Post, key: Key | None = None) -> str:
    """chat.postMessage (tagged with the delivery key, if any); runs
    `on_sent`. Raises SendError with Slack's reason."""
    if post.attachment:
        return _upload(runtime, client, post)
    channel = channel_of(runtime, post)
    PACER.wait(channel)
    try:
        response = client.chat_postMessage(channel=channel, **blocks.message(post), **_tagged(key))
    except SlackApiError as e:
        raise SendError(_code(e)) from None
    _sent(runtime, client, post, response["channel"], response["ts"], key)
    return response["ts"]


def _sent(runtime: Runtime, client: WebClient, post: Post, channel: str, ts: str, key: Key | None,
          already: frozenset[str] = frozenset()) -> None:
    """After the post: remember it, then its thread replies, each tagged
    with its own key so a retry that finds the post skips those `already`
    in the thread."""
    if post.on_sent:
        runtime.in_session(post.on_sent, Place(PLATFORM, channel), ts)
    for n, reply in enumerate(post.replies):  # the thread is a courtesy: the post itself has gone out
        reply_key = (*key[:2], f"{key[2]}#reply{n}") if key else None
        if reply_key and _key_text(reply_key) in already:
            continue
        PACER.wait(channel)
        try:
            client.chat_postMessage(channel=channel, thread_ts=ts, **blocks.message(reply), **_tagged(reply_key))
        except SlackApiError as e:
            log.warning("thread reply failed: %s", _code(e))


def _tagged(key: Key | None) -> dict:
    return {"metadata": {"event_type": METADATA_TYPE, "event_payload": {"key": _key_text(key)}}} if key else {}


def _keys_in(messages: list[dict]) -> dict[str, str]:
    """{delivery key: message ts} of the messages Renkei tagged."""
    return {m["metadata"]["event_payload"]["key"]: m.get("ts", "") for m in messages
            if (m.get("metadata") or {}).get("event_type") == METADATA_TYPE
            and isinstance((m["metadata"].get("event_payload") or {}).get("key"), str)}


def _key_text(key: Key) -> str:
    return "/".join(key)


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
        raise SendError(_code(e)) from None
    return ""


def send_posts(runtime: Runtime, client: WebClient, reply: Reply,
               drawn_already: tuple[str, str] | None = None) -> None:
    """Post to other places after the reply has gone, off the request path.
    A redraw of an earlier message goes in that message's lane: after the
    redraws before it, and instead of those still waiting. A redraw of
    `drawn_already` (channel, ts), the pressed message that `reply.update`
    redraws, is left out: the same message drawn and sent twice."""
    for post in reply.posts:
        if not (post.edit_of and post.place):
            post_later(runtime, client, post)
        elif (post.place.id, post.edit_of) != drawn_already:
            redraw_later(runtime, client, post.place.id, post.edit_of, post)


def post_later(runtime: Runtime, client: WebClient, post: Post,
               then: Callable[[str], None] | None = None) -> None:
    """Send `post` off the request path, after the posts given before to
    the same place and in Slack's pace for it: a burst to one channel
    waits its turn there without holding up posts to any other. `then`
    gets how it went (SENT, LATER or FAILED)."""
    if post.place is not None and post.dm_to is None:
        key, ready_at = ("channel", post.place.id), _channel_free_at
    else:  # a DM's channel is looked up when it is sent; paced then (post_message)
        key, ready_at = ("dm", post.dm_to), None

    def send() -> None:
        state = FAILED
        try:
            state = send_post(runtime, client, post, tell=then is None)
        finally:
            if then is not None:
                then(state)

    runtime.after_paced(send, key, ready_at)


def _channel_free_at(key: tuple[str, str]) -> float:
    return PACER.free_at(key[1])


def redraw_later(runtime: Runtime, client: WebClient, channel: str, ts: str, message: Message) -> None:
    """Redraw the message `ts` in `channel` off the request path, in that
    message's lane: after the redraws given before, instead of those still
    waiting."""
    lane = ("redraw", channel, ts)
    runtime.after(lambda: _redraw(runtime, client, channel, ts, message, lane), lane=lane, latest_only=True)


def _redraw(runtime: Runtime, client: WebClient, channel: str, ts: str, message: Message,
            lane: tuple[str, str, str] | None = None) -> None:
    runtime.redraw(message, lambda drawn: update_message(client, channel, ts, drawn), lane)


SENT, LATER, FAILED = "sent", "later", "failed"


def send_post(runtime: Runtime, client: WebClient, post: Post, tell: bool = True) -> str:
    """A reply's follow-up post, sent once through the delivery table when it
    has a key: SENT; LATER when Slack failed for now and a tick will retry;
    FAILED when it never will. The person who acted is told only of a
    final failure (unless `tell` is off because their confirmation says it)."""
    if post.edit_of and post.place:
        _redraw(runtime, client, post.place.id, post.edit_of, post)
        return SENT
    sender = SlackSender(runtime, client, tell=tell)
    if post.delivery:
        outcome = delivery.send_once(runtime.engine, post.delivery, post, sender, runtime.clock())
        if outcome.taken or outcome.error is None:
            return SENT  # sent now, or another request or tick owns it
        return FAILED if outcome.final else LATER
    try:
        sender(post, None)
        return SENT
    except (SendError, delivery.Undeliverable) as e:
        log.warning("post to %s failed: %s", post.place or post.dm_to, e)
        return FAILED


class SlackSender:
    """`send(post, key)` for the delivery table (`bot.delivery`), with the
    two questions it may ask: is a retried post already in its channel, and
    whom to tell when a post is given up."""

    def __init__(self, runtime: Runtime, client: WebClient, tell: bool = True):
        self.runtime, self.client, self.tell = runtime, client, tell

    def __call__(self, post: Post, key: Key | None) -> bool:
        try:
            post_message(self.runtime, self.client, post, key)
        except SendError as e:
            if e.permanent:
                raise delivery.Undeliverable(e.code) from None
            raise
        return True

    def already_sent(self, post: Post, key: Key) -> bool:
        """Look for the key in the channel's recent messages; when found,
        finish as if just sent (`on_sent`, the thread replies not yet in
        it). Unknown (no history scope, not in the channel): False, and the
        post is sent again."""
        try:
            channel = channel_of(self.runtime, post)
            if post.dm_to is not None:
                channel = self.client.conversations_open(users=channel)["channel"]["id"]
            history = self.client.conversations_history(channel=channel, limit=100, include_all_metadata=True)
            ts = _keys_in(history.get("messages") or []).get(_key_text(key))
            if ts is None:
                return False
            thread = self.client.conversations_replies(channel=channel, ts=ts, include_all_metadata=True) \
                if post.replies else {}
        except (SlackApiError, SendError) as e:
            log.warning("cannot check %s for an earlier post of %s: %s", post.place or post.dm_to, key, e)
            return False
        log.info("%s was already posted (%s): not sent again", _key_text(key), ts)
        _sent(self.runtime, self.client, post, channel, ts, key,
              already=frozenset(_keys_in(thread.get("messages") or [])))
        return True

    def gave_up(self, post: Post, error: str) -> None:
        if not (post.tell_on_failure and self.tell):
            return
        reason = error.removeprefix("undeliverable: ")
        notice = Post("common/post_failed", {"channel": str(post.place), "error": reason, **post.values},
                      dm_to=post.tell_on_failure)
        try:
            post_message(self.runtime, self.client, notice)
        except SendError as e:
            log.warning("could not tell member %s: %s", post.tell_on_failure, e.code)


def scheduler_sender(runtime: Runtime, client: WebClient) -> SlackSender:
    """The tick's sender: a refusal raises, so the delivery row records the
    reason and a later tick retries (or, if final, the author is told)."""
    return SlackSender(runtime, client)


def update_message(client: WebClient, channel: str, ts: str, message: Message) -> None:
    try:
        client.chat_update(channel=channel, ts=ts, **blocks.message(message))
    except SlackApiError as e:
        log.warning("update of %s/%s failed: %s", channel, ts, e.response.get("error"))


def open_form(client: WebClient, trigger_id: str | None, reply: Reply) -> Reply | None:
    """Open the form; if Slack refuses, or the payload had no trigger_id
    (Slack always sends one), the Reply that tells the user why."""
    if not trigger_id:
        log.warning("cannot open a form: the payload has no trigger_id")
        return Reply("common/slack_failed", {"error": "no_trigger_id", "stored": False})
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
    """After a form closed: send its posts (each in its channel's turn,
    `post_later`), then confirm by DM, saying whether the team was told,
    will be told shortly, or was not (`posted`)."""
    states: list[str] = []
    lock = threading.Lock()

    def confirm() -> None:
        posted = FAILED if FAILED in states else LATER if LATER in states else SENT
        message = Message(reply.template, {**reply.values, "posted": posted}, reply.actions)
        client.chat_postMessage(channel=user_id, **blocks.message(message))

    def one_done(state: str) -> None:
        with lock:
            states.append(state)
            last = len(states) == len(reply.posts)
        if last:
            confirm()

    if not reply.posts:
        runtime.after(confirm)
    for post in reply.posts:
        post_later(runtime, client, post, then=one_done)
