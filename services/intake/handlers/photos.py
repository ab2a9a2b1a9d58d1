"""Photo use cases: upload (one transaction under the case's row lock, with its
case.photo_added event in the outbox), list, read."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import structlog

from services.intake.handlers import PRODUCER, case_facts, find_case
from services.intake.domain import photos as domain
from services.intake.domain import images
from services.intake.repository import photos as repository
from services.intake.domain.photos import PhotoKind
from services.intake.repository.photos import PhotoRow
from services.intake.repository import CaseRow
from shared import outbox
from shared.auth import Principal, Role
from shared.errors import NotFound
from shared.contract import CasePhotoAdded, new_event
from shared.db import Conn

log = structlog.get_logger()


@dataclass(frozen=True)
class UploadPhoto:
    case_id: UUID
    kind: PhotoKind
    data: bytes
    declared_type: str | None  # the multipart part's Content-Type, as the client sent it


def _department(who: Principal) -> str | None:
    return who.department_id if who.role is Role.DEPARTMENT else None


async def _require_access(
    conn: Conn,
    who: Principal,
    case_id: UUID,
    area_path: str,
    assigned: list[str] | None = None,
) -> None:
    """Grid workers and area roles by jurisdiction; department staff by dispatch (派单)."""
    if who.role is Role.DEPARTMENT:
        if assigned is None:
            assigned = await repository.assigned_departments(conn, case_id)
        domain.require_assigned(who.department_id, assigned)
    else:
        who.require_area(area_path)


async def _case(conn: Conn, who: Principal, case_id: UUID, *, lock: bool = False) -> CaseRow:
    case = await find_case(conn, case_id, lock=lock)
    await _require_access(conn, who, case.id, case.area_path)
    return case


def _check_state(who: Principal, kind: PhotoKind, case: CaseRow) -> None:
    if who.role is Role.DEPARTMENT:
        domain.check_department_state(case.status)
    else:
        domain.check_kind_allowed(kind, case.status)


async def upload_photo(
    pool: asyncpg.Pool,
    who: Principal,
    cmd: UploadPhoto,
    *,
    max_bytes: int,
    max_pixels: int = domain.MAX_PIXELS,
) -> tuple[PhotoRow, bool]:
    """Keep a photo of the case. Returns (photo, created): the same picture sent again for
    the same case and kind returns the photo kept the first time (and announces nothing)."""
    if who.role is Role.DEPARTMENT:
        domain.check_department_kind(cmd.kind)
    domain.check_size(len(cmd.data), max_bytes)
    # What is kept is the picture without its metadata (EXIF GPS, XMP...): the bytes stored,
    # hashed and served. None: a structure we cannot follow, refused below if Pillow took it.
    clean = images.strip_metadata(cmd.data)
    data = cmd.data if clean is None else clean
    sha256 = hashlib.sha256(data).hexdigest()
    async with pool.acquire() as conn:  # cheap answers first: no decoding for them
        case = await _case(conn, who, cmd.case_id)
        same = await repository.find_same(conn, case.id, cmd.kind, sha256)
    if same is not None:  # a retry: answered as the first time, whatever happened since
        return same, False
    _check_state(who, cmd.kind, case)
    info = await asyncio.to_thread(images.inspect, data, max_pixels)
    domain.check_declared_type(cmd.declared_type, info.content_type)
    if clean is None:
        if info.content_type != "image/heic":
            raise images.refuse()
        data = await asyncio.to_thread(images.to_jpeg, data)  # HEIC: re-encoded, no metadata
        info = await asyncio.to_thread(images.inspect, data, max_pixels)
        sha256 = hashlib.sha256(data).hexdigest()
    async with pool.acquire() as conn, conn.transaction():
        # The case's row lock serialises uploads to one case: the count cannot be raced
        # past the limit, and the state is the one the photo is kept under.
        case = await _case(conn, who, cmd.case_id, lock=True)
        same = await repository.find_same(conn, case.id, cmd.kind, sha256)
        if same is not None:
            return same, False
        _check_state(who, cmd.kind, case)
        domain.check_room(cmd.kind, await repository.count_photos(conn, case.id, cmd.kind))
        photo = PhotoRow(
            id=uuid4(),
            case_id=case.id,
            kind=cmd.kind,
            content_type=info.content_type,
            size_bytes=len(data),
            sha256=sha256,
            width=info.width,
            height=info.height,
            uploaded_by=who.subject,
            uploaded_at=datetime.now(UTC),
            uploaded_by_department=_department(who),
        )
        await repository.insert_photo(conn, photo, data)
        await outbox.add(
            conn,
            new_event(
                CasePhotoAdded(
                    **case_facts(case),
                    photo_id=photo.id,
                    kind=photo.kind,
                    department_id=photo.uploaded_by_department,
                ),
                case_id=case.id,
                producer=PRODUCER,
                occurred_at=photo.uploaded_at,
                actor=who.actor,
            ),
        )
    log.info(
        "photo_uploaded",
        case_id=str(case.id),
        photo_id=str(photo.id),
        kind=photo.kind.value,
        content_type=photo.content_type,
        size_bytes=photo.size_bytes,
        sha256=sha256,
        department_id=photo.uploaded_by_department,
    )
    return photo, True


async def list_photos(
    pool: asyncpg.Pool, who: Principal, case_id: UUID, kind: PhotoKind | None
) -> list[PhotoRow]:
    async with pool.acquire() as conn:
        case = await _case(conn, who, case_id)
        return await repository.list_photos(conn, case.id, kind)


async def read_photo(
    pool: asyncpg.Pool, who: Principal, photo_id: UUID, if_none_match: str | None
) -> tuple[PhotoRow, bytes | None]:
    """The photo and its bytes for whoever may read its case; bytes None when the caller's
    copy is current (If-None-Match matches), so they are not even read from the database."""
    async with pool.acquire() as conn:
        found = await repository.get_photo(conn, photo_id)
        if found is None:
            raise NotFound(
                f"照片 {photo_id} 不存在", f"photo {photo_id} not found", code="photo_not_found"
            )
        photo, scope = found
        await _require_access(conn, who, photo.case_id, scope.area_path, scope.assigned_departments)
        if domain.etag_matches(if_none_match, photo.sha256):
            return photo, None
        return photo, await repository.photo_data(conn, photo_id)
