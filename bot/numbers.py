"""Ids and small numbers read from text: a button's value, a form's
metadata, what a person typed. `str.isdigit()` is no test for either: it
takes `²`, `①` and `٣`, which int() refuses or reads as something nobody
typed, and any length, which int() refuses past 4,300 digits and the
database past its integer. Every id and every small count read from text
goes through one of these (commands reach them as `args.row_id` and so on)."""

from __future__ import annotations

import re
from typing import Any

from bot.lookup import fold

MAX_ROW_ID = 2_147_483_647  # ids are INTEGER on PostgreSQL (2**31 - 1)
_ROW_ID = re.compile(r"[0-9]{1,10}")


def row_id(value: Any) -> int | None:
    """The id of a row named by a button's value, a form's metadata, a CSV
    column or a `#12` the bot wrote: ASCII digits (or a JSON integer), 1 to
    MAX_ROW_ID. None for anything else: a stale or forged value names no row."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if _ROW_ID.fullmatch(text) else None
    return value if isinstance(value, int) and 1 <= value <= MAX_ROW_ID else None


def hash_id(word: str) -> int | None:
    """`#12` (a choice button's text, or typed `＃１２`): the id, 0 when the
    digits can name no row (answered "not found"); None when the word is not
    `#` and digits (a name to search for)."""
    folded = fold(word)
    if not (folded[:1] == "#" and folded[1:].isdigit()):
        return None
    return row_id(folded[1:]) or 0


TOO_BIG = 10 ** 9  # more than any count, number of beds or index this bot takes
_WHOLE = re.compile(r"-?[0-9]+")


def whole_number(text: str) -> int | None:
    """A whole number typed (full-width digits too, a minus sign allowed):
    None if it is not one. One of more than nine digits reads as TOO_BIG
    (or its negative), so the caller's range check refuses it in its own
    words, and int() never sees 4,300 digits."""
    folded = fold(text).strip()
    if not _WHOLE.fullmatch(folded):
        return None
    digits = folded.lstrip("-").lstrip("0")
    number = TOO_BIG if len(digits) > 9 else int(digits or "0")
    return -number if folded.startswith("-") else number
