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
from dataclasses import dataclass

from PIL import ExifTags, Image, UnidentifiedImageError

from services.intake.photos.domain import (
    MAX_PIXELS,
    NotAnImage,
    PhotoTooLarge,
    UnsupportedPhotoType,
    check_pixels,
)

try:  # optional: iPhone photos
    from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

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
    width: int   # as displayed (EXIF orientation applied)
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
    if head[4:8] == b"ftyp" and (head[8:12] in _HEIC_BRANDS
                                 or any(b in head[16:32] for b in _HEIC_BRANDS)):
        return "image/heic"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    return None


def _refuse() -> NotAnImage:
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
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            IndexError, TypeError) as exc:
        raise _refuse() from exc
    if fmt not in _FORMATS:
        raise _refuse()
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return ImageInfo(content_type=_FORMATS[fmt], width=width, height=height)

