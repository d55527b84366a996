"""The one registry: every slash command, button action and form submission
by id, and `dispatch`, which every front end reaches through
`Runtime.handle`. Nothing here imports a platform; the console and the
Slack glue call exactly the same handlers.

Adding a command, a button or a form touches only the feature's module here
(its COMMAND handler, ACTIONS and SUBMISSIONS) and its templates."""

from __future__ import annotations

import json
from typing import Callable

from bot.commands import args, council, liaison, patient, plan, vacancy
from bot.commands.common import CHOOSE
from bot.context import Context
from bot.replies import REPLACE, Reply
from bot.requests import ACTION, COMMAND, SUBMIT, Request, StaleButton

Handler = Callable[[Context, Request], Reply]

COMMANDS: dict[str, Callable[[Context, str], Reply]] = {
    "/patient": patient.handle,
    "/liaison": liaison.handle,
    "/vacancy": vacancy.handle,
    "/council": council.handle,
    "/plan": plan.handle,
}


def run(ctx: Context, command: str, text: str) -> Reply:
    handler = COMMANDS.get(command)
    if handler is None:
        return Reply("common/unknown_command", {"command": command, "commands": sorted(COMMANDS)})
    return handler(ctx, text or "")


def choose(ctx: Context, request: Request) -> Reply:
    """A choice from a "which one?" list: run the command again with it, in
    place of the list."""
    try:
        chosen = json.loads(request.text)
        command, text = chosen["command"], chosen["text"]
    except (ValueError, KeyError, TypeError):
        raise StaleButton(request.text) from None
    if not (isinstance(command, str) and isinstance(text, str)):  # not a value choice_actions wrote
        raise StaleButton(request.text)
    reply = run(ctx, command, text)
    reply.answer = REPLACE
    return reply


ACTIONS: dict[str, Handler] = {CHOOSE: choose, **patient.ACTIONS, **liaison.ACTIONS, **vacancy.ACTIONS,
                                **council.ACTIONS, **plan.ACTIONS}
SUBMISSIONS: dict[str, Handler] = {**patient.SUBMISSIONS, **liaison.SUBMISSIONS, **vacancy.SUBMISSIONS,
                                   **council.SUBMISSIONS, **plan.SUBMISSIONS}


def dispatch(ctx: Context, request: Request) -> Reply:
    if request.kind == COMMAND:
        return run(ctx, request.name, request.text)
    table = ACTIONS if request.kind == ACTION else SUBMISSIONS if request.kind == SUBMIT else {}
    handler = table.get(request.name)
    if handler is None:
        return Reply("common/stale_button")
    try:
        return handler(ctx, request)
    except StaleButton:
        return Reply("common/stale_button")

# Which requests only show something, per command (each module knows its own words).
READERS: dict[str, Callable[[list[str]], bool]] = {
    "/patient": patient.only_reads, "/liaison": liaison.only_reads, "/vacancy": vacancy.only_reads,
    "/council": council.only_reads, "/plan": plan.only_reads,
}
READ_ACTIONS = {"note_show", liaison.SWITCH}


def only_reads(request: Request) -> bool:
    """Whether the request only asks to see something, decided from the
    request alone: the database may be gone before the command could say.
    Anything unclear counts as a write, whose "nothing was stored" is true
    of a read as well."""
    try:
        if request.kind == ACTION and request.name == CHOOSE:
            chosen = json.loads(request.text)
            return only_reads(Request(COMMAND, str(chosen["command"]), str(chosen["text"])))
        if request.kind == ACTION:
            return request.name in READ_ACTIONS
        reader = READERS.get(request.name) if request.kind == COMMAND else None
        return reader is not None and reader([args.fold(w).lower() for w in (request.text or "").split()])
    except Exception:  # whatever a button carried, the request itself goes on
        return False
