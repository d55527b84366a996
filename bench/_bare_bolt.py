"""The yardstick for `bench/load.py`: a bare Bolt app that only acks, in
its fastest configuration (`process_before_response=True`, so no 10 ms ack
polling; no token check), behind the same server as `renkei serve`
(waitress, 8 threads). One listener for every slash command, one for every
button; Bolt still checks every signature.

    SLACK_SIGNING_SECRET=... python -m bench._bare_bolt PORT
"""

from __future__ import annotations

import os
import re
import sys

import waitress
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

ANY = re.compile(".*")


def make_wsgi(secret: str):
    # Bolt asks auth.test once, on the first request (as it does in the bot):
    # send it to the same fake Web API (RENKEI_SLACK_API_URL) as the bot's.
    client = WebClient(token="xoxb-bare", base_url=os.environ.get("RENKEI_SLACK_API_URL") or WebClient.BASE_URL)
    app = App(signing_secret=secret, client=client, process_before_response=True, token_verification_enabled=False)

    @app.command(ANY)
    def on_command(ack):
        ack()

    @app.action(ANY)
    def on_action(ack):
        ack()

    handler = SlackRequestHandler(app)

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        return handler(environ, start_response)

    return application


def main(argv: list[str]) -> None:
    port = int(argv[0])
    waitress.serve(make_wsgi(os.environ["SLACK_SIGNING_SECRET"]), host="127.0.0.1", port=port, threads=8,
                   ident="bare-bolt")


if __name__ == "__main__":
    main(sys.argv[1:])
