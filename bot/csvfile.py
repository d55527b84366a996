"""Reading the CSV files municipalities actually send: UTF-8 (with or
without BOM) or Shift_JIS/CP932 from Excel. charset-normalizer picks the
encoding when the bytes are not valid UTF-8."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from charset_normalizer import from_bytes

JAPANESE_ENCODINGS = ["utf_8", "cp932", "shift_jis", "euc_jp"]


class CsvError(ValueError):
    pass


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name)."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=JAPANESE_ENCODINGS).best()
    if best is None:
        raise CsvError("文字コードを判定できませんでした（UTF-8 か Shift_JIS で保存してください）")
    # Excel's "Shift_JIS" is really CP932 (it has ①, ㈱, 髙 and friends).
    encoding = "cp932" if best.encoding in ("shift_jis", "cp932") else best.encoding
    return data.decode(encoding, errors="strict"), encoding


def read_rows(path: Path, aliases: dict[str, str]) -> tuple[list[tuple[int, dict[str, str]]], str]:
    """Rows as (line number, {canonical column: value}); header names are
    mapped through `aliases` (Japanese or English)."""
    text, encoding = decode(Path(path).read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvError("空のファイルです") from None
    columns = [aliases.get(h.strip().lower(), h.strip().lower()) for h in header]
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        row = {col: (values[i].strip() if i < len(values) else "") for i, col in enumerate(columns)}
        if len(values) > len(columns):
            row["__extra__"] = "1"
        rows.append((reader.line_num, row))
    return rows, encoding


@dataclass
class ImportResult:
    encoding: str = ""
    stored: list[str] = field(default_factory=list)
    already: list[tuple[int, str]] = field(default_factory=list)  # (line, existing code)
    problems: list[tuple[int, list]] = field(default_factory=list)  # (line, [(code, values)])
