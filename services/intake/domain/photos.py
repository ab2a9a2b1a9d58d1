"""Photo rules: which kinds a case takes when, which image types, how large, how many.

整改前 (before) photos show what the grid worker found; 整改后 (after) photos show the
fix, taken when the department reports it resolved (核查) or when the grid worker fixed it
on the spot (随手做). No I/O, no clock: the image adapter and the handlers pass facts in.

Who: grid workers and the area roles by jurisdiction; department staff (职能部门) only on a
case their department was dispatched (派单), and only after-photos of their own work.
"""

from __future__ import annotations

from collections.abc import Collection

from shared.contract import PhotoKind
from shared.errors import Conflict, DomainError, Forbidden, Invalid
from shared.lifecycle import STATUS_ZH, CaseStatus


KIND_ZH = {PhotoKind.BEFORE: "整改前", PhotoKind.AFTER: "整改后"}

# One message in a WeChat group holds at most nine pictures; districts took that as the rule.
MAX_PHOTOS_PER_KIND = 9
# A decompression-bomb guard, checked from the header before any pixel is decoded. A phone
# photo under the byte limit is 12–24 megapixels; 40 leaves room and caps decoding memory.
# The default of the service's PHOTO_MAX_PIXELS setting.
MAX_PIXELS = 40_000_000

# The real type (as the image adapter reads it) -> file extension when served.
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}
# What clients send for the same thing.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/heif": "image/heic",
}
# A declared type that says nothing: the real type decides.
_UNDECLARED = {"", "application/octet-stream", "binary/octet-stream"}


class PhotoTooLarge(DomainError):
    status_code = 413
    code = "photo_too_large"


class NotAnImage(DomainError):
    status_code = 415
    code = "not_an_image"


class UnsupportedPhotoType(DomainError):
    """An image, but not one we keep (GIF, BMP, TIFF, HEIC without a decoder...)."""

    status_code = 415
    code = "unsupported_photo_type"


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def check_size(size: int, limit: int) -> None:
    if size == 0:
        raise Invalid("上传的照片文件为空", "the uploaded photo is empty", code="empty_photo")
    if size > limit:
        raise PhotoTooLarge(
            f"照片过大：上限 {_mib(limit)}，请压缩后重新上传",
            f"photo too large: the limit is {_mib(limit)}; compress it and upload again",
        )


def check_pixels(width: int, height: int, limit: int = MAX_PIXELS) -> None:
    if width * height > limit:
        raise PhotoTooLarge(
            f"照片像素过多（{width}×{height}），上限 {limit / 1_000_000:g} 百万像素，"
            "请缩小后重新上传",
            f"photo has too many pixels ({width}x{height}); the limit is "
            f"{limit / 1_000_000:g} megapixels; scale it down and upload again",
        )


def normalise_type(content_type: str | None) -> str:
    """``Image/JPG; charset=x`` -> ``image/jpeg``."""
    bare = (content_type or "").split(";")[0].strip().lower()
    return _ALIASES.get(bare, bare)


def check_declared_type(declared: str | None, actual: str) -> None:
    """The type the client declared must be the type the bytes really are (when it declares
    one): a PNG sent as JPEG is a client bug or a disguise either way."""
    if actual not in EXTENSIONS:
        raise UnsupportedPhotoType(
            f"不支持的图片格式 {actual}：请上传 JPEG、PNG 或 WebP 照片",
            f"unsupported image type {actual}: upload a JPEG, PNG or WebP photo",
        )
    said = normalise_type(declared)
    if said not in _UNDECLARED and said != actual:
        raise NotAnImage(
            f"文件声明的类型 {said} 与实际内容 {actual} 不符",
            f"the declared type {said} does not match the content ({actual})",
        )


def check_kind_allowed(kind: PhotoKind, status: CaseStatus) -> None:
    """Before-photos until the case is closed; after-photos once it is resolved or closed."""
    if status is CaseStatus.TO_VERIFY:  # the loop (and its events) starts at verification
        raise Conflict(
            "群众上报待核实：核实受理后再上传照片",
            "a resident's report takes photos once it is verified and accepted",
            code="invalid_state",
        )
    if kind is PhotoKind.BEFORE and status is CaseStatus.CLOSED:
        raise Conflict(
            "案件已结案，不能再上传整改前照片",
            "the case is closed: before-photos can no longer be added",
            code="invalid_state",
        )
    if kind is PhotoKind.AFTER and status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        raise Conflict(
            f"案件当前状态为“{STATUS_ZH[status]}”，办结或现场处置后才能上传整改后照片",
            f"a case in state '{status}' takes after-photos only once it is resolved or closed",
            code="invalid_state",
        )


# While a department holds the case or has just reported it resolved (办结待核查): its result.
# Not before dispatch (nothing to show yet) and not once the community closed it (核查结案).
DEPARTMENT_AFTER_STATUSES = frozenset(
    {
        CaseStatus.DISPATCHED,
        CaseStatus.SIGNED_FOR,
        CaseStatus.REWORK,
        CaseStatus.RESOLVED,
    }
)


def require_assigned(department_id: str | None, assigned: Collection[str]) -> None:
    """Department staff act on the photos of a case their department was dispatched."""
    if department_id is None or department_id not in assigned:
        raise Forbidden(
            f"本部门（{department_id or '无'}）未承办此案件，不能查看或上传其照片",
            f"your department ({department_id or 'none'}) is not assigned to this case: "
            "it may not see or add its photos",
            code="not_assigned",
        )


def check_department_kind(kind: PhotoKind) -> None:
    """Departments show their result; what was found (整改前) is the reporter's to show.
    A rule of the role, not of the case's state: 403, whatever the case's state."""
    if kind is PhotoKind.BEFORE:
        raise Forbidden(
            "职能部门只能上传整改后照片，整改前照片由网格员或社区上传",
            "departments upload after-photos only; before-photos come from the grid worker "
            "or the community",
            code="before_photos_not_for_departments",
        )


def check_department_state(status: CaseStatus) -> None:
    if status not in DEPARTMENT_AFTER_STATUSES:
        raise Conflict(
            f"案件当前状态为“{STATUS_ZH[status]}”，职能部门只能在派单后、结案前上传整改后照片",
            f"a case in state '{status}' takes no department after-photos: only between "
            "dispatch and closure",
            code="invalid_state",
        )


def check_room(kind: PhotoKind, existing: int, limit: int = MAX_PHOTOS_PER_KIND) -> None:
    if existing >= limit:
        raise Conflict(
            f"每件案件最多上传 {limit} 张{KIND_ZH[kind]}照片",
            f"a case holds at most {limit} {kind} photos",
            code="too_many_photos",
        )


def etag(sha256: str) -> str:
    return f'"{sha256}"'


def etag_matches(if_none_match: str | None, sha256: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison against a list of tags, or ``*``."""
    if not if_none_match:
        return False
    for raw in if_none_match.split(","):
        tag = raw.strip()
        if tag == "*":
            return True
        if tag.removeprefix("W/").strip('"') == sha256:
            return True
    return False
