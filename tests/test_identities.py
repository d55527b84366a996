"""People are neutral: one identity per platform, places and audit actors
platform-qualified, mentions resolved before a command sees them, and the
migration keeps every existing row (and the audit chain) intact."""

from datetime import datetime, timezone

from sqlalchemy import text
from sqlmodel import select

from bot.privacy import GENESIS, chain_hash, verify_chain
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import AuditEvent, CareTeamMember, Identity, Member, Note, Patient
from tests.conftest import _fresh_postgres, member_of

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc)


def _old_audit_rows(n: int) -> list[dict]:
    rows, prev = [], GENESIS
    for i in range(n):
        event = AuditEvent(at=T0, actor="U0OLD", action="note.read", patient_code="P-0001", target=f"note:{i}",
                           allowed=True, detail="", prev_hash=prev, hash="")
        event.hash = chain_hash(event)
        rows.append(event.model_dump(exclude={"id"}))
        prev = event.hash
    return rows


def test_migration_keeps_members_channels_notes_and_the_audit_chain(tmp_path):
    from tests.conftest import PG_URL

    url = PG_URL
    if url:
        _fresh_postgres(url)
    engine = make_engine(url or f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO member (slack_user_id, display_name, profession, organisation, created_at) "
                          "VALUES ('U0OLD', '古参', '', '', :t)"), {"t": T0})
        conn.execute(text("INSERT INTO patient (code, name, kana, area, care_level, consent, channel_id, status, "
                          "created_at) VALUES ('P-0001', '山田 太郎', 'ヤマダ タロウ', '', '', 'yes', 'C0TEAM', "
                          "'active', :t)"), {"t": T0})
        conn.execute(text("INSERT INTO note (patient_id, form_id, body_json, author_id, created_at, request_key, "
                          "channel_id, message_ts) VALUES (1, 'daily', '{}', 1, :t, 'k1', 'C0TEAM', '1.000001')"),
                     {"t": T0})
        for row in _old_audit_rows(3):
            conn.execute(AuditEvent.__table__.insert().values(**row))
    upgrade(engine)
    with session_scope(engine) as s:
        member = member_of(s, "U0OLD")
        assert member.id == 1 and member.display_name == "古参" and member.qualified_id == "slack:U0OLD"
        patient = s.exec(select(Patient)).one()
        note = s.exec(select(Note)).one()
        assert patient.channel == "slack:C0TEAM"
        assert (note.channel, note.message_id) == ("slack:C0TEAM", "1.000001")
        # a row written after the migration chains on to the old ones
        last = s.exec(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        event = AuditEvent(at=T0, actor="teams:29:" + "x" * 200, action="note.read", patient_code="P-0001",
                           target="note:1", allowed=True, detail="", prev_hash=last.hash, hash="")
        event.hash = chain_hash(event)
        s.add(event)
    with session_scope(engine) as s:
        assert verify_chain(s) == (4, None)
        long_id = "19:" + "a" * 250 + "@thread.tacv2"
        s.add(Identity(platform="teams", external_id=long_id, member_id=1))
    with session_scope(engine) as s:
        assert {(i.platform, i.external_id) for i in s.get(Member, 1).identities} == {
            ("slack", "U0OLD"), ("teams", long_id)}
    engine.dispose()


def test_a_mention_reaches_the_command_as_a_member_created_on_first_mention(bot):
    r = bot.sim.command("/patient", "team 山田 add <@U0NEWNURSE|mori>")
    assert "<@U0NEWNURSE>" in r.text
    with bot.session() as s:
        member = member_of(s, "U0NEWNURSE")
        assert member.display_name == "mori"
        patient = s.exec(select(Patient).where(Patient.code == "P-0001")).one()
        assert s.exec(select(CareTeamMember).where(CareTeamMember.patient_id == patient.id,
                                                   CareTeamMember.member_id == member.id)).one()
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "team.add")).one()
        assert (event.actor, event.target) == ("slack:U0DEMOCM1", "slack:U0NEWNURSE")


def test_a_typed_mention_in_a_note_stays_literal_and_pings_nobody(bot):
    bot.sim.command("/liaison", "山田 <@U0DEMONS1|suzuki> さんへ 申し送り")
    with bot.session() as s:
        assert '"@suzuki さんへ 申し送り"' in s.exec(select(Note)).one().body_json


def test_admins_are_named_platform_qualified_and_bare_ids_mean_slack(bot):
    from bot.settings import load_settings

    settings = load_settings(admins_csv="U1, slack:U2 ,teams:29:abc")
    assert settings.admins == {"slack:U1", "slack:U2", "teams:29:abc"}


def test_the_acting_member_keeps_the_identity_they_act_with_when_a_listing_names_them(bot):
    """Admin checks read the acting member's identities: only the one they
    act with now. A care team that names them later in the same request
    brings all their identities for the others, not for them."""
    from bot.people import Handle
    from bot.store.queries import acting_member, care_team

    with session_scope(bot.runtime.engine) as s:
        member_id = s.exec(select(Identity.member_id).where(Identity.external_id == "U0DEMOCM1")).one()
        s.add(Identity(platform="teams", external_id="29:cm1", member_id=member_id))
    with session_scope(bot.runtime.engine) as s:
        acting = acting_member(s, Handle("slack", "U0DEMOCM1", ""), bot.clock())
        patient = s.exec(select(Patient).where(Patient.name == "山田 太郎")).one()
        team = care_team(s, patient)
        assert acting.member in team
        assert [(i.platform, i.external_id) for i in acting.member.identities] == [("slack", "U0DEMOCM1")]
        others = [m for m in team if m is not acting.member]
        assert others and all(m.identities for m in others)
