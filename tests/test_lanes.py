"""Background lanes (bot.lanes): jobs of one key in order, keys side by side,
`latest_only` drops what is still waiting, a failing job does not stop its lane."""

import threading
from concurrent.futures import ThreadPoolExecutor

from bot.lanes import Lanes


def test_one_lane_keeps_order_drops_superseded_redraws_and_survives_a_failure():
    pool = ThreadPoolExecutor(4)
    lanes, done, started, gate = Lanes(pool), [], threading.Event(), threading.Event()
    lanes.submit("message", lambda: (started.set(), gate.wait(5), done.append("redraw 1")))
    assert started.wait(5)  # running now: no longer waiting, so nothing can drop it

    def fail():
        raise RuntimeError("Slack said no")

    lanes.submit("message", fail)
    lanes.submit("message", lambda: done.append("redraw 2"), latest_only=True)  # drops `fail`, still waiting
    lanes.submit("message", lambda: done.append("redraw 3"), latest_only=True)  # drops redraw 2
    lanes.submit("message", fail)
    lanes.submit("message", lambda: done.append("answer"))
    lanes.submit("other", lambda: done.append("other lane"))  # not held up by the first lane
    lanes.wait(0.5)
    assert done == ["other lane"]
    gate.set()
    lanes.wait(5)
    assert done == ["other lane", "redraw 1", "redraw 3", "answer"]
    lanes.submit("message", lambda: done.append("later"))  # the lane ran dry and starts again
    lanes.wait(5)
    assert done[-1] == "later"
    pool.shutdown()


def test_paced_lanes_keep_each_keys_pace_and_order_without_holding_a_thread():
    """One pool thread: a key waiting for its turn must not occupy it, or
    the other key could not run in between. A failing job does not stop
    its key; a shut-down pool drops what is left without hanging `wait`."""
    import time

    pool = ThreadPoolExecutor(1)
    paced, done, turns = Lanes(pool), [], {}

    def every(seconds):
        def ready_at(key):  # the key's next turn is `seconds` after its last start
            return turns.get(key, 0.0) + seconds
        return ready_at

    def job(key, name):
        def run():
            turns[key] = time.monotonic()
            done.append((name, turns[key]))
        return run

    def fail():
        raise RuntimeError("Slack said no")

    for n in range(3):
        paced.submit("busy", job("busy", f"busy {n}"), ready_at=every(0.3))
    paced.submit("busy", fail, ready_at=every(0.3))
    paced.submit("busy", job("busy", "busy 3"), ready_at=every(0.3))
    time.sleep(0.05)
    paced.submit("quiet", job("quiet", "quiet"), ready_at=every(0.3))
    paced.wait(5)
    names = [name for name, _at in done]
    assert names == ["busy 0", "quiet", "busy 1", "busy 2", "busy 3"]
    busy = [at for name, at in done if name.startswith("busy")]
    assert min(b - a for a, b in zip(busy, busy[1:])) >= 0.29

    pool.shutdown()
    paced.submit("late", job("late", "late"), ready_at=every(0.0))  # nothing to run it: dropped, not queued forever
    paced.wait(1)
    assert "late" not in [name for name, _at in done]


def test_a_paced_key_whose_turn_cannot_be_told_is_dropped_not_stuck():
    pool = ThreadPoolExecutor(1)
    paced, done, asked = Lanes(pool), [], []

    def broken(key):
        asked.append(key)
        if len(asked) > 1:
            raise ValueError("no pace for this place")
        return 0.0

    paced.submit("place", lambda: done.append(1), ready_at=broken)
    paced.wait(5)
    paced.submit("place", lambda: done.append(2), ready_at=broken)  # its turn cannot be told: dropped, logged
    paced.wait(5)
    paced.submit("place", lambda: done.append(3), ready_at=lambda key: 0.0)  # the key works again
    paced.wait(5)
    assert done[0] == 1 and done[-1] == 3 and 2 not in done
    pool.shutdown()
