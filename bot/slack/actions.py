"""Buttons and selects."""

from __future__ import annotations

import hashlib
import json
import re

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import commands
from bot.commands import liaison
from bot.runtime import Runtime, Who
from bot.slack import deliver


def who_from(body: dict, channel_id: str | None = None) -> Who:
    user = body.get("user", {})
    return Who(user_id=user.get("id", ""), name=user.get("username") or user.get("name", ""),
               channel_id=channel_id or (body.get("channel") or {}).get("id"),
               request_key=f"act:{body.get('trigger_id')}")


def register(app: App, runtime: Runtime) -> None:
    @app.action(re.compile(r"^rerun_command_\d+$"))
    def rerun(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond) -> None:
        """A choice from a "which patient?" list: run the command again with the code."""
        ack()
        chosen = json.loads(action["value"])
        who = who_from(body)
        message_ts = body.get("container", {}).get("message_ts")
        if message_ts:
            # A double tap on the same choice is one action, not two notes.
            digest = hashlib.sha1(action["value"].encode()).hexdigest()[:16]
            who.request_key = f"pick:{message_ts}:{digest}"
        reply = runtime.run(who, lambda ctx: commands.run(ctx, chosen["command"], chosen["text"]))
        if reply.modal:
            deliver.open_modal(client, body["trigger_id"], reply.modal)
            respond(delete_original=True)
        else:
            respond(replace_original=True, **deliver.message(reply))
        deliver.send_posts(runtime, client, reply)

    @app.action("note_show")
    def show(ack: Ack, body: dict, action: dict, respond: Respond) -> None:
        ack()
        reply = runtime.run(who_from(body), lambda ctx: liaison.show_note(ctx, int(action["value"])))
        respond(replace_original=False, **deliver.message(reply))

    @app.action("note_ack")
    def acknowledge(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond) -> None:
        ack()
        reply = runtime.run(who_from(body), lambda ctx: liaison.acknowledge(ctx, int(action["value"])))
        container = body.get("container", {})
        if reply.update and container.get("channel_id") and container.get("message_ts"):
            deliver.update_message(client, container["channel_id"], container["message_ts"], reply.update)
        respond(replace_original=False, **deliver.message(reply))

    @app.action("liaison_form_type")
    def change_form(ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        """The first field of the liaison modal picks the form: redraw the modal for it."""
        ack()
        meta = json.loads(body["view"]["private_metadata"])
        form_id = action["selected_option"]["value"]
        reply = runtime.run(who_from(body, meta.get("channel")),
                            lambda ctx: liaison.change_form(ctx, meta["patient"], form_id))
        if reply.modal:
            client.views_update(view_id=body["view"]["id"], hash=body["view"]["hash"], view=deliver.view(reply.modal))
