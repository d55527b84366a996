"""The `renkei` command: console, audit export/verify, patient import."""

import csv
import os
import subprocess
import sys

from sqlalchemy import text

from bot.cli import main
from tests.conftest import ROOT


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RENKEI_"))}
    env.update({"RENKEI_CONFIG": str(ROOT / "config"), **extra})
    return env


def test_run_without_credentials_is_the_demo_console(tmp_path):
    script = "/patient list\n/liaison やまだ 本日訪問、食欲あり\n/liaison 山田 list\n/liaison 小林 発熱\n"
    out = subprocess.run([sys.executable, "-m", "bot.cli", "run"], input=script, capture_output=True,
                         text=True, cwd=tmp_path, env=_env(tmp_path), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "P-0001 山田 太郎" in out.stdout
    assert "「日常連絡」を登録しました" in out.stdout
    assert "本日訪問、食欲あり" in out.stdout
    assert "ケアチームに入っていない方は表示されません" in out.stdout
    assert "Traceback" not in out.stderr


def test_audit_export_and_verify(bot, tmp_path, monkeypatch, capsys):
    bot.sim.command("/liaison", "山田 連絡")
    bot.sim.command("/liaison", "小林 連絡")  # refused
    monkeypatch.setenv("RENKEI_DATABASE_URL", str(bot.runtime.engine.url.render_as_string(hide_password=False)))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    out_file = tmp_path / "audit.csv"
    assert main(["audit", "export", "--since", "2026-11-01", "--out", str(out_file)]) == 0
    rows = list(csv.DictReader(out_file.open(encoding="utf-8")))
    assert [(r["action"], r["patient_code"], r["allowed"]) for r in rows] == [
        ("note.write", "P-0001", "yes"), ("patient.lookup", "P-0003", "no")]
    assert main(["audit", "export", "--since", "2026-12-01", "--out", str(out_file)]) == 0
    assert len(list(csv.DictReader(out_file.open(encoding="utf-8")))) == 0
    assert main(["audit", "verify"]) == 0


def test_audit_rows_cannot_be_changed(bot):
    bot.sim.command("/liaison", "山田 連絡")
    import pytest
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError):
        with bot.session() as s:
            s.exec(text("UPDATE auditevent SET actor = 'someone else'"))
    with pytest.raises(DBAPIError):
        with bot.session() as s:
            s.exec(text("DELETE FROM auditevent"))


def test_import_patients_utf8_and_cp932_with_a_bad_row(bot, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RENKEI_DATABASE_URL", str(bot.runtime.engine.url.render_as_string(hide_password=False)))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    content = "氏名,ふりがな,地区,介護度,同意,チーム\n" \
              "木村 髙子,きむら たかこ,東地区,要介護２,はい,U0DEMOCM1\n" \
              "斎藤 ①,さいとう,西地区,要介護9,はい,\n" \
              "吉田 実,よしだ みのる,西地区,要支援1,no,U0DEMONS1 U0DEMOCM1\n"
    for encoding, stored in (("cp932", "2件を登録"), ("utf-8-sig", "0件を登録、2件は登録済み")):
        path = tmp_path / f"patients-{encoding}.csv"
        path.write_bytes(content.encode(encoding))
        assert main(["import", "patients", str(path)]) == 1  # one bad row
        out = capsys.readouterr().out
        assert stored in out and "3行目: 介護度は 要支援1〜2・要介護1〜5" in out, out
        assert "bad_care" not in out  # the same Japanese words the forms use, never a code
    r = bot.sim.command("/patient", "list all", user="U0DEMOADM")
    listing = r.json()["text"]
    assert listing.count("木村 髙子") == 1 and "吉田 実" in listing and "斎藤" not in listing


def test_manifest_declares_every_command_escaped_and_interactivity():
    import json

    from bot.commands import COMMANDS

    manifest = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))
    declared = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(declared) == set(COMMANDS)
    assert all(c["should_escape"] is True and c["url"].endswith("/slack/events") for c in declared.values())
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert "commands" in manifest["oauth_config"]["scopes"]["bot"]


def test_import_of_an_empty_file_says_so(bot, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RENKEI_DATABASE_URL", str(bot.runtime.engine.url.render_as_string(hide_password=False)))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["import", "patients", str(empty)]) == 2
    assert "空のファイル" in capsys.readouterr().err


def test_demo_reset_starts_the_console_demo_afresh_and_never_touches_renkei_db(tmp_path):
    env = _env(tmp_path)
    run = lambda *a, script="": subprocess.run([sys.executable, "-m", "bot.cli", *a], input=script,  # noqa: E731
                                               capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert run("run", script="/patient add 森 一 もり はじめ\n").returncode == 0
    (tmp_path / "renkei.db").write_bytes(b"the team's real database")
    out = run("demo", "--reset")
    assert out.returncode == 0 and "renkei-demo.db" in out.stdout, out.stderr
    assert (tmp_path / "renkei.db").read_bytes() == b"the team's real database"
    listed = run("run", script="/patient list\n:help\n").stdout
    assert "森 一" not in listed and "P-0001 山田 太郎" in listed
    assert "U0DEMONS1　鈴木 看護師（訪問看護師）" in listed and "U0DEMOADM　渡辺 市職員（市職員）・管理者" in listed
