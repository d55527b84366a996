"""Background work: what is still in flight, and jobs that must not
overtake each other.

`InFlight` keeps the futures of work given to a pool until each is done,
so a caller can wait for what it started (shutdown, tests).

Jobs given the same key (a lane) run one at a time, in the order they were
submitted; jobs of different lanes run side by side on the pool's threads.
A lane's answers to one person stay in the order of their presses, and one
slow message does not hold up everybody else's.

`latest_only` is for jobs that each redraw the whole of one thing (a
message): a newer one makes those still waiting pointless, so they are
dropped and a burst of sixteen presses on one announcement redraws it once
or twice instead of sixteen times.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Executor, Future, wait
from typing import Callable, Hashable

log = logging.getLogger(__name__)


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: set[Future] = set()

    def add(self, future: Future) -> None:
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def wait(self, timeout: float = 10.0) -> None:
        """Until everything in flight now is done."""
        with self._lock:
            futures = list(self._futures)
        wait(futures, timeout=timeout)


class Lanes:
    def __init__(self, pool: Executor):
        self._pool = pool
        self._lock = threading.Lock()
        self._queued: dict[Hashable, deque[Callable[[], None]]] = {}  # a key is here while its lane runs
        self._runners = InFlight()

    def submit(self, key: Hashable, job: Callable[[], None], latest_only: bool = False) -> None:
        """Queue `job` behind the lane's earlier jobs, starting the lane's
        runner if none is on its way."""
        with self._lock:
            queued = self._queued.get(key)
            if queued is not None:
                if latest_only:
                    queued.clear()
                queued.append(job)
                return
            self._queued[key] = deque([job])
            self._runners.add(self._pool.submit(self._run, key))

    def _run(self, key: Hashable) -> None:
        while True:
            with self._lock:
                queued = self._queued[key]
                if not queued:
                    del self._queued[key]
                    return
                job = queued.popleft()
            try:
                job()
            except Exception:  # the lane goes on: a later job may still succeed
                log.exception("background job failed")

    def waiting(self, key: Hashable) -> bool:
        """Whether a job of this lane waits behind the one running."""
        with self._lock:
            return bool(self._queued.get(key))

    def wait(self, timeout: float = 10.0) -> None:
        """Until every lane that is running now has run dry."""
        self._runners.wait(timeout)
