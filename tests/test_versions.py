"""Each process caches the patient lookup index and learns from one
`tableversion` row that another process changed a name (issue 10). Two
runtimes on one database stand in for two `renkei serve` processes: their
caches are separate, their record is shared."""

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from bot.store.db import session_scope
from bot.store.models import CareTeamMember, Identity, Patient, TableVersion
from bot.store.queries import insert_patient, patient_index
from tests.conftest import make_bot, statements_run


def _version(engine) -> int:
    with session_scope(engine) as s:
        return s.exec(select(TableVersion.version).where(TableVersion.name == "patient")).one()


def _rename(engine, old: str, new: str, kana: str) -> None:
    with session_scope(engine) as s:
        patient = s.exec(select(Patient).where(Patient.name == old)).one()
        patient.name, patient.kana = new, kana


def test_a_name_changed_by_another_process_is_found_at_once(db_url, fake, clock):
    one, other = make_bot(db_url, fake, clock), make_bot(db_url, fake, clock)
    try:
        assert "山田 太郎" in one.sim.command("/patient", "show やまだ").text  # builds one's index
        before = _version(one.runtime.engine)
        _rename(other.runtime.engine, "山田 太郎", "山中 太郎", "ヤマナカ タロウ")
        assert _version(one.runtime.engine) == before + 1
        shown = one.sim.command("/patient", "show やまなか").text
        assert "山中 太郎" in shown, shown
        assert "見つかりません" in one.sim.command("/patient", "show やまだ たろう").text
    finally:
        for bot in (one, other):
            bot.runtime.background.shutdown(wait=True)
            bot.runtime.engine.dispose()


def test_a_change_the_index_does_not_read_bumps_nothing(bot):
    before = _version(bot.runtime.engine)
    with session_scope(bot.runtime.engine) as s:
        s.exec(select(Patient).where(Patient.name == "山田 太郎")).one().care_level = "要介護4"
    bot.sim.command("/liaison", "山田 体温37.8度")  # a note and an audit row: no patient renamed
    assert _version(bot.runtime.engine) == before


def test_an_index_built_inside_a_rolled_back_rename_is_not_kept(bot):
    engine = bot.runtime.engine
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        s.exec(select(Patient).where(Patient.name == "山田 太郎")).one().name = "幻 太郎"
        s.flush()
        assert patient_index(s).exact("幻 太郎")  # this transaction sees its own rename
        raise RuntimeError("rolled back")
    # The version went back with the rollback; a real rename by someone
    # else brings it to the same number again. The index must be rebuilt.
    _rename(engine, "髙橋 ハナ", "髙橋 花", "タカハシ ハナ")
    with session_scope(engine) as s:
        index = patient_index(s)
        assert index.exact("幻 太郎") == [] and index.exact("髙橋 花")


def test_a_rename_is_seen_inside_its_own_transaction_though_the_version_moves_at_commit(bot):
    engine = bot.runtime.engine
    with session_scope(engine) as s:
        assert patient_index(s).exact("山田 太郎")  # kept for the committed version
    before = _version(engine)
    with session_scope(engine) as s:
        s.exec(select(Patient).where(Patient.name == "山田 太郎")).one().name = "山中 太郎"
        s.flush()
        index = patient_index(s)
        assert index.exact("山中 太郎") and index.exact("山田 太郎") == []
    assert _version(engine) == before + 1
    with session_scope(engine) as s:
        assert patient_index(s).exact("山中 太郎")


def test_a_writer_holds_the_version_row_only_while_it_commits(bot):
    """Sixteen `/plan done` at once queued behind the first one's lock on
    the table's version row for the rest of its request (p99 157-169 ms in
    process on PostgreSQL; 65 ms since the bump moved to the commit)."""
    engine = bot.runtime.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole write transactions anyway")
    before = _version(engine)
    with session_scope(engine) as s:
        s.exec(select(Patient).where(Patient.name == "山田 太郎")).one().name = "山中 太郎"
        s.flush()
        with engine.connect() as other, other.begin():  # another writer of the same table, meanwhile
            other.execute(text("SET LOCAL lock_timeout = '500ms'"))
            other.execute(text("UPDATE tableversion SET version = version + 1 WHERE name = 'patient'"))
    assert _version(engine) == before + 2


def test_the_plan_overview_kept_by_one_process_follows_another_process_s_changes(db_url, fake, clock):
    """`/plan` is cached per process while the tasks and the completion log
    keep their versions; a completion, an undo or a new due date made by
    another process shows at once."""
    one, other = make_bot(db_url, fake, clock), make_bot(db_url, fake, clock)
    try:
        one.sim.command("/plan", "add F 市民公開講座を開催する due=12/1")
        shown = one.sim.command("/plan").text
        assert "F □□□□□□□□□□ 0/1" in shown and "14日以内の期限 1件" in shown and "12/1(火) F 市民公開講座" in shown
        assert one.sim.command("/plan").text == shown  # from the cache: nothing changed
        other.sim.command("/plan", "done 講座")
        shown = one.sim.command("/plan").text
        assert "F ■■■■■■■■■■ 1/1" in shown and "市民公開講座" not in shown
        other.sim.command("/plan", "undo 講座")
        other.sim.command("/plan", "edit 講座 due=11/1")
        shown = one.sim.command("/plan").text
        assert "F □□□□□□□□□□ 0/1" in shown and "期限切れ 1件" in shown and "11/1(日) F 市民公開講座" in shown, shown
    finally:
        for bot in (one, other):
            bot.runtime.background.shutdown(wait=True)
            bot.runtime.engine.dispose()


def test_a_cache_keyed_by_what_people_type_keeps_a_bounded_number_of_keys(bot):
    from bot.store.versions import PerDatabase

    built = []
    cache = PerDatabase(Patient, lambda _s, key: built.append(key) or key.upper(), keep=2)
    with session_scope(bot.runtime.engine) as s:
        assert [cache.get(s, k) for k in ("a", "b", "a", "c", "b", "a")] == ["A", "B", "A", "C", "B", "A"]
    assert built == ["a", "b", "c", "a"]  # "a" was the oldest built when "c" came: dropped, then built again


def test_a_value_built_at_a_later_version_is_not_replaced_by_a_slower_request_s(bot):
    """A request reads the versions when it starts. One that started before a
    rename and builds after a quicker request built at the new version must
    not put its older value back: the next request would rebuild again."""
    from bot.people import Handle
    from bot.store.queries import acting_member
    from bot.store.sqlite import READS_ONLY
    from bot.store.versions import PerDatabase

    built = []
    cache = PerDatabase(Patient, lambda _s, key: built.append(key) or f"{key}{len(built)}")
    engine = bot.runtime.engine
    slow = Session(engine, expire_on_commit=False)
    try:
        slow.connection(execution_options={READS_ONLY: True})  # SQLite: beside the writer, as a read may be
        acting_member(slow, Handle("slack", "U0DEMOCM1", ""), bot.clock())  # reads the versions now
        _rename(engine, "山田 太郎", "山中 太郎", "ヤマナカ タロウ")
        with session_scope(engine) as quick:
            assert cache.get(quick, "k") == "k1"  # built at the new version, kept
        assert cache.get(slow, "k") == "k2"  # its own read is older: built for it alone
    finally:
        slow.close()
    with session_scope(engine) as later:
        assert cache.get(later, "k") == "k1"  # the newer one was kept
    assert built == ["k", "k"]


def test_a_bulk_update_of_a_watched_table_bumps_its_version(bot):
    """「変わりなし」 confirms every figure from tonight on in one UPDATE: the
    vacancy board kept by each process must learn of it like of a flush."""
    from sqlalchemy import update

    from bot.store.models import VacancyFigure

    def version():
        with session_scope(bot.runtime.engine) as s:
            return s.exec(select(TableVersion.version).where(TableVersion.name == "vacancyfigure")).one()

    before = version()
    with session_scope(bot.runtime.engine) as s:
        s.exec(update(VacancyFigure).where(VacancyFigure.beds > 0).values(beds=VacancyFigure.beds))
    assert version() == before + 1


def test_the_acting_member_s_query_brings_the_versions_and_care_teams_a_request_asks(bot):
    """Through the real request path: the one query for the acting member
    also reads the tables' versions and the patients of their care teams,
    so finding a patient makes no read of its own for either; a patient
    another process adds is still found at once."""
    assert "山田 太郎" in bot.sim.command("/patient", "show やまだ").text  # the member exists, the index is built
    with statements_run(bot.runtime.engine) as statements:
        shown = bot.sim.command("/patient", "show やまだ").text
    assert "山田 太郎" in shown, shown
    own_reads = [s for s in statements if s.startswith(("SELECT tableversion.", "SELECT careteammember.patient_id"))]
    assert own_reads == [], own_reads
    assert any("FROM tableversion" in s and "JOIN identity" in s for s in statements), statements

    with session_scope(bot.runtime.engine) as s:  # as another process would: its commit bumps the version
        patient = insert_patient(s, Patient(name="山中 花江", kana="ヤマナカ ハナエ", created_at=bot.clock()))
        acting = s.exec(select(Identity.member_id).where(Identity.external_id == "U0DEMOCM1")).one()
        s.add(CareTeamMember(patient_id=patient.id, member_id=acting, added_at=bot.clock()))
    shown = bot.sim.command("/patient", "show やまなか").text
    assert "山中 花江" in shown, shown


def test_a_repeated_completion_bumps_no_version(bot):
    """`/plan done` twice on one task: the second stores nothing, so the
    plan's caches in every process stay as they are."""
    bot.sim.command("/plan", "add F 市民公開講座を開催する due=12/1")
    with session_scope(bot.runtime.engine) as s:
        before = s.exec(select(TableVersion.version).where(TableVersion.name == "plancompletion")).one()
    assert "完了として記録しました" in bot.sim.command("/plan", "done 講座").text
    assert "すでに" in bot.sim.command("/plan", "done 講座").text
    with session_scope(bot.runtime.engine) as s:
        after = s.exec(select(TableVersion.version).where(TableVersion.name == "plancompletion")).one()
    assert after == before + 1


def test_versions_read_with_the_acting_member_outlive_a_savepoint(bot):
    """Kept for the transaction: a savepoint's release (which SQLAlchemy also
    reports as a commit) keeps them, the transaction's end does not."""
    from bot.people import Handle
    from bot.store.models import Patient as P
    from bot.store.queries import acting_member
    from bot.store.versions import version

    with session_scope(bot.runtime.engine) as s:
        acting_member(s, Handle("slack", "U0DEMOCM1", ""), bot.clock())
        with s.begin_nested():
            pass
        with statements_run(bot.runtime.engine) as statements:
            assert version(s, P) is not None
        assert not [x for x in statements if "tableversion" in x], statements
    with session_scope(bot.runtime.engine) as s:
        with statements_run(bot.runtime.engine) as statements:
            version(s, P)
    assert [x for x in statements if "tableversion" in x], "a new transaction reads the version again"
