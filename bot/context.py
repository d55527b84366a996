"""What every command receives: who asks, where, when, and the open session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlmodel import Session

from bot.forms import FormRegistry
from bot.people import Place
from bot.settings import Settings
from bot.store.models import Member

Clock = Callable[[], datetime]


@dataclass
class Context:
    session: Session
    settings: Settings
    forms: FormRegistry
    member: Member
    now: datetime
    # Who acts, platform-qualified (`slack:U0123`): the audit actor.
    actor: str = ""
    # Where the request came from (a channel), if anywhere.
    place: Place | None = None
    # Identifies one user action (trigger_id, view id): a retried delivery of
    # the same action carries the same key, so it is stored only once.
    request_key: str | None = None

    @property
    def today(self):
        return self.now.astimezone(self.settings.tz).date()

    @property
    def platform(self) -> str:
        return self.actor.partition(":")[0]
