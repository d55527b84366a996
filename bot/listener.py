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
# A count not said again for this long is not deferred to: its process may
# be stuck, or simply has accepted nothing lately (the kernel then decides).
FRESH_S = 1.0

_SLOT = struct.Struct("id")  # open connections (-1: no process serving in the slot), when said (time.monotonic)


class Connections:
    """How many connections each serving process holds open, in memory the
    forked processes share (a slot each).

    All processes wait on the one listening socket and the kernel wakes
    them all for a new connection; the first to call accept takes it. That
    is the least busy one only by chance, and keep-alive connections then
    stay with it: in the load benchmark one of two processes held most of
    a phase's 16 connections, and their requests queued for its one
    interpreter while the other's idled (its CPU in the phase: 0.56 against
    0.23 s). So a process holding more than another defers a moment and
    lets that one accept. The wait is in the server's I/O thread, which
    meanwhile reads and writes for none of its connections: hence at most
    MOST_DEFERRAL_S, and only to a count said within FRESH_S, so a stuck
    process costs the others little and not for long."""

    def __init__(self, count: int):
        # Anonymous and shared: the processes forked after this see one memory.
        self._slots = mmap.mmap(-1, _SLOT.size * count)
        self.count = count
        for slot in range(count):
            self.vacate(slot)

    def say(self, slot: int, open_connections: int) -> None:
        _SLOT.pack_into(self._slots, _SLOT.size * slot, open_connections, time.monotonic())

    def vacate(self, slot: int) -> None:
        """No process serves in `slot` (not yet, or no longer)."""
        _SLOT.pack_into(self._slots, _SLOT.size * slot, -1, 0.0)

    def fewest_besides(self, slot: int) -> int | None:
        """The fewest connections a serving process other than `slot`'s
        said it held within FRESH_S; None if none did."""
        now = time.monotonic()
        fewest = None
        for other in range(self.count):
            count, said = _SLOT.unpack_from(self._slots, _SLOT.size * other)
            if other != slot and count >= 0 and now - said < FRESH_S and (fewest is None or count < fewest):
                fewest = count
        return fewest


class SharedListener(socket.socket):
    """One serving process's view of the shared listening socket: accept
    defers to a process holding fewer connections (`Connections`). Others
    defer to it only once its server says it serves (`serving`)."""

    def __init__(self, sock: socket.socket, connections: Connections, slot: int):
        super().__init__(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
        self.connections, self.slot = connections, slot
        self._open_connections: Callable[[], int] = lambda: 0

    def serving(self, open_connections: Callable[[], int]) -> None:
        """The server is ready: `open_connections()` counts what it holds."""
        self._open_connections = open_connections
        self.connections.say(self.slot, open_connections())

    def accept(self):
        mine = self._open_connections()
        self.connections.say(self.slot, mine)
        fewest = self.connections.fewest_besides(self.slot)
        if fewest is not None and mine > fewest:
            time.sleep(min(DEFERRAL_S * (mine - fewest), MOST_DEFERRAL_S))
        accepted = super().accept()  # BlockingIOError if another took it meanwhile: the server expects that
        self.connections.say(self.slot, mine + 1)
        return accepted
