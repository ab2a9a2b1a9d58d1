"""SQL of the cases that come from outside the grid worker's rounds: 12345 hotline tickets
and residents' own reports (群众上报). One function per query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.intake.repository.cases import _CASE_READ, in_areas
from shared.db import Conn


@dataclass(frozen=True)
class ResidentSender:
    """Who sent a resident's report, as the rate limit counts him (hashes only)."""

    client_key: str
    device_key: str | None = None
    email_key: str | None = None
    contact: str | None = None  # masked

    def keys(self) -> list[tuple[str, str]]:
        """(column, key) pairs the sender is counted under."""
        pairs = [("client_key", self.client_key)]
        if self.device_key:
            pairs.append(("device_key", self.device_key))
        if self.email_key:
            pairs.append(("email_key", self.email_key))
        return pairs


async def claim_hotline_ticket(
    conn: Conn,
    ticket_no: str,
    request_hash: str,
    case_id: UUID,
    *,
    caller: str | None,
    caller_contact: str | None,
    received_at: datetime,
    imported_by: str,
    at: datetime,
) -> tuple[str, UUID] | None:
    """Claim the ticket for a new case; if imported before, (its hash, its case id)."""
    claimed = await conn.fetchval(
        "INSERT INTO hotline_tickets (ticket_no, case_id, request_hash, caller, caller_contact,"
        " received_at, imported_by, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (ticket_no) DO NOTHING RETURNING true",
        ticket_no,
        case_id,
        request_hash,
        caller,
        caller_contact,
        received_at,
        imported_by,
        at,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        "SELECT request_hash, case_id FROM hotline_tickets WHERE ticket_no = $1", ticket_no
    )
    assert row is not None  # the INSERT above found it taken
    return row["request_hash"], row["case_id"]


async def hotline_ticket(conn: Conn, case_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT ticket_no, caller, caller_contact, received_at FROM hotline_tickets"
        " WHERE case_id = $1",
        case_id,
    )


async def sender_times(conn: Conn, column: str, key: str, since: datetime) -> list[datetime]:
    """When the sender (by ``column``) reported since ``since``, oldest first; serialised
    per key so that concurrent reports cannot both slip under the limit."""
    assert column in ("client_key", "device_key", "email_key")
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('resident:' || $1))", key)
    rows = await conn.fetch(
        f"SELECT received_at FROM resident_reports WHERE {column} = $1 AND received_at > $2"
        " ORDER BY received_at",
        key,
        since,
    )
    return [r["received_at"] for r in rows]


async def insert_resident_report(
    conn: Conn, case_id: UUID, receipt: str, sender: ResidentSender, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO resident_reports (case_id, receipt, client_key, device_key, email_key,"
        " contact, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        case_id,
        receipt,
        sender.client_key,
        sender.device_key,
        sender.email_key,
        sender.contact,
        at,
    )


async def receipt_of(conn: Conn, case_id: UUID) -> str | None:
    return await conn.fetchval("SELECT receipt FROM resident_reports WHERE case_id = $1", case_id)


async def case_of_receipt(conn: Conn, receipt: str) -> UUID | None:
    return await conn.fetchval("SELECT case_id FROM resident_reports WHERE receipt = $1", receipt)


async def decide(
    conn: Conn,
    case_id: UUID,
    *,
    state: str,
    by: str,
    by_name: str,
    at: datetime,
    reason: str | None = None,
    note: str | None = None,
    duplicate_of: UUID | None = None,
) -> None:
    await conn.execute(
        "UPDATE resident_reports SET state = $2, reason = $3, note = $4, duplicate_of = $5,"
        " decided_by = $6, decided_by_name = $7, decided_at = $8 WHERE case_id = $1",
        case_id,
        state,
        reason,
        note,
        duplicate_of,
        by,
        by_name,
        at,
    )


_REPORT_COLUMNS = (
    "r.state, r.contact, r.received_at, r.reason, r.note, r.decided_by_name, r.decided_at,"
    " (SELECT d.case_no FROM cases d WHERE d.id = r.duplicate_of) AS duplicate_case_no"
)


async def resident_reports(
    conn: Conn, *, roots: list[str], state: str | None, limit: int, offset: int
) -> list[asyncpg.Record]:
    """Residents' reports in any of ``roots`` (whole path segments), oldest waiting first."""
    columns = ", ".join(f"c.{c.strip()}" for c in _CASE_READ.split(","))
    return await conn.fetch(
        f"SELECT {columns}, {_REPORT_COLUMNS} FROM resident_reports r"
        " JOIN cases c ON c.id = r.case_id"
        f" WHERE {in_areas('c.area_path', '$1')} AND ($2::text IS NULL OR r.state = $2)"
        " ORDER BY r.received_at, c.case_no LIMIT $3 OFFSET $4",
        roots,
        state,
        limit,
        offset,
    )


async def resident_report(conn: Conn, case_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_REPORT_COLUMNS} FROM resident_reports r WHERE r.case_id = $1", case_id
    )


async def set_category(conn: Conn, case_id: UUID, category: str) -> None:
    """The category the grid worker found on site (a resident may pick the wrong one)."""
    await conn.execute("UPDATE cases SET category = $2 WHERE id = $1", case_id, category)
