"""Photo rules and the image adapter: no database, no broker."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from services.intake.domain import photos as domain
from services.intake.domain import images
from services.intake.domain.photos import (
    NotAnImage,
    PhotoKind,
    PhotoTooLarge,
    UnsupportedPhotoType,
)
from shared.errors import Conflict, Forbidden, Invalid
from shared.lifecycle import CaseStatus

MiB = 1024 * 1024


def picture(fmt: str = "JPEG", size: tuple[int, int] = (40, 30), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (180, 40, 40)).save(buf, fmt, **save)
    return buf.getvalue()


# --- size ---------------------------------------------------------------------------------


def test_size_limit_is_inclusive_and_says_the_limit():
    domain.check_size(5 * MiB, 5 * MiB)
    with pytest.raises(PhotoTooLarge) as err:
        domain.check_size(5 * MiB + 1, 5 * MiB)
    assert err.value.status_code == 413 and err.value.code == "photo_too_large"
    assert "5 MiB" in err.value.zh and "5 MiB" in err.value.en


def test_an_empty_file_is_invalid():
    with pytest.raises(Invalid) as err:
        domain.check_size(0, 5 * MiB)
    assert err.value.status_code == 422 and err.value.code == "empty_photo"


def test_pixel_limit_guards_decoding():
    domain.check_pixels(6000, 4000)  # a 24-megapixel phone photo
    with pytest.raises(PhotoTooLarge):
        domain.check_pixels(10_000, 10_000)


# --- type ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "declared",
    [
        "image/jpeg",
        "IMAGE/JPEG",
        "image/jpg",
        "image/pjpeg",
        "image/jpeg; charset=binary",
        None,
        "",
        "application/octet-stream",
    ],
)
def test_declared_type_agreeing_or_silent_is_accepted(declared):
    domain.check_declared_type(declared, "image/jpeg")


@pytest.mark.parametrize("declared", ["image/png", "text/plain", "application/pdf"])
def test_declared_type_disagreeing_with_the_bytes_is_refused(declared):
    with pytest.raises(NotAnImage) as err:
        domain.check_declared_type(declared, "image/jpeg")
    assert err.value.status_code == 415 and err.value.code == "not_an_image"
    assert "image/jpeg" in err.value.zh


def test_a_real_type_we_do_not_keep_is_unsupported():
    with pytest.raises(UnsupportedPhotoType) as err:
        domain.check_declared_type("image/gif", "image/gif")
    assert err.value.status_code == 415


def test_heic_aliases():
    assert domain.normalise_type("image/heif") == "image/heic"
    domain.check_declared_type("image/heif", "image/heic")


# --- when, and how many -------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [s for s in CaseStatus if s not in (CaseStatus.CLOSED, CaseStatus.TO_VERIFY)]
)
def test_before_photos_until_closed(status):
    domain.check_kind_allowed(PhotoKind.BEFORE, status)


@pytest.mark.parametrize("kind", list(PhotoKind))
def test_no_photos_on_a_resident_report_before_it_is_verified(kind):
    with pytest.raises(Conflict) as err:
        domain.check_kind_allowed(kind, CaseStatus.TO_VERIFY)
    assert err.value.code == "invalid_state" and "待核实" in err.value.zh


def test_no_before_photos_on_a_closed_case():
    with pytest.raises(Conflict) as err:
        domain.check_kind_allowed(PhotoKind.BEFORE, CaseStatus.CLOSED)
    assert err.value.code == "invalid_state"


@pytest.mark.parametrize("status", list(CaseStatus))
def test_after_photos_only_once_resolved_or_closed(status):
    if status in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        domain.check_kind_allowed(PhotoKind.AFTER, status)
    else:
        with pytest.raises(Conflict) as err:
            domain.check_kind_allowed(PhotoKind.AFTER, status)
        assert err.value.code == "invalid_state"
        assert "整改后" in err.value.zh or status is CaseStatus.TO_VERIFY


# --- departments (职能部门): their result, on their cases ---------------------------------

HANDLING = {CaseStatus.DISPATCHED, CaseStatus.SIGNED_FOR, CaseStatus.REWORK, CaseStatus.RESOLVED}


@pytest.mark.parametrize("status", list(CaseStatus))
def test_department_after_photos_between_dispatch_and_closure(status):
    if status in HANDLING:
        domain.check_department_state(status)
    else:
        with pytest.raises(Conflict) as err:
            domain.check_department_state(status)
        assert err.value.status_code == 409 and err.value.code == "invalid_state"
        assert err.value.zh.startswith("案件当前状态为") and "整改后" in err.value.zh
        assert status.value in err.value.en


def test_department_rules_leave_the_grid_workers_rules_alone():
    # a department may add after-photos while the case is with it; a grid worker still waits
    for status in (CaseStatus.DISPATCHED, CaseStatus.SIGNED_FOR, CaseStatus.REWORK):
        domain.check_department_state(status)
        with pytest.raises(Conflict):
            domain.check_kind_allowed(PhotoKind.AFTER, status)
    # and a grid worker's on-the-spot after-photo of a closed case stays allowed
    domain.check_kind_allowed(PhotoKind.AFTER, CaseStatus.CLOSED)


def test_departments_never_send_before_photos():
    domain.check_department_kind(PhotoKind.AFTER)
    with pytest.raises(Forbidden) as err:
        domain.check_department_kind(PhotoKind.BEFORE)
    assert err.value.status_code == 403
    assert err.value.code == "before_photos_not_for_departments"
    assert err.value.zh.startswith("职能部门只能上传整改后照片")
    assert err.value.en.startswith("departments upload after-photos only")


def test_only_an_assigned_department_may_act_on_the_photos():
    domain.require_assigned("cg", ["cg"])
    domain.require_assigned("cg", ["zj", "cg"])  # a co-handler (协办) of a joint case
    for dept, assigned in (("xf", ["cg"]), ("cg", []), (None, ["cg"]), ("c", ["cg"])):
        with pytest.raises(Forbidden) as err:
            domain.require_assigned(dept, assigned)
        assert err.value.status_code == 403 and err.value.code == "not_assigned"
        assert err.value.zh.startswith("本部门") and "not assigned" in err.value.en


def test_nine_photos_per_kind():
    assert domain.MAX_PHOTOS_PER_KIND == 9
    domain.check_room(PhotoKind.BEFORE, 8)
    with pytest.raises(Conflict) as err:
        domain.check_room(PhotoKind.AFTER, 9)
    assert err.value.code == "too_many_photos" and "9 张整改后" in err.value.zh


# --- ETag ---------------------------------------------------------------------------------

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        (f'"{SHA}"', True),
        (f'W/"{SHA}"', True),
        (f'"other", "{SHA}"', True),
        ("*", True),
        ('"other"', False),
        (SHA, True),
    ],
)
def test_if_none_match(header, matches):
    assert domain.etag_matches(header, SHA) is matches
    assert domain.etag(SHA) == f'"{SHA}"'


# --- the image adapter (Pillow) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_inspect_reads_type_and_size(fmt, mime):
    info = images.inspect(picture(fmt, (40, 30)))
    assert (info.content_type, info.width, info.height) == (mime, 40, 30)


def test_inspect_reports_size_as_displayed():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° CW when shown: a phone held upright
    info = images.inspect(picture("JPEG", (40, 30), exif=exif.tobytes()))
    assert (info.width, info.height) == (30, 40)


@pytest.mark.parametrize(
    "data",
    [
        b"just some text pretending to be a photo\n" * 10,
        b"\xff\xd8\xff\xe0" + b"\x00" * 200,  # a JPEG marker and nothing more
        picture("PNG")[:60],  # a PNG cut short
        picture("JPEG")[:200],  # a JPEG cut short
    ],
    ids=["text", "jpeg-header-only", "truncated-png", "truncated-jpeg"],
)
def test_inspect_refuses_what_is_not_a_whole_image(data):
    with pytest.raises(NotAnImage):
        images.inspect(data)


def test_inspect_refuses_a_corrupted_png():
    data = bytearray(picture("PNG"))
    data[-20] ^= 0xFF  # inside the IDAT chunk: its CRC no longer holds
    with pytest.raises(NotAnImage):
        images.inspect(bytes(data))


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_inspect_names_image_types_we_do_not_keep(fmt):
    with pytest.raises(UnsupportedPhotoType) as err:
        images.inspect(picture(fmt))
    assert f"image/{fmt.lower()}" in err.value.en


@pytest.mark.skipif(images.HEIF_SUPPORTED, reason="pillow-heif installed: HEIC is kept")
def test_heic_without_a_decoder_gets_advice():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100
    with pytest.raises(UnsupportedPhotoType) as err:
        images.inspect(heic)
    assert "兼容性最佳" in err.value.zh


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width``×``height`` (a decompression bomb's shape)."""
    data = bytearray(picture("PNG", (8, 8)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_inspect_refuses_too_many_pixels_before_decoding():
    with pytest.raises(PhotoTooLarge):
        images.inspect(_png_claiming(8000, 8000))  # 64 megapixels: our guard
    with pytest.raises(PhotoTooLarge):
        images.inspect(_png_claiming(20_000, 20_000))  # 400: Pillow's own guard fires first


def _black_png(width: int, height: int) -> bytes:
    """A real, whole PNG of ``width``×``height`` black pixels: compresses to very little."""
    buf = io.BytesIO()
    Image.new("1", (width, height)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def test_a_small_png_of_many_pixels_is_refused_from_its_header():
    bomb = _black_png(12_000, 12_000)  # 144 megapixels, ~430 MB as RGB once decoded
    assert len(bomb) < 200 * 1024
    with pytest.raises(PhotoTooLarge) as err:
        images.inspect(bomb)
    assert err.value.status_code == 413 and err.value.code == "photo_too_large"
    assert err.value.zh.startswith("照片像素过多") and "40 百万像素" in err.value.zh


def test_the_pixel_limit_is_the_services_setting_and_pillows_guard_follows_it():
    from services.intake.config import Settings

    assert Settings.model_fields["photo_max_pixels"].default == domain.MAX_PIXELS == 40_000_000
    photo = picture("PNG", (3000, 2000))  # 6 megapixels
    assert images.inspect(photo).width == 3000
    with pytest.raises(PhotoTooLarge) as err:
        images.inspect(photo, max_pixels=5_000_000)
    assert "上限 5 百万像素" in err.value.zh
    assert Image.MAX_IMAGE_PIXELS == 5_000_000  # Pillow refuses at twice ours, never later
    images.inspect(picture("PNG"), max_pixels=domain.MAX_PIXELS)
    assert Image.MAX_IMAGE_PIXELS == domain.MAX_PIXELS


# --- metadata: no GPS (nor any other EXIF but the orientation) is kept --------------------


def _gps_exif(orientation: int | None = 6) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 26.5), 3: "E", 4: (116.0, 23.0, 29.0)}  # GPS IFD
    return exif


def _has_gps(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as img:
        return bool(img.getexif().get_ifd(0x8825))


XMP = b'<x:xmpmeta><rdf:Description exif:GPSLatitude="39,54.44N"/></x:xmpmeta>'


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_metadata_is_stripped_but_the_orientation_kept(fmt):
    extra = {"xmp": XMP} if fmt != "PNG" else {}
    data = picture(fmt, (40, 30), exif=_gps_exif(6).tobytes(), **extra)
    assert _has_gps(data)
    clean = images.strip_metadata(data)
    assert clean is not None and not _has_gps(clean)
    assert b"GPSLatitude" not in clean and b"PhoneMaker" not in clean
    with Image.open(io.BytesIO(clean)) as img:
        assert img.getexif().get(0x0112) == 6 and dict(img.getexif()) == {0x0112: 6}
        assert img.format == fmt and img.size == (40, 30)
    info = images.inspect(clean)
    assert (info.width, info.height) == (30, 40)  # still shown upright
    assert images.strip_metadata(clean) == clean  # stable: retries hash the same


def test_jpeg_comments_and_trailers_go_and_a_clean_photo_is_unchanged():
    plain = picture("JPEG", (40, 30))
    assert images.strip_metadata(plain) == plain
    assert images.strip_metadata(picture("PNG")) == picture("PNG")
    assert images.strip_metadata(picture("WEBP")) == picture("WEBP")
    noisy = picture("JPEG", (40, 30), comment=b"taken at home", exif=_gps_exif(None).tobytes())
    clean = images.strip_metadata(noisy + b"trailing GPS 39.9N")
    assert clean == plain


def test_png_text_chunks_go():
    from PIL import PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Location", "39.9N 116.4E")
    meta.add_itxt("XML:com.adobe.xmp", XMP.decode())
    data = picture("PNG", (40, 30), pnginfo=meta, exif=_gps_exif(None).tobytes())
    clean = images.strip_metadata(data)
    assert clean == picture("PNG", (40, 30))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image",
        picture("JPEG")[:200],
        picture("PNG")[:60],
        picture("WEBP")[:30],
        picture("GIF"),
    ],
)
def test_what_cannot_be_followed_is_not_stripped(data):
    assert images.strip_metadata(data) is None


@pytest.mark.parametrize(
    "save",
    [{"progressive": True}, {"restart_marker_blocks": 1}, {"optimize": True, "subsampling": 0}],
)
def test_stripping_follows_every_kind_of_jpeg(save):
    noisy = picture("JPEG", (300, 200), exif=_gps_exif(3).tobytes(), **save)
    clean = images.strip_metadata(noisy)
    assert clean is not None and not _has_gps(clean)
    with Image.open(io.BytesIO(clean)) as a, Image.open(io.BytesIO(noisy)) as b:
        assert a.tobytes() == b.tobytes() and a.getexif().get(0x0112) == 3
