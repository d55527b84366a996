"""Queries that more than one command needs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Select, String, bindparam, cast, func, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, select

from bot.lookup import FuzzyIndex, normalise
from bot.people import Handle
from bot.store import versions
from bot.store.db import insert_or_nothing
from bot.store.models import CareTeamMember, Identity, Member, Patient
from bot.store.versions import PerDatabase


def team_patients(member) -> Select:
    """The patients of the care teams of `member` (an id, a bound
    parameter, or a column to correlate with)."""
    return select(CareTeamMember.patient_id).where(CareTeamMember.member_id == member)


# Built once: building a statement and its cache key costs about as much as
# running it (0.14 of 0.22 ms here). A member by a platform identity (a
# first contact, a mention).
_MEMBER_BY_IDENTITY = select(Member, Identity).join(Identity, Identity.member_id == Member.id).where(
    Identity.platform == bindparam("platform"), Identity.external_id == bindparam("external_id"),
).options(lazyload(Member.identities))
# The same for the person acting, on every request, with what nearly every
# command asks next, each a round trip of its own before: the versions of
# the cached tables (store.versions) and the patients of the member's care
# teams (for privacy.care_teams), as text that both databases aggregate alike.
_ACTING_MEMBER = _MEMBER_BY_IDENTITY.add_columns(versions.ALL_VERSIONS, team_patients(Member.id).with_only_columns(
    func.aggregate_strings(cast(CareTeamMember.patient_id, String), ",")).scalar_subquery())


@dataclass(frozen=True)
class Acting:
    member: Member
    care_teams: frozenset[int] | None  # the patients of their care teams; None: not read


def acting_member(session: Session, handle: Handle, now: datetime) -> Acting:
    """`get_or_create_member` for the person acting in a request, in the
    same single query as before, with the table versions kept for the
    transaction (`versions.remember`) and their care teams' patients."""
    found = session.execute(_ACTING_MEMBER, _identity_params(handle)).first()
    if found is None:
        return Acting(get_or_create_member(session, handle, now), None)
    member, identity, all_versions, teams = found
    versions.remember(session, all_versions)
    return Acting(_named(session, _with_identity(member, identity), handle),
                  frozenset(int(i) for i in teams.split(",")) if teams else frozenset())


def _identity_params(handle: Handle) -> dict[str, str]:
    return {"platform": handle.platform, "external_id": handle.external_id}


def get_or_create_member(session: Session, handle: Handle, now: datetime) -> Member:
    """The member behind a platform identity, created on first contact, in
    one query: the member comes back with just the identity acting now
    (enough for the actor and admin checks)."""
    params = _identity_params(handle)
    found = session.exec(_MEMBER_BY_IDENTITY, params=params).first()
    member = _with_identity(*found) if found else None
    if member is None:
        try:
            with session.begin_nested():
                member = Member(display_name=handle.label[:80], created_at=now)
                member.identities.append(Identity(platform=handle.platform, external_id=handle.external_id))
                session.add(member)
        except IntegrityError:  # created by a concurrent request a moment ago
            member = _with_identity(*session.exec(_MEMBER_BY_IDENTITY, params=params).one())
        return member
    return _named(session, member, handle)


def _named(session: Session, member: Member, handle: Handle) -> Member:
    """A member first seen without a name takes the platform's label."""
    if handle.label and not member.display_name:
        member.display_name = handle.label[:80]
        session.add(member)
    return member


def _with_identity(member: Member, identity: Identity) -> Member:
    set_committed_value(member, "identities", [identity])
    return member


def members_by_id(session: Session, ids: list[int]) -> list[Member]:
    """Mentioned members, in the order mentioned, each once."""
    found = members_keyed(session, ids)
    return [found[i] for i in dict.fromkeys(ids) if i in found]


def member_query(query: Select) -> Select:
    """A `select(Member)` that also brings each member's platform
    identities (what a mention is written with), for `members`: the
    relationship's own loading would read them in a second round trip.
    Build it once where it runs on every request (see _MEMBER_BY_IDENTITY)."""
    return query.outerjoin(Identity, Identity.member_id == Member.id).add_columns(Identity).options(
        lazyload(Member.identities))


def members(session: Session, query: Select, **params) -> list[Member]:
    """The members a `member_query` finds, in its order, each once, with
    their identities. Pairs of objects, not the ORM's joined loading: that
    spent a quarter of `/plan`'s CPU making its thirty owners unique. A
    member the session already held keeps the identities it has (the acting
    member: the one acting now, which the admin checks read), as the joined
    loading kept them."""
    found: dict[int, tuple[Member, list[Identity]]] = {}
    for member, identity in session.execute(query, params):
        held = found.get(member.id)
        if held is None:
            found[member.id] = held = (member, [])
        if identity is not None:
            held[1].append(identity)
    for member, identities in found.values():
        if "identities" not in inspect(member).dict:
            set_committed_value(member, "identities", identities)
    return [member for member, _ in found.values()]


# Built once, as _MEMBER_BY_IDENTITY: the people a listing names.
_MEMBERS_BY_ID = member_query(select(Member).where(Member.id.in_(bindparam("ids", expanding=True))))
_LINKED: dict[tuple[type, str], Select] = {}  # (link table, owner column) -> its member_query


def linked_members(session: Session, link: type, owner: str, owner_id: int) -> list[Member]:
    """The members a table linking owners to members (a patient's care
    team, a facility's staff, a task's owners, a note's readers, a group)
    links to one owner, in the order linked. Each link table's statement
    is built once (a race builds it twice, alike)."""
    query = _LINKED.get((link, owner))
    if query is None:
        query = _LINKED[(link, owner)] = member_query(
            select(Member).join(link, link.member_id == Member.id).where(getattr(link, owner) == bindparam("owner"))
            .order_by(link.id))
    return members(session, query, owner=owner_id)


def member_ids_by(session: Session, link: type, owner: str, owner_ids: list[int] | None, *where
                  ) -> dict[int, list[int]]:
    """From a table linking owners to members (a meeting's invitations, a
    facility's staff): each owner's `member_id`s in the order linked, for a
    whole list of owners in one query of plain values, not objects (the
    scheduler asks it every minute). Every owner asked has a list; with
    `owner_ids` None, every owner that has a link (kept per process, as
    every facility's staff for the tick)."""
    table = link.__table__
    found: dict[int, list[int]] = {i: [] for i in owner_ids or ()}
    if owner_ids is None or owner_ids:
        chosen = () if owner_ids is None else (table.c[owner].in_(owner_ids),)
        for owner_id, member_id in session.connection().execute(
                select(table.c[owner], table.c.member_id).where(*chosen, *where).order_by(table.c.id)):
            found.setdefault(owner_id, []).append(member_id)
    return found


def members_keyed(session: Session, ids) -> dict[int, Member]:
    """The members with these ids: those the session already holds (the
    acting member, most often) as they are, the rest in one query. A
    listing names the same few people many times."""
    found: dict[int, Member] = {}
    for member_id in set(ids):
        held = session.identity_map.get(session.identity_key(Member, member_id))
        if held is not None:
            found[member_id] = held
    missing = sorted(set(ids) - set(found))
    if missing:
        found.update((m.id, m) for m in members(session, _MEMBERS_BY_ID, ids=missing))
    return found


def _build_patient_index(session: Session, _key) -> FuzzyIndex[int]:
    # The items are the ids alone, not rows or names: at 100,000 patients
    # that is the difference between about 40 and 80 MB in every process.
    # Streamed: 100,000 rows held at once left the process 20 MB bigger for good.
    # (The option on the statement: on the connection it would stay for the
    # rest of the transaction, and PostgreSQL cannot open a cursor for a SAVEPOINT.)
    rows = session.connection().execute(
        select(Patient.id, Patient.name, Patient.kana).order_by(Patient.id).execution_options(yield_per=2000))
    return FuzzyIndex.of_pairs(((patient_id, (name, kana)) for patient_id, name, kana in rows),
                               ident=int, code_prefix="P")


_patient_indexes = PerDatabase(Patient, _build_patient_index)


def patient_index(session: Session) -> FuzzyIndex[int]:
    """The lookup index of every patient (by id; codes are `P-` and the
    id), built once per process and reused until a patient is added or
    renamed: normalising 200,000 names and readings must not happen on
    every command."""
    return _patient_indexes.get(session)


def load_patients(session: Session, ids: list[int]) -> list[Patient]:
    """The current rows for lookup results, in the same order."""
    return [session.get(Patient, patient_id) for patient_id in ids]


def active_patients_named(session: Session, name: str, kana: str) -> list[Patient]:
    """Active patients registered under the same name and reading."""
    found = load_patients(session, patient_index(session).exact(name))
    return [p for p in found if p.status == "active" and normalise(p.kana) == normalise(kana)]


def insert_patient(session: Session, patient: Patient) -> Patient:
    """Insert and give the short stable code (P-0007). The code comes from the
    row id, so two people adding patients at once never collide and a code
    is never reused."""
    patient.code = f"T{uuid.uuid4().hex[:12]}"
    session.add(patient)
    session.flush()
    patient.code = f"P-{patient.id:04d}"
    session.add(patient)
    session.flush()
    return patient


def care_team(session: Session, patient: Patient) -> list[Member]:
    return linked_members(session, CareTeamMember, "patient_id", patient.id)


def change_membership(session: Session, link: type[SQLModel], owner_field: str, owner_id: int, verb: str,
                      members: list[Member], **extra) -> list[Member]:
    """Add or remove members on a link table (care team, facility staff).
    Returns the members actually changed; adding someone already there, or
    removing someone absent, changes nothing."""
    changed = []
    for member in members:
        row = session.exec(select(link).where(getattr(link, owner_field) == owner_id,
                                              link.member_id == member.id)).first()
        if verb == "add" and row is None:
            session.add(link(**{owner_field: owner_id, "member_id": member.id, **extra}))
            changed.append(member)
        elif verb == "remove" and row is not None:
            session.delete(row)
            changed.append(member)
    session.flush()
    return changed


def insert_unless_there(session: Session, row: SQLModel, unique: tuple[str, ...],
                        earlier: Callable[[], Select]) -> SQLModel | None:
    """Insert `row`, or return the row the query `earlier()` finds when the
    unique index on the columns `unique` already holds its values (the same
    action delivered again, a colleague at the same moment). None if `row`
    was inserted; it is then in the session as if loaded. The insert is
    tried first: a new row is the common case, and the index answers for
    the rare repeat, where a read before every insert would cost each
    request a round trip (and `earlier` is built only then). One INSERT ...
    ON CONFLICT DO NOTHING, not the ORM's insert inside a savepoint: that
    was two more statements (round trips on PostgreSQL) and a flush."""
    session.flush()  # the caller's other changes first: their own errors are not this insert's
    model = type(row)
    statement = _insert_unless_there(model, unique, session.get_bind().dialect.name)
    # Every column as the object holds it, its Python-side defaults included
    # (a column with only a server-side default would be stored NULL: there
    # is none on these tables).
    values = {c: getattr(row, c) for c in _inserted_columns(model)}
    inserted = session.connection().execute(statement, {f"v_{c}": v for c, v in values.items()}).scalar()
    if inserted is None:
        found = session.exec(earlier()).one_or_none()
        if found is None:  # the row that was there is gone again: rare, and nothing was stored
            raise RuntimeError(f"{model.__tablename__}: refused as a repeat, yet no earlier row")
        return found
    versions.changed(session, model)  # plain SQL: a watched table's version is bumped only for a row stored
    row.id = inserted
    make_transient_to_detached(row)  # its values are what was stored: no read back, no second insert
    for column in values:  # a field left at its default was never set, and would be read back
        set_committed_value(row, column, values[column])
    session.add(row)
    return None


_INSERTS: dict[tuple[type, tuple[str, ...], str], Any] = {}  # built once per table, key and database


def _inserted_columns(model: type) -> list[str]:
    return [c.key for c in model.__table__.columns if not c.primary_key]


def _insert_unless_there(model: type, unique: tuple[str, ...], dialect: str):
    statement = _INSERTS.get((model, unique, dialect))
    if statement is None:
        table = model.__table__
        statement = _INSERTS[(model, unique, dialect)] = insert_or_nothing(table, dialect, list(unique)).values(
            {c: bindparam(f"v_{c}") for c in _inserted_columns(model)}).returning(table.c.id)
    return statement


def insert_once(session: Session, row: SQLModel) -> SQLModel | None:
    """Insert `row` unless one with its `request_key` exists; see `insert_unless_there`."""
    model = type(row)
    return insert_unless_there(session, row, ("request_key",),
                               lambda: select(model).where(model.request_key == row.request_key))
