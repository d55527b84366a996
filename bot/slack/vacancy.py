"""Bolt glue for /vacancy's buttons and modal. No business rules: each
listener builds a `Who`, calls `bot.commands.vacancy` / `bot.vacancy.enquiry`,
and delivers the Reply."""

from __future__ import annotations

import json
import re

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.commands import vacancy
from bot.replies import Post
from bot.runtime import Runtime
from bot.slack import deliver
from bot.slack.actions import who_from
from bot.slack.views import answer_submission, state_values, who_from_view
from bot.vacancy import enquiry


def _update_clicked(client: WebClient, body: dict, post: Post | None) -> None:
    container = body.get("container", {})
    if post and container.get("channel_id") and container.get("message_ts"):
        deliver.update_message(client, container["channel_id"], container["message_ts"], post)


def register(app: App, runtime: Runtime) -> None:
    @app.action("vacancy_confirm")
    def confirm(ack: Ack, body: dict, action: dict, respond: Respond) -> None:
        ack()
        reply = runtime.run(who_from(body), lambda ctx: vacancy.confirm_figures(ctx, int(action["value"])))
        respond(replace_original=not reply.error and reply.template == "vacancy/confirmed", **deliver.message(reply))

    @app.action("vacancy_update")
    def open_update(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond) -> None:
        ack()
        reply = runtime.run(who_from(body), lambda ctx: vacancy.open_set_modal(ctx, int(action["value"])))
        if reply.modal:
            deliver.open_modal(client, body["trigger_id"], reply.modal)
        else:
            respond(replace_original=False, **deliver.message(reply))

    @app.action(re.compile(r"^vacancy_ask_\d+$"))
    def ask(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond) -> None:
        ack()
        reply = runtime.run(who_from(body), lambda ctx: enquiry.ask(ctx, json.loads(action["value"])))
        respond(replace_original=False, **deliver.message(reply))
        deliver.send_posts(runtime, client, reply)

    @app.action(re.compile(r"^vacancy_answer_(accept|decline)$"))
    def answer(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond) -> None:
        ack()
        verdict = action["action_id"].rsplit("_", 1)[1]
        reply = runtime.run(who_from(body), lambda ctx: enquiry.answer(ctx, int(action["value"]), verdict))
        _update_clicked(client, body, reply.update)
        respond(replace_original=False, **deliver.message(reply))
        deliver.send_posts(runtime, client, reply)

    @app.view("vacancy_set_submit")
    def submit(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        reply = runtime.run(who_from_view(body, view, meta.get("channel")),
                            lambda ctx: vacancy.set_from_form(ctx, state_values(view)))
        answer_submission(ack, reply, "beds")
        deliver.follow_up(runtime, client, reply, dm_to=body["user"]["id"])
