"""Image inspection (an adapter over Pillow): are these bytes really a photo we keep, and
how large is it as a person sees it?

Only the formats we keep are handed to Pillow's decoders (a smaller attack surface than
letting it try all forty); other common image types are recognised by their magic numbers
so the refusal can say what to do. HEIC (iPhone's default) is kept when ``pillow-heif`` is
installed, and refused with advice otherwise. CPU-bound: call it from a worker thread.
"""

from __future__ import annotations

import io
import math
import warnings
import zlib
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from services.intake.domain.photos import (
    MAX_PIXELS,
    NotAnImage,
    PhotoTooLarge,
    UnsupportedPhotoType,
    check_pixels,
)

try:  # optional: iPhone photos
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:
    HEIF_SUPPORTED = False

_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
if HEIF_SUPPORTED:
    _FORMATS["HEIF"] = "image/heic"

# Pillow warns of a possible bomb above its limit (set to ours below); we refuse those anyway.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_HEIC_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs")
# Orientations 5–8 turn the picture a quarter: the viewer sees width and height swapped.
_QUARTER_TURNS = {5, 6, 7, 8}


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int  # as displayed (EXIF orientation applied)
    height: int


def _sniff_other(data: bytes) -> str | None:
    """The type of a common image we do not keep, from its first bytes."""
    head = data[:32]
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[4:8] == b"ftyp" and (
        head[8:12] in _HEIC_BRANDS or any(b in head[16:32] for b in _HEIC_BRANDS)
    ):
        return "image/heic"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    return None


def refuse() -> NotAnImage:
    return NotAnImage(
        "文件不是有效的图片（无法识别或已损坏）：请上传 JPEG、PNG 或 WebP 照片",
        "the file is not a valid image (unrecognised or corrupt); upload a JPEG, PNG or WebP photo",
    )


def inspect(data: bytes, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Identify, bound and fully decode ``data``; raise NotAnImage, UnsupportedPhotoType or
    PhotoTooLarge (more than ``max_pixels`` declared in the header) if it is not a photo we
    keep."""
    # Pillow's own guard agrees with ours (it warns above the limit and refuses at twice it,
    # in Image.open): never a bigger allowance than the service's setting.
    Image.MAX_IMAGE_PIXELS = max_pixels
    other = _sniff_other(data)
    if other is not None and (other != "image/heic" or not HEIF_SUPPORTED):
        hint = "（iPhone 可在“设置—相机—格式”中选“兼容性最佳”）" if other == "image/heic" else ""
        raise UnsupportedPhotoType(
            f"不支持的图片格式 {other}：请上传 JPEG、PNG 或 WebP 照片{hint}",
            f"unsupported image type {other}: upload a JPEG, PNG or WebP photo",
        )
    formats = list(_FORMATS)
    try:
        with Image.open(io.BytesIO(data), formats=formats) as img:
            fmt, (width, height) = img.format, img.size
            check_pixels(width, height, max_pixels)  # before a single pixel is decoded
            img.verify()  # structure and checksums (PNG CRCs); the decoder is not run yet
        with Image.open(io.BytesIO(data), formats=formats) as img:
            if fmt == "JPEG":  # decode at 1/8 scale: every byte read, an 8th of the memory
                img.draft("RGB", (math.ceil(width / 8), math.ceil(height / 8)))
            img.load()  # truncated or corrupt data fails here
            orientation = img.getexif().get(ExifTags.Base.Orientation)
    except Image.DecompressionBombError as exc:  # Pillow's own guard, at ~179 megapixels
        raise PhotoTooLarge(
            f"照片像素过多，上限 {max_pixels / 1_000_000:g} 百万像素",
            f"photo has too many pixels; the limit is {max_pixels / 1_000_000:g} megapixels",
        ) from exc
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        TypeError,
    ) as exc:
        raise refuse() from exc
    if fmt not in _FORMATS:
        raise refuse()
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return ImageInfo(content_type=_FORMATS[fmt], width=width, height=height)


# --- metadata: what is kept is the picture, never where or by what it was taken ------------
#
# Photos are kept as uploaded (no re-encoding: no quality lost, the same bytes give the same
# sha256), but only the parts a decoder needs survive: EXIF (GPS position, camera serial,
# time), XMP, IPTC, comments and text chunks are dropped. The orientation is the one EXIF
# tag kept, alone in a minimal EXIF block, so the picture shows as it was taken. Whatever
# cannot be parsed here is refused once Pillow has accepted it (see the handler): metadata
# never slips through a structure we did not understand. The case's position is the case's.

_JPEG_APPS_KEPT = {0xE0: b"JFIF\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
_PNG_KEPT = {
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    b"tRNS",
    b"cHRM",
    b"gAMA",
    b"iCCP",
    b"sBIT",
    b"sRGB",
    b"cICP",
    b"bKGD",
    b"pHYs",
    b"acTL",
    b"fcTL",
    b"fdAT",
}
_WEBP_KEPT = {b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


def _orientation_exif(exif: bytes | None) -> bytes | None:
    """A minimal EXIF block (TIFF, no ``Exif\\0\\0`` header) holding only the orientation of
    ``exif``, or None when the picture needs no turning."""
    if not exif:
        return None
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        orientation = parsed.get(ExifTags.Base.Orientation)
    except Exception:  # unreadable EXIF: Pillow would not turn the picture either
        return None
    if not isinstance(orientation, int) or not 2 <= orientation <= 8:
        return None
    kept = Image.Exif()
    kept[ExifTags.Base.Orientation] = orientation
    return kept.tobytes()[6:]


def _strip_jpeg(data: bytes) -> bytes | None:
    n, pos = len(data), 2
    out: list[bytes] = []
    exif: bytes | None = None
    while True:
        if pos + 2 > n or data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI: anything after it (MPO's other pictures, trailers) goes
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no payload
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > n:
            return None
        payload = data[pos + 4 : end]
        if marker == 0xE1:
            if exif is None and payload.startswith(b"Exif\x00\x00"):
                exif = payload
        elif 0xE0 <= marker <= 0xEF:
            if payload.startswith(_JPEG_APPS_KEPT.get(marker, b"\x00never")):
                out.append(data[pos:end])
        elif 0xC0 <= marker <= 0xCF or 0xDA <= marker <= 0xDF:  # tables, frames, scans
            out.append(data[pos:end])
        pos = end  # COM, JPGn and anything else: dropped
        if marker == 0xDA:  # entropy-coded data: up to the next marker that is not RSTn
            scan = pos
            while True:
                scan = data.find(b"\xff", scan)
                if scan < 0 or scan + 1 >= n:
                    return None
                following = data[scan + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    scan += 2
                elif following == 0xFF:
                    scan += 1
                else:
                    break
            out.append(data[pos:scan])
            pos = scan
    head = 1 if out and out[0][1] == 0xE0 else 0  # after JFIF's APP0, if there is one
    kept = _orientation_exif(exif)
    if kept is not None:
        app1 = b"Exif\x00\x00" + kept
        out.insert(head, b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1)
    return b"\xff\xd8" + b"".join(out) + b"\xff\xd9"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _strip_png(data: bytes) -> bytes | None:
    n, pos = len(data), 8
    out: list[bytes] = []
    exif: bytes | None = None
    while True:
        if pos + 12 > n:
            return None
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, end = data[pos + 4 : pos + 8], pos + 12 + length
        if end > n:
            return None
        if kind == b"eXIf":
            exif = exif or data[pos + 8 : end - 4]
        elif kind in _PNG_KEPT:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    if not out or out[0][4:8] != b"IHDR":
        return None
    kept = _orientation_exif(exif)
    if kept is not None:  # right after IHDR: before any IDAT, as the PNG spec wants
        out.insert(1, _png_chunk(b"eXIf", kept))
    return data[:8] + b"".join(out)


def _strip_webp(data: bytes) -> bytes | None:
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        return None
    pos = 12
    out: list[bytes] = []
    exif: bytes | None = None
    while pos < end:
        if pos + 8 > end:
            return None
        kind, length = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        stop = pos + 8 + length + (length & 1)
        if pos + 8 + length > end:
            return None
        if kind == b"EXIF":
            exif = exif or data[pos + 8 : pos + 8 + length]
        elif kind in _WEBP_KEPT:
            out.append(data[pos:stop])
        pos = stop
    kept = _orientation_exif(exif)
    if out and out[0][:4] == b"VP8X" and len(out[0]) >= 9:
        flags = (out[0][8] & ~0x0C) | (0x08 if kept is not None else 0)  # EXIF, XMP flags
        out[0] = out[0][:8] + bytes([flags]) + out[0][9:]
        if kept is not None:
            out.append(b"EXIF" + len(kept).to_bytes(4, "little") + kept + b"\x00" * (len(kept) & 1))
    body = b"WEBP" + b"".join(out)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def strip_metadata(data: bytes) -> bytes | None:
    """``data`` without its metadata (but its orientation), as JPEG, PNG or WebP; None when
    it is none of these or its structure cannot be followed. Cheap: nothing is decoded."""
    if data[:3] == b"\xff\xd8\xff":
        return _strip_jpeg(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _strip_png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _strip_webp(data)
    return None


def to_jpeg(data: bytes) -> bytes:
    """A HEIC photo (whose metadata we cannot drop in place) as a JPEG without metadata, the
    orientation applied to the pixels. Call it only once ``inspect`` accepted ``data``."""
    with Image.open(io.BytesIO(data), formats=["HEIF"]) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
    buf = io.BytesIO()
    upright.save(buf, "JPEG", quality=90)
    return buf.getvalue()
