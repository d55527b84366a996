"""One bot process's scheduler on a simulated clock, for the two-process
tests (tests/test_two_processes.py).

`renkei serve` runs `bot.schedule.tick(runtime, runtime.clock(),
scheduler_sender(runtime, app.client))` once a minute (`schedule.start`).
This process builds the same parts the same way (settings from the
environment, `Runtime.build`, `create_app` for its WebClient) and calls the
same `tick` with the same sender, only at instants it is given instead of
the wall clock, which `renkei serve` cannot be given. (The test has applied
the migrations already, so it does not run `db upgrade` as serve does.)

    python -m tests.tick_worker [--lockstep] INSTANT [INSTANT ...]

It imports everything, prints "ready", waits for a line on stdin ("go"),
then (with --lockstep: waiting for another line before each later tick)
prints one JSON line per tick: {"at", "sent", "taken", "failed",
"skipped", "deferred"}, plus "error" if the tick raised. Environment:
RENKEI_DATABASE_URL, RENKEI_CONFIG, RENKEI_SLACK_API_URL, SLACK_BOT_TOKEN,
SLACK_SIGNING_SECRET.
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import datetime


class SimulatedClock:
    """The runtime's clock, moved to each tick's instant (what a post's
    `on_sent` or a rendered "x minutes ago" reads)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def main(argv: list[str]) -> int:
    from bot import schedule
    from bot.app import create_app
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from bot.slack import deliver

    # --lockstep: wait for a line before every tick, not only the first (see
    # `in_lockstep` in tests/test_two_processes.py).
    lockstep = argv[:1] == ["--lockstep"]
    ticks = [datetime.fromisoformat(a) for a in (argv[1:] if lockstep else argv)]
    settings = load_settings()
    clock = SimulatedClock(ticks[0])
    runtime = Runtime.build(settings, clock=clock)
    app = create_app(settings, runtime)
    send = deliver.scheduler_sender(runtime, app.client)
    # As in the rest of the suite (conftest's `unpaced`): Slack's pace of one
    # post a second per channel would only make the simulated week slow.
    deliver.PACER.interval = 0.0
    print("ready", flush=True)
    sys.stdin.readline()
    for n, at in enumerate(ticks):
        if lockstep and n:
            sys.stdin.readline()
        clock.now = at
        line = {"at": at.isoformat(), "sent": [], "taken": [], "failed": [], "skipped": [], "deferred": []}
        try:  # as serve's job does (`schedule.start`): a failed tick is logged, the next one runs
            report = schedule.tick(runtime, at, send)
            line.update(sent=report.sent, taken=report.taken, failed=report.failed, skipped=report.skipped,
                        deferred=report.deferred)
        except Exception as e:
            traceback.print_exc()
            line["error"] = f"{e.__class__.__name__}: {e}"
        print(json.dumps(line), flush=True)
    runtime.wait_idle()
    runtime.background.shutdown(wait=True)
    runtime.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
