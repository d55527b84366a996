"""Slack's pace: about one message per second per channel. A digest and
its thread, or a batch of reminders to one channel, are spaced out here
rather than answered with `ratelimited`. Per process: with several
processes, Slack's 429 and its Retry-After (slack_sdk's handler) cover the
rest."""

from __future__ import annotations

import threading
import time

INTERVAL = 1.0  # seconds between two posts to the same channel


class ChannelPacer:
    def __init__(self, interval: float = INTERVAL):
        self.interval = interval
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def free_at(self, channel: str) -> float:
        """When (time.monotonic) the channel may take its next post, without booking it."""
        with self._lock:
            return self._next.get(channel, 0.0)

    def wait(self, channel: str) -> None:
        """Block until this channel may take another post, and book it."""
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(channel, 0.0))
            self._next[channel] = at + self.interval
            if len(self._next) > 10_000:  # forget channels long quiet
                self._next = {c: t for c, t in self._next.items() if t > now}
        if at > now:
            time.sleep(at - now)
