"""One thread that fires what is due at an instant (`time.monotonic`), for
an owner that keeps its own state under its own condition: the database
watchdog's deadlines (`bot.store.db`) and the lanes waiting for their turn
(`bot.lanes`). A thread of its own starts with the first instant."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, Callable


class Timers:
    def __init__(self, cond: threading.Condition, fire: Callable[[Any], None], name: str):
        """`fire(item)` is called on the timer thread with `cond` held."""
        self._cond, self._fire, self._name = cond, fire, name
        self._heap: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def push(self, at: float, item: Any) -> None:
        """Fire `item` at `at`. The caller holds `cond`."""
        n = next(self._order)
        heapq.heappush(self._heap, (at, n, item))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        if self._heap[0][1] == n:  # the earliest: wake the thread to wait less
            self._cond.notify_all()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    self._fire(heapq.heappop(self._heap)[2])
                self._cond.wait(self._heap[0][0] - now if self._heap else None)
