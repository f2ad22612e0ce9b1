"""Decision status for every verifier (issue 19, item 2): the county's signed status list, and the in-county
lookup of a decision's status (变更、撤回、撤销、注销).

In the county the verifier asks the database (``decision_status_lookup``: the signing request of the
document, and for 变更 its successor). Elsewhere it has the county's **status list**: every issued decision
that is not in force as issued, signed with the ledger's log key, dated, with a ``next_update``
(``verifier._status`` has the format and the checks). The list is

- published at ``GET /pki/status`` (file ``HOME/pki/status.note``) and put into ``yizhang verify-bundle``;
- signed again at once after every status change (``publish_quietly``, from the signing workflow), in every
  periodic round of the service when its content differs from the records or it is older than
  ``status_list_republish_s`` (``ensure_current``, from the checkpoint loop), before ``GET /pki/status``
  serves one past that age, and by ``yizhang ledger status-list`` (cron, a deployment without ``serve``).

Publishing holds a file lock (one writer across workers: a list read from the database before another
worker's change cannot overwrite that worker's newer one) and writes atomically (readers see the old list or
the new one, never half).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Engine

from core.db import is_sqlite
from core.errors import Unavailable
from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Select

    from api._services import Services
    from ledger import NoteSigner


if TYPE_CHECKING:  # the verifier is imported when first used (it loads pyHanko)
    from ledger import DecisionStatus
    from verifier import BindingFacts, StatusAnswer, StatusList

log = logging.getLogger("yizhang.api")
SHANGHAI = ZoneInfo("Asia/Shanghai")
STATUS_ROUTE = "/pki/status"
CHANGED_EVENT = "DECISION_STATUS_CHANGED"


def status_list_path(settings: Settings) -> Path:
    return settings.home_dir / "pki" / "status.note"


def status_list_url(settings: Settings) -> str:
    """Where verifiers fetch a fresh list: this server as it is reached now (the list is signed again every
    day, so it may follow ``YIZHANG_PUBLIC_BASE_URL``; nothing old names it)."""
    return settings.public_base_url.rstrip("/") + STATUS_ROUTE


# -- the county's records ------------------------------------------------------------------------------------


def decision_status_lookup(engine: Engine) -> Callable[[BindingFacts], StatusAnswer | None]:
    """``Evidence.status_lookup`` from this deployment's database: the status of the signing request that
    issued the document (by the binding's request key ``api:<id>``, else by its document number), with the
    successor of a changed decision. ``None``: no such request here (not a document this service issued).
    One indexed query; a second one only for a changed decision."""
    from api._storage import SigningRequestRow
    from ledger import DecisionStatus
    from verifier import StatusAnswer, read_decision_status

    # Built once, executed with a bound value: building a statement per lookup (and its cache key) cost
    # more than the query itself (bench/bench_lookups.py).
    cols = (SigningRequestRow.request_id, SigningRequestRow.decision_status)
    by_request = select(*cols).where(SigningRequestRow.request_id == bindparam("key"))
    by_number = select(*cols).where(SigningRequestRow.document_number == bindparam("key")).limit(1)

    # One row by key (and, for a changed decision, its successor, written in the same transaction as the
    # change): no common snapshot needed, so on PostgreSQL no BEGIN and no ROLLBACK round trips
    # (core.db.reading's rule); about 0.6 ms of a ~1.2 ms lookup on a 2-core machine.
    sqlite = is_sqlite(engine)

    def connect() -> Connection:
        conn = engine.connect()
        return conn if sqlite else conn.execution_options(isolation_level="AUTOCOMMIT")

    def lookup(binding: BindingFacts) -> StatusAnswer | None:
        key = binding.idempotency_key or ""
        if key.startswith("api:"):
            stmt, value = by_request, key[4:]
        elif binding.document_number:
            stmt, value = by_number, binding.document_number
        else:
            return None
        with connect() as conn:
            row = conn.execute(stmt, {"key": value}).first()
            if row is None:
                return None
            state = read_decision_status(row.decision_status)  # as stored (upper case); VALID: None
            successor = _successor(conn, row.request_id) if state is DecisionStatus.CHANGED else None
        return StatusAnswer(state, successor)

    return lookup


def _successor(conn: Connection, request_id: str) -> str | None:
    """The successor named by the latest 变更 of a request (in its supervision-feed event)."""
    payload = conn.execute(_successor_stmt(), {"request_id": request_id}).scalar_one_or_none()
    if payload is None:
        return None
    value = json.loads(payload).get("successor")
    return str(value) if value else None


@cache
def _successor_stmt() -> Select[str]:
    from api._storage import OutboxRow

    return (
        select(OutboxRow.payload)
        .where(OutboxRow.request_id == bindparam("request_id"), OutboxRow.event == CHANGED_EVENT)
        .order_by(OutboxRow.event_id.desc())
        .limit(1)
    )


def status_entries(conn: Connection) -> list[tuple[str, DecisionStatus | None, str | None]]:
    """Every issued decision not in force as issued: (document number, status, successor)."""
    from api._storage import OutboxRow, SigningRequestRow
    from verifier import read_decision_status

    rows = conn.execute(
        select(
            SigningRequestRow.request_id, SigningRequestRow.document_number, SigningRequestRow.decision_status
        )
        .where(SigningRequestRow.decision_status != "VALID", SigningRequestRow.document_number.is_not(None))
        .order_by(SigningRequestRow.document_number)
    ).all()
    changed = [r.request_id for r in rows if str(r.decision_status).upper() == "CHANGED"]
    successors: dict[str, str | None] = {}
    if changed:
        for request_id, payload in conn.execute(
            select(OutboxRow.request_id, OutboxRow.payload)
            .where(OutboxRow.request_id.in_(changed), OutboxRow.event == CHANGED_EVENT)
            .order_by(OutboxRow.event_id)
        ):
            value = json.loads(payload).get("successor")
            successors[request_id] = str(value) if value else None  # the latest change wins
    return [
        (str(r.document_number), read_decision_status(r.decision_status), successors.get(r.request_id))
        for r in rows
    ]


def county_name(settings: Settings) -> str:
    """The county as its root certificate names it (O), else the configured code."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        cert = x509.load_der_x509_certificate((settings.home_dir / "pki" / "root.crt").read_bytes())
        names = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if names:
            return str(names[0].value)
    except (OSError, ValueError):
        pass
    return settings.county_code or "county"


# -- publishing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedStatusList:
    path: Path
    this_update: datetime
    next_update: datetime
    entries: int
    changed: bool  # False: the published list was current, nothing was signed


def publish_status_list(
    settings: Settings,
    engine: Engine,
    signer: NoteSigner,
    *,
    now: datetime | None = None,
    force: bool = True,
) -> PublishedStatusList:
    """Sign the status list from the records and publish it; with ``force=False`` only when the published
    one is missing, unreadable, older than ``status_list_republish_s`` or says something else than the
    records. ``signer``: the ledger's ``NoteSigner`` (the log key)."""
    from ledger import sign_note
    from verifier import status_list_body

    if signer is None:
        raise Unavailable(
            "LEDGER_NO_SIGNER", "no log key to sign the status list", "无日志密钥，无法签署状态清单"
        )
    now = (now or datetime.now(UTC)).astimezone(SHANGHAI).replace(microsecond=0)
    path = status_list_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _publish_lock(path), engine.connect() as conn:
        entries = status_entries(conn)
        current = _published(path)
        if not force and current is not None and _still_good(current, entries, now, settings):
            return PublishedStatusList(path, current.this_update, current.next_update, len(entries), False)
        this_update = now
        if current is not None and current.this_update >= this_update:  # dates only move forward
            this_update = current.this_update + timedelta(seconds=1)
        next_update = this_update + timedelta(seconds=settings.status_list_validity_s)
        body = status_list_body(
            county_name(settings), this_update, next_update, status_list_url(settings), entries
        )
        note = sign_note(body, signer)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(note, encoding="utf-8")
        os.replace(tmp, path)
    log.info("status list published", extra={"code": "STATUS_LIST_PUBLISHED"})
    return PublishedStatusList(path, this_update, next_update, len(entries), True)


def _published(path: Path) -> StatusList | None:
    """The list this server published (its own file: parsed, not verified)."""
    from verifier import StatusList

    try:
        text = path.read_text(encoding="utf-8")
        return StatusList.parse_body(text.partition("\n\n")[0] + "\n")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _still_good(
    current: StatusList,
    entries: list[tuple[str, DecisionStatus | None, str | None]],
    now: datetime,
    settings: Settings,
) -> bool:
    fresh = now - current.this_update < timedelta(seconds=settings.status_list_republish_s)
    same = dict(current.entries) == {n: (s, succ) for n, s, succ in entries}
    return fresh and same


@contextmanager
def _publish_lock(path: Path) -> Iterator[None]:
    with open(path.with_name(".status.lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _signer_of(services: Services) -> NoteSigner | None:
    ledger = services.ledger
    return ledger.signer if ledger is not None else None


def ensure_current(services: Services, now: datetime | None = None) -> PublishedStatusList | None:
    """The periodic round: publish when the list is missing, old or out of date with the records. ``None``
    when this service cannot sign (no ledger or log key yet)."""
    signer = _signer_of(services)
    if signer is None:
        return None
    return publish_status_list(services.settings, services.engine, signer, now=now, force=False)


def publish_quietly(services: Services) -> None:
    """After a status change (and in the periodic round): sign the new list now. Best effort: the change is
    committed, and the next round (or ``GET /pki/status``) publishes it if this fails."""
    try:
        ensure_current(services)
    except Exception:  # noqa: BLE001 - never fails the change or the checkpoint round; logged, retried
        log.warning("status list not published; will retry", exc_info=True)


def current_for_serving(services: Services) -> bytes:
    """The published list for ``GET /pki/status``, signed again first when it is due (missing, or older
    than the republishing interval) and the log key is at hand; else what was published."""
    from core.errors import NotFound

    if due_for_serving(services.settings):
        publish_quietly(services)
    try:
        return status_list_path(services.settings).read_bytes()
    except OSError:
        raise NotFound(
            "NOT_PUBLISHED", "the status list is not published yet", "决定状态清单尚未发布"
        ) from None


def due_for_serving(settings: Settings, now: datetime | None = None) -> bool:
    """True when the published list is missing or older than the republishing interval (checked on the
    public route, so a service whose loop stalled never serves a list near its ``next_update``)."""
    current = _published(status_list_path(settings))
    if current is None:
        return True
    at = now or datetime.now(UTC)
    return at - current.this_update >= timedelta(seconds=settings.status_list_republish_s)
