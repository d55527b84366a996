"""The same commands in a terminal: type what you would type in Slack and
read the replies as text. Buttons show as numbered choices (`:press N` runs
exactly what a click runs); a form is asked field by field in a terminal,
or listed and filled with `:fill 項目=値 …` when stdin is not a terminal."""

from __future__ import annotations

import re
import shlex
import sys
from typing import IO, Any, Callable

from sqlmodel import select

from bot import commands
from bot.dates import DateError, parse_date
from bot.forms import FormField
from bot.lookup import fold, normalise
from bot.numbers import whole_number
from bot.people import Handle, Place, channel_token, mention_token, untokened
from bot.render import button_label, field_error, render_text
from bot.replies import Action, FormView, Message, Reply
from bot.requests import ACTION, COMMAND, SUBMIT, Request, Who
from bot.runtime import Runtime
from bot.store.models import Identity, Member

PROMPT = "renkei> "
PLATFORM = "slack"  # the demo town's members are Slack members; the console acts as one of them
HERE = Place("console", "console")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>|(?<![\w@])@([UW][A-Z0-9]{2,})\b")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")


def typed(text: str) -> tuple[str, list[Handle]]:
    """Mentions typed as `@U0DEMONS1` (or Slack's `<@U…>`) and channels as
    `<#C…>` become the core's tokens, as the Slack glue does (token
    characters typed are removed first: none can forge a mention)."""
    mentions: list[Handle] = []

    def swap(m: re.Match) -> str:
        mentions.append(Handle(PLATFORM, m[1] or m[2]))
        return mention_token(len(mentions) - 1, m[0])

    text = _MENTION.sub(swap, untokened(text))
    return _CHANNEL.sub(lambda m: channel_token(Place(PLATFORM, m[1]), m[0]), text), mentions


class Console:
    def __init__(self, runtime: Runtime, user_id: str, out: IO[str] = sys.stdout,
                 ask: Callable[[str], str] | None = None):
        self.runtime = runtime
        self.user_id = user_id
        self.out = out
        # Reads one answer for a form field when interactive (None: use `:fill`).
        self.ask = ask
        self.counter = 0
        self.choices: list[Action] = []
        self.form: FormView | None = None

    # --- input -----------------------------------------------------------------

    def handle_line(self, line: str) -> None:
        line = untokened(line).strip()  # everything typed: commands, :fill values
        if not line or line.startswith("#"):
            return
        word, _, rest = line.partition(" ")
        if word in (":as", "/as"):
            if rest.strip():
                self.user_id = rest.strip()
            self.print(render_text("console/whoami", {"user_id": self.user_id}))
        elif line in (":help", "/help", "help", "?"):
            self.print(render_text("console/help", {"commands": sorted(commands.COMMANDS), "members": self.members(),
                                                    "admins": self.runtime.settings.admins}))
        elif word == ":press":
            self.press(rest.strip())
        elif word == ":fill":
            self.fill(rest)
        else:
            command = word if word.startswith("/") else "/" + word
            text, mentions = typed(rest)
            self.show(self.send(Request(COMMAND, command, text), mentions))

    def members(self) -> list[tuple[str, str, str]]:
        """(id to use with :as, name, profession) of everyone the console can act as."""
        rows: list[tuple[str, str, str]] = []
        self.runtime.in_session(lambda session: rows.extend(
            (i.external_id, m.display_name, m.profession)
            for m, i in session.exec(select(Member, Identity).join(Identity, Identity.member_id == Member.id)
                                     .where(Identity.platform == PLATFORM).order_by(Member.id))))
        return rows

    def send(self, request: Request, mentions: list[Handle] = ()) -> Reply:
        self.counter += 1
        who = Who(handle=Handle(PLATFORM, self.user_id), place=HERE,
                  request_key=f"console:{id(self)}:{self.counter}", mentions=list(mentions))
        return self.runtime.handle(who, request)

    def press(self, number: str) -> None:
        n = whole_number(number) or 0
        if not 1 <= n <= len(self.choices):
            self.print(render_text("console/press_invalid", {"number": number, "count": len(self.choices)}))
            return
        action = self.choices[n - 1]
        meta = self.form.meta if self.form and action.id == self._switch_action() else {}
        self.show(self.send(Request(ACTION, action.id, action.value, meta=meta)))

    def _switch_action(self) -> str | None:
        return next((f.on_change for f in self.form.form.fields if f.on_change), None) if self.form else None

    # --- forms -------------------------------------------------------------------

    def fill(self, text: str) -> None:
        if self.form is None:
            self.print(render_text("console/fill_invalid", {"problem": "no_form"}))
            return
        try:
            # Only the field name is folded: a value keeps what was typed (℃ stays ℃).
            pairs = [(fold(k), sep, v) for k, sep, v in
                     (p.partition("=") for p in shlex.split(text.replace("＝", "=")))]
        except ValueError:  # an unclosed quote
            pairs = [(text, "", "")]
        # A field that switches the form (the liaison form type) goes first,
        # so the other names are looked up in the form it switches to.
        switch = next((f for f in self.form.form.fields if f.on_change), None)
        for key, sep, value in pairs:
            if switch is not None and sep and self._field(key, [switch]) is switch:
                pairs.remove((key, sep, value))
                if not self._switch(switch, self._value(switch, value)):
                    return
                break
        values = dict(self.form.initial)
        for key, sep, value in pairs:
            field = self._field(key, self.form.form.fields) if sep else None
            if field is None:
                self.print(render_text("console/fill_invalid", {"problem": "unknown_field", "key": key or text,
                                                                "fields": self.form.form.fields}))
                return
            values[field.id] = self._value(field, value)
        self.submit(values)

    def _switch(self, field: FormField, value: Any) -> bool:
        if value == self.form.initial.get(field.id):
            return True
        reply = self.send(Request(ACTION, field.on_change, str(value), meta=self.form.meta))
        if not reply.form:
            self.show(reply)
            return False
        self.form = reply.form
        return True

    @staticmethod
    def _field(key: str, fields) -> FormField | None:
        """By id, label or alias; or the one label that contains what was typed."""
        key = normalise(key)
        if not key:
            return None
        for field in fields:
            if key in {normalise(field.id), normalise(field.label), *(normalise(a) for a in field.aliases)}:
                return field
        partial = [f for f in fields if key in normalise(f.label)]
        return partial[0] if len(partial) == 1 else None

    def _value(self, field: FormField, value: str) -> Any:
        """What a person typed for a field, as the form wants it: an option
        by its label, a date as 11/25 or 明日."""
        if field.type in ("choice", "yes_no"):
            return next((o.value for o in field.options if normalise(value) in (normalise(o.label),
                                                                                normalise(o.value))), value)
        if field.type == "multi_choice":
            return [self._value(FormField(field.id, field.label, "choice", options=field.options), v)
                    for v in re.split(r"[,、，]", value) if v.strip()]
        if field.type == "date":
            try:
                day = parse_date(value, self.runtime.clock().astimezone(self.runtime.settings.tz).date(), "future")
            except DateError:
                return value
            return day.isoformat() if day else value
        return value

    def submit(self, values: dict[str, Any]) -> None:
        form = self.form
        reply = self.send(Request(SUBMIT, form.submit, values=values, meta=form.meta))
        if reply.field_errors:
            self.show(reply)  # the form stays open: fix the fields and :fill again
            return
        self.form = None
        self.show(reply)

    def prompt_form(self) -> None:
        """In a terminal: each field in turn; Enter leaves it empty."""
        values = dict(self.form.initial)
        for field in self.form.form.fields:
            if field.on_change:
                continue
            answer = untokened(self.ask(render_text("console/field_prompt", {"f": field}) + " ")).strip()
            if answer:
                values[field.id] = self._value(field, answer)
        self.submit(values)

    # --- output ------------------------------------------------------------------

    def show(self, reply: Reply) -> None:
        self.choices = []
        if reply.form:
            if reply.template:
                self.print(render_text(reply.template, reply.values))
            self.form = reply.form
            intro = reply.form.intro
            self.print(render_text("console/form", {
                "view": reply.form, "interactive": self.ask is not None,
                "intro": render_text(intro.template, intro.values) if intro else ""}))
            self._list_actions([Action.make(f.on_change, o.value, label=o.label)
                                for f in reply.form.form.fields if f.on_change for o in f.options])
            if self.ask is not None:
                self.prompt_form()
            return
        if reply.field_errors:
            for problem in reply.field_errors.values():
                self.print(field_error(problem))
            return
        if reply.template:
            self.print(render_text(reply.template, reply.values))
            self._list_actions(reply.actions)
        if reply.update:
            self._message("console/updated", {}, self.runtime.drawn(reply.update))
        for post in reply.posts:
            where = {"place": post.place.id if post.place else None, "member": post.dm_to,
                     "edited": bool(post.edit_of)}
            self._message("console/posted", where, self.runtime.drawn(post))
            for reply in post.replies:
                self._message("console/posted", {**where, "thread": True}, reply)

    def _message(self, template: str, values: dict, message: Message) -> None:
        self.print(render_text(template, {**values, "text": render_text(message.template, message.values)}))
        self._list_actions(message.actions)

    def _list_actions(self, actions: list[Action]) -> None:
        if not actions:
            return
        start = len(self.choices) + 1
        self.choices += actions
        labels = [button_label(a) for a in actions]
        self.print(render_text("console/choices", {"labels": labels, "start": start}))

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def loop(self, stdin: IO[str] = sys.stdin) -> None:
        interactive = stdin.isatty()
        if interactive:
            self.ask = input
            self.print(render_text("console/welcome", {"user_id": self.user_id}))
        while True:
            try:
                line = input(PROMPT) if interactive else stdin.readline()
            except (EOFError, KeyboardInterrupt):
                break
            if not interactive and line == "":
                break
            if line.strip() in (":quit", ":q", "exit", "quit"):
                break
            if not interactive and line.strip():
                self.print(f"{PROMPT}{line.strip()}")
            self.handle_line(line)
