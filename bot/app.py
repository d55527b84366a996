"""The Bolt app factory. Importing this module does nothing; `create_app`
wires the listeners to a Runtime and returns the App."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack import register


def web_client(settings: Settings) -> WebClient:
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    # slack_sdk's own retry handlers: connection resets and 429 Retry-After.
    return WebClient(
        token=settings.slack_bot_token or None, base_url=base_url, timeout=10,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)],
    )


def create_app(settings: Settings, runtime: Runtime | None = None) -> App:
    runtime = runtime or Runtime.build(settings)
    app = App(
        client=web_client(settings),
        signing_secret=settings.slack_signing_secret,
        # Answer within the request: a command's reply is the ack body itself,
        # saving Bolt's 10 ms ack polling and a response_url round trip.
        process_before_response=True,
        # No network call while building the app; `renkei serve` checks the token.
        token_verification_enabled=False,
    )
    register(app, runtime)
    return app
