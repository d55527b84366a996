"""The same commands in a terminal: type what you would type in Slack and
read the replies as text. One command per line when stdin is not a terminal."""

from __future__ import annotations

import sys
from typing import IO

from bot import commands
from bot.render import render_text
from bot.replies import Reply
from bot.runtime import Runtime, Who

PROMPT = "renkei> "


class Console:
    def __init__(self, runtime: Runtime, user_id: str, out: IO[str] = sys.stdout):
        self.runtime = runtime
        self.user_id = user_id
        self.out = out
        self.counter = 0

    def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line or line.startswith("#"):
            return
        if line.split()[0] in (":as", "/as"):
            parts = line.split()
            if len(parts) == 2:
                self.user_id = parts[1]
            self.print(render_text("console/whoami", {"user_id": self.user_id}))
            return
        if line in (":help", "/help", "help", "?"):
            self.print(render_text("console/help", {"commands": sorted(commands.COMMANDS)}))
            return
        command, _, text = line.partition(" ")
        if not command.startswith("/"):
            command = "/" + command
        self.counter += 1
        who = Who(user_id=self.user_id, channel_id="console", request_key=f"console:{id(self)}:{self.counter}")
        self.show(self.runtime.run(who, lambda ctx: commands.run(ctx, command, text)))

    def show(self, reply: Reply) -> None:
        if reply.modal:
            self.print(render_text("console/modal", {"kind": reply.modal.kind, **reply.modal.values}))
        elif reply.field_errors:
            for code, params in reply.field_errors.values():
                self.print(render_text("common/field_error", {"code": code, **params}))
        else:
            self.print(render_text(reply.template, reply.values))
        for post in reply.posts:
            self.print(render_text("console/posted", {"channel": post.channel,
                                                      "text": render_text(post.template, post.values)}))

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def loop(self, stdin: IO[str] = sys.stdin) -> None:
        interactive = stdin.isatty()
        if interactive:
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
