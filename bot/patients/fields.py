"""Rules for a patient's registered fields, shared by `/patient` and
`renkei import patients`: care levels, consent values, outcomes, limits."""

from __future__ import annotations

import re

from bot.lookup import fold
from bot.replies import Problem

# How care ends. A hospital stay is not one of them: it is `/patient admit`.
OUTCOMES = ("在宅看取り", "病院死亡", "施設入所", "転居", "その他")
# Words that say the person died but not where: asked, never guessed.
DEATH_WORDS = ("死亡", "死去", "逝去", "永眠", "亡くなった", "なくなった", "亡くなりました", "なくなりました", "ご逝去")
ADMISSION_WORDS = ("入院", "入院中", "にゅういん")
CONSENT = {"yes": "yes", "y": "yes", "はい": "yes", "あり": "yes", "有": "yes", "済": "yes", "同意": "yes",
           "no": "no", "n": "no", "いいえ": "no", "なし": "no", "無": "no", "撤回": "no", "拒否": "no",
           "unknown": "unknown", "未確認": "unknown", "不明": "unknown"}
_CARE = re.compile(r"(要?支援|要?介護)\s*([1-5])")
NAME_LIMIT = 60


def normalise_care(value: str) -> str | None:
    value = fold(value).strip()
    if value in {"", "なし", "非該当"}:
        return ""
    if value in {"事業対象者", "申請中"}:
        return value
    m = _CARE.fullmatch(value)
    if not m:
        return None
    kind = "要支援" if "支援" in m[1] else "要介護"
    if kind == "要支援" and m[2] not in "12":
        return None
    return f"{kind}{m[2]}"


def validate_new(name: str, kana: str, area: str, care: str, consent: str,
                 unknown_options: list[str] = ()) -> list[Problem]:
    """Field-level problems, each (code, values) for the template to word
    (empty list = fine)."""
    problems: list[Problem] = []
    if not name.strip():
        problems.append(("no_name", {}))
    if len(name) > NAME_LIMIT or len(kana) > NAME_LIMIT:
        problems.append(("name_too_long", {}))
    if len(area) > 40:
        problems.append(("area_too_long", {}))
    if normalise_care(care) is None:
        problems.append(("bad_care", {}))
    if consent.strip().lower() not in CONSENT:
        problems.append(("bad_consent", {}))
    if unknown_options:
        problems.append(("unknown_option", {"options": list(unknown_options)}))
    return problems
