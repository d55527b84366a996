"""The one listening socket that serving processes share (`renkei serve
--processes N`), and which of them accepts a new connection."""

from __future__ import annotations

import mmap
import os
import socket
import struct
import time
from typing import Callable


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The listening socket every serving process accepts from."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog)


# A process with more open connections than the least loaded of the others
# waits this long per connection more before it accepts (at most
# MOST_DEFERRAL_S), so that one takes the new connection.
DEFERRAL_S = 0.002
MOST_DEFERRAL_S = 0.01


class Connections:
    """How many connections each serving process holds open, in memory the
    forked processes share (a slot each, -1: no process in it).

    All processes wait on the one listening socket and the kernel wakes
    them all for a new connection; the first to call accept takes it. That
    is the least busy one only by chance: a process whose threads are all
    busy can still win, and keep-alive connections then stay with it. Under
    16 clients one process held 10 to 12 of the 16, and their requests
    queued for its one interpreter while the other's idled (the benchmark's
    per-process CPU: 0.56 against 0.23 s). So a process holding more than
    another defers a moment and lets that one accept. A process that is
    stuck costs the others at most MOST_DEFERRAL_S per connection."""

    def __init__(self, count: int):
        self._counts = mmap.mmap(-1, 4 * count)  # anonymous and shared: the children see one memory
        for slot in range(count):
            self.set(slot, -1)
        self.slots = count

    def set(self, slot: int, open_connections: int) -> None:
        struct.pack_into("i", self._counts, 4 * slot, open_connections)

    def fewest_besides(self, slot: int) -> int | None:
        counts = [struct.unpack_from("i", self._counts, 4 * other)[0] for other in range(self.slots) if other != slot]
        counts = [c for c in counts if c >= 0]
        return min(counts) if counts else None

    def listener(self, sock: socket.socket, slot: int) -> SharedListener:
        return SharedListener(sock, self, slot)


class SharedListener(socket.socket):
    """One serving process's view of the shared listening socket: accept
    defers to a process holding fewer connections (`Connections`).
    `open_connections` is set by the server once it exists."""

    def __init__(self, sock: socket.socket, connections: Connections, slot: int):
        super().__init__(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
        self.connections, self.slot = connections, slot
        self.open_connections: Callable[[], int] = lambda: 0
        connections.set(slot, 0)

    def accept(self):
        mine = self.open_connections()
        self.connections.set(self.slot, mine)
        fewest = self.connections.fewest_besides(self.slot)
        if fewest is not None and mine > fewest:
            time.sleep(min(DEFERRAL_S * (mine - fewest), MOST_DEFERRAL_S))
        accepted = super().accept()  # BlockingIOError if another took it meanwhile: the server expects that
        self.connections.set(self.slot, mine + 1)
        return accepted
