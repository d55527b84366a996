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
