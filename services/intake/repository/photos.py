"""Photos' SQL: one function per query. The bytes are read only by ``photo_data``; every
other query leaves the ``data`` column alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.intake.domain.photos import PhotoKind
from shared.db import Conn
from shared.dto import from_row


@dataclass(frozen=True)
class PhotoRow:
    """A photo's metadata (the bytes are fetched separately, and only to be served)."""

    id: UUID
    case_id: UUID
    kind: PhotoKind
    content_type: str
    size_bytes: int
    sha256: str
    width: int
    height: int
    uploaded_by: str  # the uploader's subject
    uploaded_at: datetime
    uploaded_by_department: str | None = None  # the uploader's department, if a department

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> PhotoRow:
        return from_row(cls, r, kind=PhotoKind)


_COLUMNS = (
    "id, case_id, kind, content_type, size_bytes, sha256, width, height,"
    " uploaded_by, uploaded_at, uploaded_by_department"
)


async def find_same(conn: Conn, case_id: UUID, kind: PhotoKind, sha256: str) -> PhotoRow | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM photos WHERE case_id = $1 AND kind = $2 AND sha256 = $3",
        case_id,
        kind.value,
        sha256,
    )
    return PhotoRow.from_record(row) if row else None


async def count_photos(conn: Conn, case_id: UUID, kind: PhotoKind) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM photos WHERE case_id = $1 AND kind = $2", case_id, kind.value
    )


async def insert_photo(conn: Conn, photo: PhotoRow, data: bytes) -> None:
    await conn.execute(
        f"INSERT INTO photos ({_COLUMNS}, data)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        photo.id,
        photo.case_id,
        photo.kind.value,
        photo.content_type,
        photo.size_bytes,
        photo.sha256,
        photo.width,
        photo.height,
        photo.uploaded_by,
        photo.uploaded_at,
        photo.uploaded_by_department,
        data,
    )


async def list_photos(conn: Conn, case_id: UUID, kind: PhotoKind | None) -> list[PhotoRow]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM photos WHERE case_id = $1 AND ($2::text IS NULL OR kind = $2)"
        " ORDER BY kind = 'after', uploaded_at, id",  # before-photos first
        case_id,
        kind.value if kind else None,
    )
    return [PhotoRow.from_record(r) for r in rows]


@dataclass(frozen=True)
class PhotoScope:
    """What decides who may see a photo: its case's area and the departments dispatched it."""

    area_path: str
    assigned_departments: list[str]


async def get_photo(conn: Conn, photo_id: UUID) -> tuple[PhotoRow, PhotoScope] | None:
    """The photo's metadata and its case's scope (who may see it follows the case)."""
    r = await conn.fetchrow(
        f"SELECT {', '.join('p.' + c.strip() for c in _COLUMNS.split(','))},"
        " c.area_path, c.assigned_departments"
        " FROM photos p JOIN cases c ON c.id = p.case_id WHERE p.id = $1",
        photo_id,
    )
    if r is None:
        return None
    return PhotoRow.from_record(r), from_row(PhotoScope, r, assigned_departments=list)


async def assigned_departments(conn: Conn, case_id: UUID) -> list[str]:
    """The departments the case was dispatched to (kept from dispatch's case.dispatched)."""
    found = await conn.fetchval("SELECT assigned_departments FROM cases WHERE id = $1", case_id)
    return list(found or ())


async def photo_data(conn: Conn, photo_id: UUID) -> bytes:
    return await conn.fetchval("SELECT data FROM photos WHERE id = $1", photo_id)
