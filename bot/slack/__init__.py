"""Bolt glue only: Slack payloads in, neutral requests to the core, Replies
out as Block Kit. No business rules live here."""

from bot.slack.listeners import register

__all__ = ["register"]
