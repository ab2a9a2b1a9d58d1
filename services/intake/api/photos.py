"""HTTP routes for case photos: upload (multipart), list, and the bytes themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, File, Header, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from services.intake.domain import photos as domain
from services.intake.handlers import photos as handlers
from services.intake.domain.photos import PhotoKind
from services.intake.repository.photos import PhotoRow
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.dto import fill
from services.intake.api.common import settings
from shared.service import Pool

router = APIRouter(tags=["photos"])

# The same people who act on a case take its photos; supervisors also read them. Department
# staff (职能部门) add after-photos of their result to, and read the photos of, the cases
# their department was dispatched (the handlers check which).
Uploader = Annotated[Principal, Depends(allow(Role.GRID_WORKER, *AREA_ROLES, Role.DEPARTMENT))]
Reader = Annotated[
    Principal, Depends(allow(Role.GRID_WORKER, *AREA_ROLES, Role.SUPERVISOR, Role.DEPARTMENT))
]


class PhotoOut(BaseModel):
    id: UUID
    case_id: UUID
    kind: PhotoKind = Field(description="before 整改前 / after 整改后")
    content_type: str
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the bytes, hex; also the ETag of `url`")
    width: int = Field(description="pixels, as displayed (EXIF orientation applied)")
    height: int
    uploaded_by: str = Field(description="the uploader's subject (user id)")
    uploaded_by_department: str | None = Field(
        description="the uploader's department (职能部门) when a department uploaded it, else null"
    )
    uploaded_at: datetime
    url: str

    @classmethod
    def of(cls, p: PhotoRow) -> PhotoOut:
        return fill(cls, p, url=f"/photos/{p.id}")


@router.post(
    "/cases/{case_id}/photos",
    status_code=201,
    response_model=PhotoOut,
    summary="Upload a photo of the case (整改前 at report, 整改后 at resolution)",
    description="Grid workers and the community: before-photos until closure, after-photos "
    "once resolved or closed. An assigned department: after-photos of its result "
    "while the case is dispatched, signed for, in rework or resolved. Every new "
    "photo is announced as `case.photo_added`.",
    responses={
        200: {"description": "the same picture was already kept: that photo"},
        403: {
            "description": "out of scope, a department not assigned to the case, "
            "or a department sending a before-photo"
        },
        409: {"description": "the case's state or the 9-photo limit refuses it"},
        413: {
            "description": "photo_too_large: more bytes than PHOTO_MAX_BYTES or more "
            "pixels than PHOTO_MAX_PIXELS"
        },
        415: {"description": "not_an_image / unsupported_photo_type"},
    },
)
async def upload_photo(
    case_id: UUID,
    kind: Annotated[PhotoKind, Query(description="before 整改前 / after 整改后")],
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
    db: Pool,
    who: Uploader,
    request: Request,
    response: Response,
) -> PhotoOut:
    conf = settings(request)
    limit = conf.photo_max_bytes
    data = await file.read(limit + 1)  # one byte past the limit is enough to refuse
    photo, created = await handlers.upload_photo(
        db,
        who,
        handlers.UploadPhoto(
            case_id=case_id, kind=kind, data=data, declared_type=file.content_type
        ),
        max_bytes=limit,
        max_pixels=conf.photo_max_pixels,
    )
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/photos/{photo.id}"
    return PhotoOut.of(photo)


@router.get(
    "/cases/{case_id}/photos",
    response_model=list[PhotoOut],
    summary="The case's photos (metadata; the bytes are at each `url`)",
)
async def list_photos(
    case_id: UUID, db: Pool, who: Reader, kind: PhotoKind | None = None
) -> list[PhotoOut]:
    return [PhotoOut.of(p) for p in await handlers.list_photos(db, who, case_id, kind)]


@router.get(
    "/photos/{photo_id}",
    summary="The photo's bytes (ETag = its SHA-256; If-None-Match → 304)",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}},
        304: {"description": "the caller's copy is current"},
    },
)
async def get_photo(
    photo_id: UUID,
    db: Pool,
    who: Reader,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=2000)] = None,
) -> Response:
    photo, data = await handlers.read_photo(db, who, photo_id, if_none_match)
    # Bytes never change under an id, but who may see them can: the caller's private cache
    # revalidates each time (a cheap 304 once permission is checked again).
    headers = {"ETag": domain.etag(photo.sha256), "Cache-Control": "private, no-cache"}
    if data is None:
        return Response(status_code=304, headers=headers)
    headers |= {
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{photo.id}.{domain.EXTENSIONS[photo.content_type]}"',
    }
    return Response(content=data, media_type=photo.content_type, headers=headers)
