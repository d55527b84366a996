"""Slash commands: one listener serves every command in `bot.commands`."""

from __future__ import annotations

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot import commands
from bot.runtime import Runtime, Who
from bot.slack import deliver


def register(app: App, runtime: Runtime) -> None:
    for name in commands.COMMANDS:
        app.command(name)(_listener(runtime))


def _listener(runtime: Runtime):
    def on_command(ack: Ack, command: dict, client: WebClient) -> None:
        who = Who(user_id=command["user_id"], name=command.get("user_name", ""),
                  channel_id=command.get("channel_id"), request_key=f"cmd:{command.get('trigger_id')}")
        reply = runtime.run(who, lambda ctx: commands.run(ctx, command["command"], command.get("text", "")))
        if reply.modal:
            ack()
            deliver.open_modal(client, command["trigger_id"], reply.modal)
        else:
            # The reply travels in the HTTP response itself: no extra API call.
            ack(**deliver.message(reply))
        deliver.send_posts(runtime, client, reply)

    return on_command
