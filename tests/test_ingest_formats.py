"""Tests for ingest's input formats beyond Pillow's own: HEIC/HEIF (pillow-heif), camera RAW (rawpy, the raw
extra), PSD composites and multi-page TIFF, all with files made in the test."""

from __future__ import annotations

import io
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps

from pipeline.errors import ImageError
from pipeline.presets import CanvasSpec
from pipeline.stages import ingest as ingest_mod
from pipeline.stages.ingest import ingest, load_rgb, open_photo, read_source
from tests.helpers import REPO
from tests.test_ingest import D65, P3, SRGB, _srgb_encode, matrix_trc_icc, rgb_to_xyz_matrix, textured

pillow_heif = pytest.importorskip("pillow_heif")


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ------------------------------------------------------------------------------------------------------------------
# HEIC / HEIF


def heic_bytes(img: np.ndarray, *, orientation: int = 1, icc: bytes | None = None, capture: bool = True) -> bytes:
    """A real HEIC (HEVC in HEIF) written by pillow-heif, with EXIF (orientation, camera, capture date)."""
    pillow_heif.register_heif_opener()  # the writer; ingest registers the reader itself
    exif = Image.Exif()
    exif[0x0112] = orientation
    if capture:
        exif[0x010F] = "Apple"
        exif[0x0110] = "iPhone 15 Pro"
        exif.get_ifd(0x8769)[0x9003] = "2025:06:07 08:09:10"
    buf = io.BytesIO()
    kw = {"icc_profile": icc} if icc else {}
    Image.fromarray(img).save(buf, "HEIF", exif=exif.tobytes(), quality=-1, **kw)  # -1: lossless-ish (max)
    data = buf.getvalue()
    assert data[4:12] == b"ftypheic"
    return data


@pytest.mark.parametrize("orientation", range(1, 9))
def test_heic_is_upright_exactly_once(orientation):
    """pillow-heif writes the EXIF orientation as HEIF irot/imir transforms too; libheif applies those and
    pillow-heif resets the EXIF tag to 1, so ingest must not rotate again. The expectation is Pillow's own
    exif_transpose of the stored image."""
    src = textured(96, 64, seed=orientation)
    stored = Image.fromarray(src)
    ex = stored.getexif()
    ex[0x0112] = orientation
    stored.info["exif"] = ex.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(stored))
    px, cap = load_rgb(heic_bytes(src, orientation=orientation))
    assert px.shape == expected.shape
    assert mean_diff(px, expected) < 4
    # and it is not any other orientation of the same picture (the picture is asymmetric)
    for other in (np.rot90(expected, 1), np.rot90(expected, 2), expected[:, ::-1], expected[::-1]):
        if other.shape == expected.shape:
            assert mean_diff(px, np.ascontiguousarray(other)) > 15
    assert (cap.original_width, cap.original_height) == (expected.shape[1], expected.shape[0])
    assert cap.orientation == 1  # nothing left to apply


def test_heic_capture_data_icc_and_pipeline_canvas(tmp_path, make_job, make_preset):
    p3 = matrix_trc_icc(P3, 2.2, "Test Display P3 gamma 2.2")
    src = np.full((64, 96, 3), (200, 60, 60), np.uint8)
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(heic_bytes(src, orientation=6, icc=p3))
    canvas = ingest(make_job(path, preset=make_preset(canvas=CanvasSpec(width=48, height=48, fit="fit"))))
    cap = canvas.capture
    assert (cap.make, cap.model, cap.datetime_original) == ("Apple", "iPhone 15 Pro", "2025:06:07 08:09:10")
    assert cap.source_format == "HEIF" and cap.icc_profile == "Test Display P3 gamma 2.2"
    assert (cap.original_width, cap.original_height) == (64, 96)  # upright: portrait
    assert canvas.pixels.shape == (48, 32, 3)
    # converted from P3 to sRGB: the independent expectation of test_ingest's ICC test
    m = np.linalg.inv(rgb_to_xyz_matrix(SRGB, D65)) @ rgb_to_xyz_matrix(P3, D65)
    expected = _srgb_encode(m @ (np.array([200, 60, 60]) / 255.0) ** 2.2)
    got = canvas.pixels[24, 16].astype(float)
    assert np.abs(got - expected).max() <= 6 and np.abs(expected - (200, 60, 60)).max() > 15, (got, expected)


def test_heic_without_capture_exif_and_truncated(tmp_path):
    data = heic_bytes(textured(40, 30), capture=False)
    px, cap = load_rgb(data)
    assert px.shape == (30, 40, 3) and cap.make is None and cap.datetime_original is None
    with pytest.raises(ImageError, match="corrupt or truncated HEIC/HEIF") as exc:
        load_rgb(data[: len(data) // 2])
    assert exc.value.stage == "ingest"


def test_pillow_heif_is_registered_lazily():
    """Importing ingest does not load pillow-heif (and libheif); the first HEIC file does."""
    code = ("import sys; from pipeline.stages import ingest; assert 'pillow_heif' not in sys.modules; "
            "print(ingest.sniff_format(b'\\x00\\x00\\x00\\x18ftypheic'))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "HEIC/HEIF", r.stderr


def test_heic_without_pillow_heif_says_what_is_missing(tmp_path):
    path = tmp_path / "phone.heic"
    path.write_bytes(heic_bytes(textured(40, 30)))
    code = ("import sys; sys.modules['pillow_heif'] = None\n"
            "from pipeline.errors import ImageError\nfrom pipeline.stages.ingest import load_rgb\n"
            "try:\n    load_rgb(sys.argv[1])\nexcept ImageError as e:\n    print(e.stage, e)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ingest ") and "needs pillow-heif" in r.stdout, r


# ------------------------------------------------------------------------------------------------------------------
# Camera RAW: DNG written by pidng from raw sensor data, developed by rawpy

# linear sRGB -> XYZ (D65); DNG's ColorMatrix1 is XYZ -> camera, so a camera with per-channel gains g has
# ColorMatrix1 = diag(g) @ inv(M)
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def dng_bytes(scene: np.ndarray, *, orientation: int = 1, gains=(0.5, 1.0, 0.7), illuminant=(1.0, 1.0, 1.0),
              exif: bool = True) -> bytes:
    """A DNG (pidng) of ``scene`` (H x W x 3 linear sRGB, 0..1) as an RGGB Bayer sensor with per-channel
    ``gains`` would record it under a light of colour ``illuminant``; AsShotNeutral is the camera's white
    balance for that light (what a camera stores)."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

    h, w, _ = scene.shape
    cam = scene * np.asarray(illuminant) * np.asarray(gains)
    mosaic = np.empty((h, w))
    mosaic[0::2, 0::2] = cam[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = cam[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = cam[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = cam[1::2, 1::2, 2]
    black, white = 256, 4095
    data = (black + np.clip(mosaic, 0, 1) * (white - black)).round().astype(np.uint16)
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, orientation)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevel, black)
    t.set(Tag.WhiteLevel, white)
    matrix = np.diag(gains) @ np.linalg.inv(_SRGB_TO_XYZ)
    t.set(Tag.ColorMatrix1, [[round(v * 10000), 10000] for v in matrix.flatten()])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    neutral = np.asarray(illuminant) * np.asarray(gains)
    neutral = neutral / neutral[1]
    t.set(Tag.AsShotNeutral, [[round(v * 10000), 10000] for v in neutral])
    t.set(Tag.UniqueCameraModel, "TestCam Model X")
    if exif:
        t.set(Tag.Make, "TestCam")
        t.set(Tag.Model, "Model X")
        t.set(Tag.DateTimeOriginal, "2025:01:02 03:04:05")
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    r = RAW2DNG()
    r.options(t, path="", compress=False)
    return bytes(r.convert(data))


def raw_scene(h: int = 64, w: int = 96) -> np.ndarray:
    """Grey (linear 0.25) with a red top-left quadrant: asymmetric, with a neutral patch to judge white balance."""
    scene = np.full((h, w, 3), 0.25)
    scene[: h // 2, : w // 2] = (0.6, 0.05, 0.05)
    return scene


def test_dng_is_developed_upright_with_camera_white_balance_and_capture(tmp_path):
    pytest.importorskip("rawpy")
    warm = (1.0, 0.75, 0.45)  # a tungsten-ish light: daylight balance would leave the grey orange
    data = dng_bytes(raw_scene(), orientation=6, illuminant=warm)
    path = tmp_path / "shot.dng"
    path.write_bytes(data)
    px, cap = load_rgb(path)
    assert px.shape == (96, 64, 3)  # orientation 6: portrait, upright
    grey = px[60:90, 5:25].reshape(-1, 3).astype(int).mean(0)  # upright bottom-left: grey
    assert np.ptp(grey) <= 6, grey  # neutral: the as-shot white balance was used
    # the stored top-left red quadrant is upright top-right after a 90 degree clockwise turn
    r, g, b = px[10, 50].astype(int)
    assert r > 150 and r > g + 80 and r > b + 80, (r, g, b)
    assert np.ptp(px[10, 10].astype(int)) <= 6  # top-left upright is grey
    assert (cap.make, cap.model, cap.datetime_original) == ("TestCam", "Model X", "2025:01:02 03:04:05")
    assert (cap.original_width, cap.original_height, cap.orientation, cap.source_format) == (64, 96, 6, "DNG")

    import rawpy  # the same file with daylight balance is visibly off: the test above can tell them apart

    with rawpy.imread(io.BytesIO(data)) as raw:
        daylight = raw.postprocess(use_camera_wb=False, output_bps=8, user_flip=0)
    d = daylight[45:60, 60:90].reshape(-1, 3).astype(int).mean(0)
    assert d[0] - d[2] > 30, d


def test_dng_draft_half_size_for_small_targets(tmp_path, make_job, make_preset):
    pytest.importorskip("rawpy")
    path = tmp_path / "big.dng"
    path.write_bytes(dng_bytes(raw_scene(128, 192)))
    specs = [make_preset(canvas=CanvasSpec(width=60, height=60, fit="fit")).canvas]
    photo, problems = open_photo(read_source(str(path), "big.dng"), "big.dng", specs)
    assert photo is not None and problems == [None]
    assert photo.pixels.shape == (64, 96, 3)  # LibRaw's half-size mode: still covers the 60 px target
    assert photo.upright_size == (192, 128)
    full, _ = load_rgb(path)
    half = np.asarray(Image.fromarray(full).resize((96, 64), Image.Resampling.BOX))
    assert mean_diff(photo.pixels, half) < 12


def test_raw_by_suffix_and_corrupt_raw(tmp_path):
    pytest.importorskip("rawpy")
    # a TIFF-structured file named .nef goes to LibRaw, which says it cannot read it (not Pillow decoding a preview)
    tif = io.BytesIO()
    Image.fromarray(textured(32, 24)).save(tif, "TIFF")
    nef = tmp_path / "DSC_0001.NEF"
    nef.write_bytes(tif.getvalue())
    with pytest.raises(ImageError, match="NEF") as exc:
        load_rgb(nef)
    assert exc.value.stage == "ingest"
    # the same bytes as .tif are a TIFF
    tiff = tmp_path / "plain.tif"
    tiff.write_bytes(tif.getvalue())
    assert load_rgb(tiff)[0].shape == (24, 32, 3)
    data = dng_bytes(raw_scene())
    with pytest.raises(ImageError, match="DNG"):
        load_rgb(data[:600])


@pytest.mark.parametrize("head,kind", [
    (b"II*\x00\x10\x00\x00\x00CR\x02\x00", "CR2"),
    (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom", "CR3"),
    (b"FUJIFILMCCD-RAW 0201FF383501", "RAF"),
    (b"IIRO\x08\x00\x00\x00", "ORF"),
    (b"IIU\x00\x18\x00\x00\x00", "RW2"),
])
def test_raw_formats_are_recognised_by_content(head, kind):
    """Routed to LibRaw by their own marks whatever the name (these stubs are not real RAW files, so LibRaw
    refuses them: the message names the RAW format, never "not an image")."""
    pytest.importorskip("rawpy")
    assert ingest_mod._raw_format(head + b"\x00" * 200, "x.jpg") == kind
    with pytest.raises(ImageError, match=kind) as exc:
        load_rgb(head + b"\x00" * 200)
    assert exc.value.stage == "ingest" and "not an image" not in str(exc.value)


def test_dng_without_capture_exif(tmp_path):
    pytest.importorskip("rawpy")
    px, cap = load_rgb(dng_bytes(raw_scene(), exif=False))
    assert px.shape == (64, 96, 3)
    assert (cap.make, cap.model, cap.datetime_original, cap.orientation) == (None, None, None, 1)


def test_raw_without_the_extra_is_a_failure_saying_how_to_enable_it(tmp_path):
    """rawpy made unimportable in the (real) process, as on an install without the raw extra."""
    path = tmp_path / "shot.dng"
    path.write_bytes(dng_bytes(raw_scene()))
    code = ("import sys; sys.modules['rawpy'] = None\n"
            "from pipeline.errors import ImageError\nfrom pipeline.stages.ingest import load_rgb\n"
            "try:\n    load_rgb(sys.argv[1])\nexcept ImageError as e:\n    print(e.stage, e)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ingest ") and "RAW needs the raw extra: pip install 'catalogmark[raw]'" in r.stdout


# ------------------------------------------------------------------------------------------------------------------
# PSD (composite) and multi-page TIFF (first page)


def _packbits_row(row: bytes) -> bytes:
    out = b""
    for i in range(0, len(row), 128):  # literal runs only: valid PackBits, all a reader has to handle
        chunk = row[i : i + 128]
        out += bytes([len(chunk) - 1]) + chunk
    return out


def psd_bytes(img: np.ndarray, *, rle: bool = False) -> bytes:
    """A minimal valid PSD (Adobe Photoshop File Formats Specification, version 1): header, empty colour mode
    data, image resources and layer sections, then the composite image data, planar, raw or PackBits (RLE).
    Hand-built because Pillow reads PSD but cannot write it."""
    h, w, c = img.shape
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, c, h, w, 8, 3)  # version 1, depth 8, mode 3 = RGB
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, image resources, layer and mask info: empty
    planes = [img[..., k] for k in range(c)]
    if not rle:
        return header + sections + struct.pack(">H", 0) + b"".join(p.tobytes() for p in planes)
    rows = [_packbits_row(p[y].tobytes()) for p in planes for y in range(h)]
    return (header + sections + struct.pack(">H", 1) + b"".join(struct.pack(">H", len(r)) for r in rows)
            + b"".join(rows))


@pytest.mark.parametrize("rle", [False, True])
def test_psd_composite(tmp_path, rle):
    src = textured(150, 40, seed=3)  # wider than one PackBits run
    path = tmp_path / "layout.psd"
    path.write_bytes(psd_bytes(src, rle=rle))
    px, cap = load_rgb(path)
    assert np.array_equal(px, src) and cap.source_format == "PSD"


def test_multipage_tiff_uses_the_first_page(tmp_path):
    first, second = textured(40, 30, seed=1), textured(80, 60, seed=2)
    path = tmp_path / "layers.tif"
    Image.fromarray(first).save(path, "TIFF", save_all=True, append_images=[Image.fromarray(second)])
    with Image.open(path) as im:
        assert im.n_frames == 2
    px, _ = load_rgb(path)
    assert np.array_equal(px, first)


def test_truncated_psd_is_corrupt_not_unsupported():
    msg = ""
    try:
        load_rgb(b"8BPS\x00\x01" + b"\x00" * 64)
    except ImageError as exc:
        msg = str(exc)
    assert "PSD" in msg and "unsupported" not in msg, msg


def test_supported_text_names_the_new_formats():
    assert "HEIF" in ingest_mod.SUPPORTED_FORMATS and "PSD" in ingest_mod.SUPPORTED_FORMATS
    assert "HEIC/HEIF" in ingest_mod._SUPPORTED_TEXT and "RAW" in ingest_mod._SUPPORTED_TEXT

