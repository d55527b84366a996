"""Bolt glue only: turn Slack payloads into a `Who` and a command call, and
Replies into Slack calls. No business rules live here."""

from __future__ import annotations

from slack_bolt import App

from bot.runtime import Runtime
from bot.slack import actions, commands, vacancy, views


def register(app: App, runtime: Runtime) -> None:
    commands.register(app, runtime)
    actions.register(app, runtime)
    views.register(app, runtime)
    vacancy.register(app, runtime)
