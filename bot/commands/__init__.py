"""One module per slash command: parse the text, call the store, return a
Reply. Nothing here imports Slack; the console and a later Teams adapter
call `run` exactly as the Slack glue does."""

from __future__ import annotations

from typing import Callable

from bot.commands import liaison, patient, vacancy
from bot.context import Context
from bot.replies import Reply

Handler = Callable[[Context, str], Reply]

COMMANDS: dict[str, Handler] = {
    "/patient": patient.handle,
    "/liaison": liaison.handle,
    "/vacancy": vacancy.handle,
}


def run(ctx: Context, command: str, text: str) -> Reply:
    handler = COMMANDS.get(command)
    if handler is None:
        return Reply("common/unknown_command", {"command": command, "commands": sorted(COMMANDS)})
    return handler(ctx, text or "")
