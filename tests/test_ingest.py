"""Tests for the ingest stage: formats and pixel modes, ICC, EXIF orientation, geometry, draft path, bad input,
and the rules the committed sample catalog must meet."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import piexif
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps, features

from pipeline.catalog import is_image_file
from pipeline.errors import ImageError
from pipeline.models import Canvas
from pipeline.presets import CanvasSpec
from pipeline.stages import ingest as ingest_mod
from pipeline.stages.ingest import MAX_PIXELS, ingest, load_rgb, plan_geometry, sniff_format

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_images"
HYPO = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------------------------------------------------------
# Helpers and fixtures


def textured(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth but asymmetric RGB test image (gradients + a few blobs), so orientation errors are visible."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 40 + 180 * xx / max(1, w - 1)
    g = 30 + 200 * yy / max(1, h - 1)
    b = 120 + 80 * np.sin(xx / max(1, w) * 6.0 + yy / max(1, h) * 3.0)
    img = np.stack([r, g, b], -1)
    for _ in range(4):
        cx, cy, rad = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.2) * min(w, h) + 1
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad**2))[..., None]
        img = img * (1 - blob) + rng.uniform(0, 255, 3) * blob
    return np.clip(img, 0, 255).astype(np.uint8)


def save(path: Path, img: Image.Image | np.ndarray, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    img.save(path, fmt, **kw)
    return path


@pytest.fixture
def big_box(make_preset):
    """A preset whose fit box is larger than any test image: the canvas is the normalised source itself."""
    return make_preset(canvas=CanvasSpec(width=4000, height=4000, fit="fit"))


@pytest.fixture
def run(make_job, big_box):
    """run(path, preset=None) -> Canvas via ingest(job)."""

    def go(path: Path, preset=None) -> Canvas:
        return ingest(make_job(path, preset=preset or big_box))

    return go


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


# ------------------------------------------------------------------------------------------------------------------
# Basic contract


def test_canvas_contract_and_source_hash(jpeg_file, make_job):
    job = make_job(jpeg_file)
    canvas = ingest(job)
    assert canvas.source_sha256 == hashlib.sha256(jpeg_file.read_bytes()).hexdigest()
    assert canvas.source_bytes == jpeg_file.stat().st_size
    px = canvas.pixels
    assert px.dtype == np.uint8 and px.ndim == 3 and px.shape[2] == 3 and px.flags.c_contiguous
    assert px.shape[:2] == (800, 800)  # conftest preset: 800x800 pad; the 640x480 source is not enlarged
    assert canvas.content_box == (80, 160, 720, 640)
    assert canvas.capture.source_format == "JPEG"
    assert (canvas.capture.original_width, canvas.capture.original_height) == (640, 480)
    # padding is exactly the background
    assert (px[:160] == 255).all() and (px[640:] == 255).all()


def test_load_rgb_accepts_path_str_and_bytes(jpeg_file):
    a, cap = load_rgb(jpeg_file)
    b, _ = load_rgb(str(jpeg_file))
    c, _ = load_rgb(jpeg_file.read_bytes())
    assert a.shape == (480, 640, 3) and np.array_equal(a, b) and np.array_equal(a, c)
    small, cap2 = load_rgb(jpeg_file, max_side=100)
    assert max(small.shape[:2]) == 100 and small.shape[:2] == (75, 100)
    assert (cap2.original_width, cap2.original_height) == (640, 480)
    same, _ = load_rgb(jpeg_file, max_side=5000)  # never enlarged
    assert same.shape == (480, 640, 3)


# ------------------------------------------------------------------------------------------------------------------
# Formats and pixel modes


@pytest.mark.parametrize(
    "fmt,suffix,kw",
    [("PNG", ".png", {}), ("WEBP", ".webp", {"lossless": True}), ("TIFF", ".tif", {}),
     ("TIFF", ".tiff", {"compression": "tiff_lzw"}), ("BMP", ".bmp", {})],
)
def test_lossless_formats_decode_exactly(tmp_path, run, fmt, suffix, kw):
    src = textured(60, 40, seed=3)
    path = save(tmp_path / f"img{suffix}", src, fmt, **kw)
    canvas = run(path)
    assert np.array_equal(canvas.pixels, src)
    assert canvas.capture.source_format == fmt


def test_jpeg_and_lossy_webp_decode_close(tmp_path, run):
    src = textured(96, 64, seed=4)
    for name, fmt, kw in (("a.jpg", "JPEG", {"quality": 95}), ("a.webp", "WEBP", {"quality": 95})):
        canvas = run(save(tmp_path / name, src, fmt, **kw))
        assert canvas.pixels.shape == src.shape
        assert np.abs(canvas.pixels.astype(int) - src).mean() < 3, name


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")
def test_avif_decodes(tmp_path, run):
    src = textured(64, 48, seed=5)
    canvas = run(save(tmp_path / "a.avif", src, "AVIF", quality=95))
    assert canvas.capture.source_format == "AVIF"
    assert np.abs(canvas.pixels.astype(int) - src).mean() < 4


def test_mislabelled_png_named_jpg_decodes_by_content(tmp_path, run):
    src = textured(30, 20)
    path = save(tmp_path / "really_a_png.jpg", src, "PNG")
    canvas = run(path)
    assert canvas.capture.source_format == "PNG" and np.array_equal(canvas.pixels, src)


def test_rgba_png_is_flattened_onto_the_preset_background(tmp_path, make_job, make_preset):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:, :4, 3] = 0  # transparent: becomes the background exactly
    rgba[:, 4:8, 3] = 255  # opaque: keeps its colour exactly
    rgba[:, 8:, 3] = 128  # half: a blend
    path = save(tmp_path / "cut.png", Image.fromarray(rgba, "RGBA"))
    bg = (200, 0, 100)
    preset = make_preset(canvas=CanvasSpec(width=100, height=100, fit="fit", background=bg))
    px = ingest(make_job(path, preset=preset)).pixels
    assert (px[:, :4] == bg).all()
    assert (px[:, 4:8] == (10, 200, 30)).all()
    expected = np.round((np.array([10, 200, 30]) * 128 + np.array(bg) * 127) / 255)
    assert np.abs(px[:, 8:].astype(int) - expected).max() <= 1


def test_la_greyscale_alpha_is_flattened(tmp_path, run):
    la = np.zeros((8, 8, 2), np.uint8)
    la[..., 0] = 50
    la[:4, :, 1] = 255
    canvas = run(save(tmp_path / "la.png", Image.fromarray(la, "LA")))
    assert (canvas.pixels[:4] == 50).all() and (canvas.pixels[4:] == 255).all()


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency(tmp_path, run, fmt):
    im = Image.new("P", (16, 8), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (8, 0, 16, 8))
    path = save(tmp_path / f"pal.{fmt.lower()}", im, fmt, transparency=0)
    px = run(path).pixels
    assert (px[:, :8] == 255).all()  # index 0 is transparent -> white background
    assert (px[:, 8:] == (0, 0, 255)).all()


def test_palette_without_transparency(tmp_path, run):
    im = Image.fromarray(textured(40, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    path = save(tmp_path / "pal.png", im)
    assert np.array_equal(run(path).pixels, np.asarray(im.convert("RGB")))


def test_animated_gif_uses_the_first_frame(tmp_path, run):
    frames = [Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3
    px = run(path).pixels
    assert (np.abs(px.astype(int) - (255, 0, 0)) <= 2).all()


def test_greyscale_and_bilevel(tmp_path, run):
    grey = textured(40, 30)[..., 1]
    canvas = run(save(tmp_path / "g.png", Image.fromarray(grey, "L")))
    assert np.array_equal(canvas.pixels, np.repeat(grey[..., None], 3, axis=2))
    jpg = run(save(tmp_path / "g.jpg", Image.fromarray(grey, "L"), quality=95))
    assert jpg.pixels.shape == (30, 40, 3) and np.abs(jpg.pixels[..., 0].astype(int) - grey).mean() < 3
    bits = Image.fromarray((grey > 128).astype(np.uint8) * 255, "L").convert("1")
    canvas = run(save(tmp_path / "b.png", bits))
    assert set(np.unique(canvas.pixels)) <= {0, 255}


def test_16bit_greyscale_png_is_scaled_not_clipped(tmp_path, run):
    a = np.array([[0, 257, 32896, 65535]], np.uint16).repeat(4, 0)
    path = save(tmp_path / "g16.png", Image.fromarray(a))
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    px = run(path).pixels
    assert px[0, :, 0].tolist() == [0, 1, 128, 255]


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_16bit_rgb_png_and_tiff(tmp_path, run, ext):
    rgb16 = (textured(32, 24).astype(np.uint16) * 257) + 100  # not an exact multiple of 257
    path = tmp_path / f"rgb16{ext}"
    assert cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR; 16-bit RGB PNG/TIFF
    px = run(path).pixels
    assert diff(px, (rgb16 / 257).round().astype(np.uint8)) <= 1


def test_cmyk_jpeg_adobe_inverted_and_cmyk_tiff(tmp_path, run):
    cmyk = np.zeros((16, 32, 4), np.uint8)
    cmyk[:, :16] = (0, 255, 255, 0)  # red
    cmyk[:, 16:] = (255, 255, 0, 0)  # blue
    im = Image.fromarray(cmyk, "CMYK")
    jpg = save(tmp_path / "cmyk.jpg", im, "JPEG", quality=95)
    assert b"Adobe" in jpg.read_bytes()  # Pillow writes the APP14 marker and inverted (Adobe) CMYK
    px = run(jpg).pixels
    assert np.abs(px[4:12, 2:14].astype(int) - (255, 0, 0)).max() <= 8
    assert np.abs(px[4:12, 18:30].astype(int) - (0, 0, 255)).max() <= 8
    tif = run(save(tmp_path / "cmyk.tif", im, "TIFF")).pixels
    assert (tif[:, :16] == (255, 0, 0)).all() and (tif[:, 16:] == (0, 0, 255)).all()


# ------------------------------------------------------------------------------------------------------------------
# ICC: a real non-sRGB profile made in code


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
D65 = np.array([0.95047, 1.0, 1.08883])
D50 = np.array([0.96422, 1.0, 0.82521])


def rgb_to_xyz_matrix(primaries: list[tuple[float, float]], white: np.ndarray) -> np.ndarray:
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    s = np.linalg.solve(xyz, white)
    return xyz * s


def matrix_trc_icc(primaries: list[tuple[float, float]], gamma: float, desc: str) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma curves), colourants adapted to D50 (Bradford)."""
    m = rgb_to_xyz_matrix(primaries, D65)
    adapt = np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ D50) / (_BRADFORD @ D65)) @ _BRADFORD
    m50 = adapt @ m
    ascii_desc = desc.encode() + b"\x00"
    tags = {
        b"desc": b"desc\x00\x00\x00\x00" + struct.pack(">I", len(ascii_desc)) + ascii_desc + b"\x00" * 12 + b"\x00" * 67,
        b"cprt": b"text\x00\x00\x00\x00" + b"No copyright, test profile\x00",
        b"wtpt": b"XYZ \x00\x00\x00\x00" + b"".join(_s15(v) for v in D50),
        b"rXYZ": b"XYZ \x00\x00\x00\x00" + b"".join(_s15(v) for v in m50[:, 0]),
        b"gXYZ": b"XYZ \x00\x00\x00\x00" + b"".join(_s15(v) for v in m50[:, 1]),
        b"bXYZ": b"XYZ \x00\x00\x00\x00" + b"".join(_s15(v) for v in m50[:, 2]),
    }
    curve = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(gamma * 256)) + b"\x00\x00"
    for t in (b"rTRC", b"gTRC", b"bTRC"):
        tags[t] = curve
    table_len = 4 + 12 * len(tags)
    offset = 128 + table_len
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags.items():
        data += b"\x00" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = 128 + table_len + len(body)
    header = (
        struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\x00" * 4 + b"\x00" * 4 + b"\x00" * 8
        + b"\x00" * 8 + b"\x00" * 4 + b"".join(_s15(v) for v in D50) + b"\x00" * 4 + b"\x00" * 16 + b"\x00" * 28
    )
    assert len(header) == 128
    return header + table + body


P3 = [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)]
SRGB = [(0.640, 0.330), (0.300, 0.600), (0.150, 0.060)]


def _srgb_encode(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0, 1)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055) * 255


@pytest.fixture(scope="module")
def p3_profile() -> bytes:
    return matrix_trc_icc(P3, 2.2, "Test Display P3 gamma 2.2")


def test_icc_profile_is_converted_to_srgb(tmp_path, run, p3_profile):
    colours = np.array([[180, 120, 90], [90, 140, 200], [128, 128, 128], [200, 60, 60], [60, 170, 80]], np.uint8)
    src = np.repeat(np.repeat(colours[None], 8, axis=0), 8, axis=1)  # 8 x 40 patches
    path = save(tmp_path / "p3.png", src, "PNG", icc_profile=p3_profile)
    canvas = run(path)
    # Independent expectation: decode gamma 2.2 -> P3 to XYZ (D65) -> XYZ to linear sRGB -> sRGB curve.
    m = np.linalg.inv(rgb_to_xyz_matrix(SRGB, D65)) @ rgb_to_xyz_matrix(P3, D65)
    expected = _srgb_encode((m @ ((colours / 255.0) ** 2.2).T).T)
    got = canvas.pixels[4, 4::8].astype(float)
    assert np.abs(got - expected).max() <= 3, (got, expected)
    assert np.abs(expected - colours).max() > 15  # the colours really had to move: ignoring the ICC fails this
    assert canvas.capture.icc_profile == "Test Display P3 gamma 2.2"


def test_icc_profile_in_jpeg_with_draft(tmp_path, make_job, make_preset, p3_profile):
    src = np.full((512, 512, 3), (200, 60, 60), np.uint8)
    path = save(tmp_path / "p3.jpg", src, "JPEG", quality=95, icc_profile=p3_profile)
    preset = make_preset(canvas=CanvasSpec(width=128, height=128, fit="fit"))
    px = ingest(make_job(path, preset=preset)).pixels
    m = np.linalg.inv(rgb_to_xyz_matrix(SRGB, D65)) @ rgb_to_xyz_matrix(P3, D65)
    expected = _srgb_encode(m @ (np.array([200, 60, 60]) / 255.0) ** 2.2)
    assert px.shape == (128, 128, 3) and np.abs(px[64, 64] - expected).max() <= 4


def test_srgb_profile_keeps_pixels_and_is_recorded(tmp_path, run):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = textured(20, 10)
    canvas = run(save(tmp_path / "s.png", src, "PNG", icc_profile=srgb))
    assert np.array_equal(canvas.pixels, src)
    assert canvas.capture.icc_profile and "sRGB" in canvas.capture.icc_profile


def test_garbage_icc_profile_is_ignored_not_fatal(tmp_path, run):
    src = textured(20, 10)
    canvas = run(save(tmp_path / "bad_icc.png", src, "PNG", icc_profile=b"not an icc profile at all" * 4))
    assert np.array_equal(canvas.pixels, src)
    assert "unreadable ICC" in (canvas.capture.icc_profile or "")


# ------------------------------------------------------------------------------------------------------------------
# EXIF orientation and capture metadata


def exif_bytes(orientation: int = 1, *, make: bytes = b"Canon", model: bytes = b"EOS R5", thumb: bool = False,
               serial: bytes = b"0123456789", date: bytes = b"2026:05:01 10:11:12") -> bytes:
    ex: dict = {
        "0th": {piexif.ImageIFD.Orientation: orientation, piexif.ImageIFD.Make: make, piexif.ImageIFD.Model: model},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: date, piexif.ExifIFD.BodySerialNumber: serial},
    }
    if thumb:
        buf = io.BytesIO()
        Image.new("RGB", (32, 24), (200, 10, 10)).save(buf, "JPEG")
        ex["thumbnail"] = buf.getvalue()
        ex["1st"] = {piexif.ImageIFD.Compression: 6}
    return piexif.dump(ex)


@HYPO
@given(orientation=st.integers(1, 8), w=st.integers(5, 40), h=st.integers(5, 40))
def test_orientation_png_equals_pillow_exif_transpose(tmp_path_factory, make_job, make_preset, orientation, w, h):
    stored = textured(w, h, seed=w * 100 + h)
    path = tmp_path_factory.mktemp("o") / f"o{orientation}.png"
    save(path, stored, "PNG", exif=exif_bytes(orientation))
    with Image.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    preset = make_preset(canvas=CanvasSpec(width=100, height=100, fit="fit"))
    canvas = ingest(make_job(path, preset=preset))
    assert np.array_equal(canvas.pixels, upright)
    assert canvas.capture.orientation == orientation
    assert (canvas.capture.original_width, canvas.capture.original_height) == (upright.shape[1], upright.shape[0])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_jpeg_with_draft_resize(tmp_path, make_job, make_preset, orientation):
    stored = textured(320, 192, seed=orientation)
    path = save(tmp_path / f"o{orientation}.jpg", stored, "JPEG", quality=95, exif=exif_bytes(orientation))
    with Image.open(path) as im:
        upright = ImageOps.exif_transpose(im).convert("RGB")
    preset = make_preset(canvas=CanvasSpec(width=80, height=80, fit="fit"))
    canvas = ingest(make_job(path, preset=preset))
    ref = np.asarray(upright.resize(canvas.pixels.shape[1::-1], Image.Resampling.BOX))
    assert canvas.pixels.shape == ((80, 48, 3) if orientation >= 5 else (48, 80, 3))
    assert np.abs(canvas.pixels.astype(int) - ref).mean() < 3


def test_capture_info_from_camera_exif(tmp_path, run):
    path = save(tmp_path / "cam.jpg", textured(64, 48), "JPEG", exif=exif_bytes(6, thumb=True))
    cap = run(path).capture
    assert cap.make == "Canon" and cap.model == "EOS R5" and cap.serial == "0123456789"
    assert cap.datetime_original == "2026:05:01 10:11:12"
    assert (cap.original_width, cap.original_height, cap.orientation) == (48, 64, 6)
    assert cap.as_dict()["make"] == "Canon"


def test_malformed_exif_is_tolerated(tmp_path, run):
    good = io.BytesIO()
    Image.fromarray(textured(40, 30)).save(good, "JPEG", quality=90)
    data = good.getvalue()
    # Insert an APP1 "Exif" segment holding garbage (a broken TIFF header and IFD) right after SOI.
    junk = b"Exif\x00\x00" + b"MM\x00*\x00\x00\x00\x08\xff\xff" + bytes(range(256)) * 4
    bad = data[:2] + b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk + data[2:]
    path = tmp_path / "bad_exif.jpg"
    path.write_bytes(bad)
    canvas = run(path)
    assert canvas.pixels.shape == (30, 40, 3)
    assert canvas.capture.orientation == 1 and canvas.capture.make is None


def test_huge_and_hostile_exif_text_is_truncated(tmp_path, run):
    make = b"A" * 50_000 + b"\x00\x01\x02"
    path = save(tmp_path / "huge.jpg", textured(40, 30), "JPEG", exif=exif_bytes(1, make=make, serial=b"\x00\x00"))
    cap = run(path).capture
    assert cap.make is not None and len(cap.make) <= 128 and set(cap.make) == {"A"}
    assert cap.serial is None


def test_out_of_range_orientation_is_ignored(tmp_path, run):
    path = save(tmp_path / "o99.png", textured(20, 10), "PNG", exif=exif_bytes(99))
    canvas = run(path)
    assert canvas.capture.orientation == 1 and canvas.pixels.shape == (10, 20, 3)


# ------------------------------------------------------------------------------------------------------------------
# Geometry


SIDES = st.integers(1, 3000)


@settings(max_examples=300, deadline=None)
@given(w=SIDES, h=SIDES, bw=st.integers(1, 2500), bh=st.integers(1, 2500),
       fit=st.sampled_from(["fit", "pad", "cover"]), upscale=st.booleans())
def test_plan_geometry_properties(w, h, bw, bh, fit, upscale):
    spec = CanvasSpec(width=bw, height=bh, fit=fit, upscale=upscale)
    plan = plan_geometry(w, h, spec)
    sw, sh = plan.scaled
    cw, ch = plan.canvas
    x0, y0, x1, y1 = plan.content_box
    assert sw >= 1 and sh >= 1
    if not upscale:
        assert sw <= w and sh <= h  # never enlarged
    assert cw <= bw and ch <= bh
    assert 0 <= x0 < x1 <= cw and 0 <= y0 < y1 <= ch
    # the aspect ratio of the photo survives scaling (within rounding of one pixel)
    assert abs(sw * h - sh * w) <= max(w, h) + max(sw, sh)
    if fit == "fit":
        assert (cw, ch) == (sw, sh) and plan.content_box == (0, 0, sw, sh)
        if upscale or w > bw or h > bh:
            assert sw == bw or sh == bh  # touches the box
    elif fit == "pad":
        assert (cw, ch) == (bw, bh)
        assert (x1 - x0, y1 - y0) == (sw, sh)
        assert abs(x0 - (bw - x1)) <= 1 and abs(y0 - (bh - y1)) <= 1  # centred
    else:
        assert plan.content_box == (0, 0, cw, ch)
        assert cw <= sw and ch <= sh  # a crop of the scaled photo
        if upscale or (w >= bw and h >= bh):
            assert (cw, ch) == (bw, bh)
        ox, oy = plan.offset
        assert abs(-ox - (sw - cw + ox)) <= 1 and abs(-oy - (sh - ch + oy)) <= 1  # centred crop


@HYPO
@given(w=st.integers(8, 120), h=st.integers(8, 120), bw=st.integers(8, 90), bh=st.integers(8, 90),
       fit=st.sampled_from(["fit", "pad", "cover"]), upscale=st.booleans())
@example(w=8, h=8, bw=8, bh=9, fit="pad", upscale=False)  # padded on one side only (a bug hypothesis found)
def test_ingest_geometry_matches_plan(tmp_path_factory, make_job, make_preset, w, h, bw, bh, fit, upscale):
    bg = (10, 20, 30)
    spec = CanvasSpec(width=bw, height=bh, fit=fit, background=bg, upscale=upscale)
    src = np.full((h, w, 3), (250, 128, 3), np.uint8)  # flat colour: any resampling keeps it exactly
    path = save(tmp_path_factory.mktemp("g") / "g.png", src)
    canvas = ingest(make_job(path, preset=make_preset(canvas=spec)))
    plan = plan_geometry(w, h, spec)
    px = canvas.pixels
    assert px.shape == (plan.canvas[1], plan.canvas[0], 3) and px.flags.c_contiguous
    assert canvas.content_box == plan.content_box
    x0, y0, x1, y1 = plan.content_box
    assert (px[y0:y1, x0:x1] == (250, 128, 3)).all()
    outside = np.ones(px.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert (px[outside] == bg).all()


def test_cover_crops_the_centre(tmp_path, make_job, make_preset):
    src = np.zeros((100, 300, 3), np.uint8)
    src[:, :100] = (255, 0, 0)
    src[:, 100:200] = (0, 255, 0)
    src[:, 200:] = (0, 0, 255)
    path = save(tmp_path / "bands.png", src)
    preset = make_preset(canvas=CanvasSpec(width=50, height=50, fit="cover"))
    px = ingest(make_job(path, preset=preset)).pixels
    assert px.shape == (50, 50, 3) and (px == (0, 255, 0)).all()


def test_upscale_uses_lanczos_only_when_allowed(tmp_path, make_job, make_preset):
    path = save(tmp_path / "small.png", textured(40, 20))
    on = make_preset(canvas=CanvasSpec(width=200, height=200, fit="fit", upscale=True))
    off = make_preset(canvas=CanvasSpec(width=200, height=200, fit="fit", upscale=False))
    assert ingest(make_job(path, preset=on)).pixels.shape == (100, 200, 3)
    assert ingest(make_job(path, preset=off)).pixels.shape == (20, 40, 3)


# ------------------------------------------------------------------------------------------------------------------
# The JPEG draft (DCT-scaled) path


@pytest.fixture(scope="module")
def large_jpeg(tmp_path_factory) -> Path:
    src = cv2.resize(textured(300, 200, seed=9), (2400, 1600), interpolation=cv2.INTER_CUBIC)
    return save(tmp_path_factory.mktemp("draft") / "large.jpg", src, "JPEG", quality=92)


@pytest.mark.parametrize("target", [1000, 600, 290, 150])
def test_draft_path_equals_full_decode(large_jpeg, monkeypatch, target):
    from PIL import JpegImagePlugin

    sizes: list[tuple[int, int]] = []
    real = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        out = real(self, mode, size)
        sizes.append(self.size)
        return out

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    data = large_jpeg.read_bytes()

    def tgt(w: int, h: int) -> tuple[int, int]:
        s = target / max(w, h)
        return round(w * s), round(h * s)

    fast, _ = ingest_mod._decode(data, "large.jpg", target=tgt, check=None, flatten=(255, 255, 255), orient=True)
    slow, _ = ingest_mod._decode(data, "large.jpg", target=tgt, check=None, flatten=(255, 255, 255), orient=True,
                                 use_draft=False)
    assert len(sizes) == 1  # the slow path never drafts
    drafted = sizes[0]
    assert drafted[0] >= fast.shape[1] and drafted[1] >= fast.shape[0]  # never below the target
    if target <= 1200:
        assert drafted[0] < 2400  # and a DCT scale was really used
    assert fast.shape == slow.shape
    d = np.abs(fast.astype(int) - slow)
    assert d.mean() < 1.5 and np.percentile(d, 99.9) <= 12


# ------------------------------------------------------------------------------------------------------------------
# Bad input: every case is an ImageError naming the problem


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h but carries almost no data: what a decompression bomb looks like."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + png_chunk(b"IEND", b""))


def _err(run, path: Path) -> str:
    with pytest.raises(ImageError) as ei:
        run(path)
    assert ei.value.stage == "ingest"
    assert path.name in str(ei.value)  # the message names the file
    return str(ei.value)


def test_empty_file(tmp_path, run):
    assert "empty file" in _err(run, save_bytes(tmp_path / "empty.jpg", b""))


def test_missing_file(tmp_path, run):
    assert "not found" in _err(run, tmp_path / "nope.jpg")


def test_truncated_jpeg(tmp_path, run):
    buf = io.BytesIO()
    Image.fromarray(textured(200, 150)).save(buf, "JPEG", quality=90)
    msg = _err(run, save_bytes(tmp_path / "cut.jpg", buf.getvalue()[: len(buf.getvalue()) // 2]))
    assert "truncated" in msg and "JPEG" in msg


def test_truncated_png(tmp_path, run):
    buf = io.BytesIO()
    Image.fromarray(textured(200, 150, seed=2)).save(buf, "PNG")
    msg = _err(run, save_bytes(tmp_path / "cut.png", buf.getvalue()[: len(buf.getvalue()) // 2]))
    assert "truncated" in msg and "PNG" in msg


def test_jpeg_header_with_garbage(tmp_path, run):
    msg = _err(run, save_bytes(tmp_path / "broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 50))
    assert "corrupt" in msg and "JPEG" in msg


def _jpeg(w: int = 320, h: int = 240, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(textured(w, h, seed=7)).save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _scan(data: bytes) -> tuple[int, int]:
    """Start and end of the (first) entropy-coded scan: after the SOS segment, up to the EOI marker."""
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big"), len(data) - 2


def _with_random_bytes(data: bytes, at: float, n: int, seed: int = 0) -> bytes:
    start, end = _scan(data)
    i = start + int((end - start - n) * at)
    junk = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    return data[:i] + junk + data[i + n:]


def test_a_jpeg_with_random_bytes_in_its_scan_is_corrupt(tmp_path, run):
    msg = _err(run, save_bytes(tmp_path / "noisy.jpg", _with_random_bytes(_jpeg(), 0.5, 200)))
    assert re.search(r"noisy\.jpg: corrupt: (premature end of data segment|bad huffman code|\d+ extraneous bytes)", msg)


def test_a_jpeg_whose_header_claims_more_than_its_scan_holds_is_corrupt(tmp_path, run):
    data = bytearray(_jpeg(320, 240))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 2400, 3200)  # height, width: 100x the pixels of the scan
    msg = _err(run, save_bytes(tmp_path / "inflated.jpg", bytes(data)))
    assert "inflated.jpg: corrupt: premature end of data segment" in msg


def test_a_jpeg_cut_mid_scan_fails_with_or_without_its_end_marker(tmp_path, run):
    data = _jpeg()
    start, end = _scan(data)
    cut = data[:(start + end) // 2]
    assert "truncated" in _err(run, save_bytes(tmp_path / "cut.jpg", cut))
    assert "corrupt: premature end of data segment" in _err(run, save_bytes(tmp_path / "cut-eoi.jpg", cut + b"\xff\xd9"))


@pytest.mark.parametrize("kw", [{}, {"progressive": True}, {"subsampling": 0}, {"restart_marker_blocks": 1}])
def test_intact_jpegs_pass_the_corruption_check_silently(tmp_path, run, capfd, kw):
    canvas = run(save_bytes(tmp_path / "ok.jpg", _jpeg(**kw)))
    assert canvas.pixels.shape == (240, 320, 3)
    assert capfd.readouterr().err == ""  # nothing of the check reaches stderr


def test_a_corrupt_jpeg_warning_is_not_printed_and_other_stderr_output_is_kept(capfd):
    import os

    assert ingest_mod._libjpeg_warnings(_with_random_bytes(_jpeg(), 0.3, 100))
    assert capfd.readouterr().err == ""
    os.write(2, b"before\n")
    assert ingest_mod._libjpeg_warnings(_jpeg()) == []
    assert capfd.readouterr().err == "before\n"


@HYPO
@given(w=st.integers(9, 700), h=st.integers(9, 700), scale=st.sampled_from([1, 2, 4, 8]),
       kw=st.sampled_from([{}, {"progressive": True}, {"subsampling": 0}, {"subsampling": 1},
                           {"restart_marker_blocks": 3}, {"optimize": True}]))
def test_the_checking_decode_gives_pillows_draft_pixels(w, h, scale, kw):
    """A source JPEG is decoded once, by OpenCV (which reports corrupt data): its pixels at each DCT scale are
    Pillow's draft pixels byte for byte, so the exports are the same whichever decoder ran."""
    data = _jpeg(w, h, **kw)
    problems, pixels = ingest_mod._libjpeg_decode(data, scale)
    im = Image.open(io.BytesIO(data))
    if scale > 1:
        im.draft("RGB", (w // scale, h // scale))  # Pillow picks this scale for this target
    assert problems == []
    assert pixels is not None and np.array_equal(pixels, np.asarray(im.convert("RGB")))


def test_the_draft_scale_is_pillows():
    """The scale the checking decode uses is the one Pillow's draft() would pick for the same target (draft reads
    the header only: flat pictures of each size, encoded once, are enough)."""
    files: dict[tuple[int, int], bytes] = {}
    for size, need in [((6000, 4000), (1000, 667)), ((6000, 4000), (750, 500)), ((6000, 4000), (749, 499)),
                       ((6000, 4000), (2999, 2000)), ((6000, 4000), (3001, 2000)), ((640, 480), (640, 480)),
                       ((640, 480), (800, 600)), ((4000, 6000), (600, 3000))]:
        if size not in files:
            buf = io.BytesIO()
            Image.new("RGB", size, (120, 90, 60)).save(buf, "JPEG", quality=90)
            files[size] = buf.getvalue()
        im = Image.open(io.BytesIO(files[size]))
        im.draft("RGB", need)
        assert im.size == (-(-size[0] // ingest_mod._draft_scale(size, need)),
                           -(-size[1] // ingest_mod._draft_scale(size, need))), (size, need)


def test_suspects_are_not_held_to_it(tmp_path):
    """verify and trace read downloaded copies, damaged or not: load_rgb decodes what is there."""
    rgb, _ = load_rgb(_with_random_bytes(_jpeg(), 0.5, 200))
    assert rgb.shape == (240, 320, 3)


@HYPO
@given(at=st.floats(0, 1), n=st.integers(1, 64), seed=st.integers(0, 2**16))
def test_random_damage_to_a_scan_is_refused_or_decodes_never_crashes(tmp_path, run, at, n, seed):
    path = save_bytes(tmp_path / "fuzz.jpg", _with_random_bytes(_jpeg(160, 120), at, n, seed))
    try:
        canvas = run(path)
    except ImageError as exc:
        assert exc.stage == "ingest" and ("corrupt" in str(exc) or "truncated" in str(exc)), str(exc)
    else:
        assert canvas.pixels.shape == (120, 160, 3)


def test_random_bytes_and_text_are_not_images(tmp_path, run):
    rng = np.random.default_rng(1)
    assert "not an image" in _err(run, save_bytes(tmp_path / "noise.jpg", rng.bytes(5000)))
    assert "not an image" in _err(run, save_bytes(tmp_path / "notes.png", b"hello, I am a text file\n" * 10))


@pytest.mark.parametrize("head", [b"GIF89a", b"\x89PNG\r\n\x1a\n", b"II*\0", b"MM\0*", b"\xff\xd8\xff\xe0",
                                  b"\0\0\0\x1cftypavif"])
def test_a_damaged_header_is_named_without_python_reprs_or_warnings(tmp_path, run, head, capfd):
    msg = _err(run, save_bytes(tmp_path / "damaged.img", head + b"\0" * 40))
    assert "corrupt or truncated" in msg and "object at 0x" not in msg and "<_io" not in msg, msg
    assert capfd.readouterr().err == ""  # no decoder warning leaks to the terminal


@pytest.mark.parametrize(
    "data,fmt",
    [(b"\xff\x0a" + b"\x00" * 64, "JPEG XL"),  # (HEIC and PSD are read now: tests/test_ingest_formats.py)
     (b"%PDF-1.7\n" + b"\x00" * 64, "PDF"),
     (b"qoif" + b"\x00" * 64, "QOI"),
     (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG")],
)
def test_unsupported_formats_are_named(tmp_path, run, data, fmt):
    msg = _err(run, save_bytes(tmp_path / "thing.jpg", data))
    assert "unsupported format" in msg and fmt in msg


@pytest.mark.parametrize("w,h", [(20_000, 10_000), (13_000, 13_000)])
def test_decompression_bomb(tmp_path, run, w, h):
    assert w * h > MAX_PIXELS
    msg = _err(run, save_bytes(tmp_path / "bomb.png", png_header_only(w, h)))
    assert "decompression bomb" in msg


def test_bomb_warning_never_escapes(tmp_path, run, monkeypatch):
    """Pillow's DecompressionBombWarning (above its soft limit, under ours) is not leaked as a warning."""
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow warns above 100 px, errors above 200
    path = save(tmp_path / "w.png", textured(12, 12))  # 144 px
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        canvas = run(path)
    assert canvas.pixels.shape == (12, 12, 3)
    big = save(tmp_path / "e.png", textured(20, 20))  # 400 px: Pillow's hard error becomes an ImageError
    assert "decompression bomb" in _err(run, big)


def test_too_small_for_min_long_side(tmp_path, make_job, make_preset):
    path = save(tmp_path / "tiny.jpg", textured(100, 80))
    preset = make_preset(canvas=CanvasSpec(width=1000, height=1000, fit="pad", min_long_side=500))
    with pytest.raises(ImageError) as ei:
        ingest(make_job(path, preset=preset))
    assert "too small" in str(ei.value) and "500" in str(ei.value) and ei.value.stage == "ingest"
    ok = make_preset(canvas=CanvasSpec(width=1000, height=1000, fit="pad", min_long_side=500, upscale=True))
    assert ingest(make_job(path, preset=ok)).content_box == (0, 100, 1000, 900)


def test_directory_and_unsupported_mode(tmp_path, run):
    d = tmp_path / "adir.jpg"
    d.mkdir()
    assert "directory" in _err(run, d)
    f = tmp_path / "float.tif"
    Image.fromarray(np.ones((4, 4), np.float32)).save(f)
    assert "unsupported pixel mode" in _err(run, f)


def test_sniff_format():
    assert sniff_format(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WebP"
    assert sniff_format(b"\x00\x00\x00\x1cftypavif") == "AVIF"
    assert sniff_format(b"hello") is None


def save_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------------------------------
# The committed sample catalog


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.rglob("*") if is_image_file(p))


def test_sample_catalog_layout_size_and_sources():
    files = sample_files()
    assert 10 <= len(files) <= 20
    assert sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file()) < 10_000_000
    skus = {p.relative_to(SAMPLES).parts[0] for p in files}
    assert all(len(p.relative_to(SAMPLES).parts) == 2 for p in files)  # sample_images/<SKU>/<file>
    assert 4 <= len(skus) <= 8
    suffixes = {p.suffix.lower() for p in files}
    assert {".jpg", ".png", ".webp"} <= suffixes
    sources = (SAMPLES / "SOURCES.md").read_text(encoding="utf-8")
    for p in files:
        assert p.relative_to(SAMPLES).as_posix() in sources, f"SOURCES.md does not list {p}"
    assert re.search(r"CC0|public domain", sources, re.I)


def test_sample_catalog_has_the_required_cases():
    from pipeline.presets import list_presets

    presets = list_presets()
    files = sample_files()
    rotated_portrait = rgba_png = thumb = camera = False
    white_mains = 0
    for p in files:
        data = p.read_bytes()
        px, cap = load_rgb(data)  # every sample decodes
        for preset in presets:  # and is big enough for every built-in preset
            x0, y0, x1, y1 = plan_geometry(cap.original_width, cap.original_height, preset.canvas).content_box
            assert max(x1 - x0, y1 - y0) >= preset.canvas.min_long_side, (p, preset.name)
        with Image.open(p) as im:
            if im.format == "JPEG":
                exif = piexif.load(im.info.get("exif", b"")) if "exif" in im.info else {}
                if exif.get("thumbnail"):
                    thumb = True
                if exif.get("0th", {}).get(piexif.ImageIFD.Make) and exif.get("Exif", {}).get(
                        piexif.ExifIFD.DateTimeOriginal):
                    camera = True
                if cap.orientation == 6 and im.size[0] > im.size[1] and cap.original_height > cap.original_width:
                    rotated_portrait = True
            if im.format == "PNG" and im.mode == "RGBA":
                alpha = np.asarray(im)[..., 3]
                rgba_png |= bool((alpha == 0).any() and (alpha == 255).any())
        is_main = p.stem.lower() == "main" or p == sorted(x for x in files if x.parent == p.parent)[0]
        if is_main:
            border = np.concatenate([px[:8].reshape(-1, 3), px[-8:].reshape(-1, 3),
                                     px[:, :8].reshape(-1, 3), px[:, -8:].reshape(-1, 3)])
            if border.min() >= 230:  # a main on (near) white must be on exactly white, as storefronts check
                assert (border == 255).all(), f"{p}: main image border is near-white but not pure white"
                white_mains += 1
    assert rotated_portrait, "no portrait JPEG stored rotated with EXIF Orientation=6"
    assert rgba_png, "no PNG with transparency"
    assert white_mains >= 3, "fewer than three main images on pure white"
    assert thumb, "no JPEG with an embedded EXIF thumbnail"
    assert camera, "no JPEG with camera EXIF"


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "I;16"])
def test_large_png_is_band_reduced_like_a_full_decode(mode, monkeypatch):
    """A PNG at least twice the target is decoded band by band (bounded memory), within two levels (rounding of
    the box reduce before the area resample) of the full decode."""
    from pipeline.imaging import pngband

    base = textured(400, 300, seed=3)
    big = cv2.resize(base, (1600, 1200), interpolation=cv2.INTER_CUBIC)
    if mode == "RGB":
        im = Image.fromarray(big)
    elif mode == "RGBA":
        im = Image.fromarray(np.dstack([big, np.full(big.shape[:2], 180, np.uint8)]))
    elif mode == "L":
        im = Image.fromarray(big[..., 1])
    else:
        im = Image.fromarray(big[..., 1].astype(np.uint16) * 257)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = buf.getvalue()
    calls: list[int] = []
    real = pngband.reduce_png
    monkeypatch.setattr(pngband, "reduce_png", lambda fp, k, **kw: calls.append(k) or real(fp, k, **kw))

    def tgt(w: int, h: int) -> tuple[int, int]:
        return 500, 375

    fast, _ = ingest_mod._decode(data, "big.png", target=tgt, check=None, flatten=(255, 255, 255), orient=True)
    slow, _ = ingest_mod._decode(data, "big.png", target=tgt, check=None, flatten=(255, 255, 255), orient=True,
                                 use_draft=False)
    assert calls == [3]
    assert fast.shape == slow.shape == (375, 500, 3)
    diff = np.abs(fast.astype(int) - slow.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.5
