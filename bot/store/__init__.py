"""The record: SQLModel tables, sessions, and the queries commands share."""

# Every process that writes must bump the versions of cached tables, so the
# listener is registered whenever anything in the store is imported.
from bot.store import versions  # noqa: E402,F401
