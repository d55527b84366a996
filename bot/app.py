"""The Bolt app factory. Importing this module does nothing; `create_app`
wires the listeners to a Runtime and returns the App."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import RandomJitter

from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack import register

# Methods that must not be sent twice blindly: after a reset connection or a
# 5xx the post may have arrived. Those are retried by the delivery table,
# which first looks for the post (its key is in the message metadata).
NOT_BLINDLY = ("chat.postMessage", "files.completeUploadExternal")


class _SafeConnectionRetry(ConnectionErrorRetryHandler):
    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return not request.url.endswith(NOT_BLINDLY) and super()._can_retry(
            state=state, request=request, response=response, error=error)


class _SafeServerErrorRetry(ServerErrorRetryHandler):
    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return not request.url.endswith(NOT_BLINDLY) and super()._can_retry(
            state=state, request=request, response=response, error=error)


def web_client(settings: Settings) -> WebClient:
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    # slack_sdk's own retry handlers, with backoff: 429 (never processed, so
    # any method, after Retry-After), and resets and 5xx for the methods
    # that are safe to repeat.
    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.3, jitter=RandomJitter())
    return WebClient(
        token=settings.slack_bot_token or None, base_url=base_url, timeout=10,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2),
                        _SafeConnectionRetry(max_retry_count=2, interval_calculator=backoff),
                        _SafeServerErrorRetry(max_retry_count=2, interval_calculator=backoff)],
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
