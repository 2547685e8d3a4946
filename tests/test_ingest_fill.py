"""Tests for the ingest stage's product fill (``[canvas] min_fill``): the plan, the canvas, the frame mapping
trace relies on, roles, the upscale limit and the fill recorded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.files import SourceBytes
from pipeline.imaging.productbox import fill_of, product_box
from pipeline.presets import CanvasSpec
from pipeline.stages import ingest as ig

WHITE = (255, 255, 255)


def spec(**kw) -> CanvasSpec:
    base = {"width": 1000, "height": 1000, "fit": "pad", "min_fill": 0.85, "max_upscale": 1.5}
    return CanvasSpec(**(base | kw))  # type: ignore[arg-type]


def on_white(w: int, h: int, box: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    """A textured product filling ``box`` exactly, on pure white, with coloured markers to follow pixels."""
    rng = np.random.default_rng(seed)
    a = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = box
    a[y0:y1, x0:x1] = rng.integers(20, 200, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    return a


def photo_of(a: np.ndarray, tmp_path: Path, sp: CanvasSpec, role: str | None = "main") -> ig.Photo:
    path = tmp_path / "p.png"
    Image.fromarray(a).save(path)
    data = path.read_bytes()
    photo, problems = ig.open_photo(SourceBytes(data, "0" * 64, path.stat()), "p.png", [sp], [role])
    assert photo is not None and problems == [None]
    return photo


@settings(max_examples=300, deadline=None)
@given(w=st.integers(20, 4000), h=st.integers(20, 4000), bw=st.integers(50, 2500), bh=st.integers(50, 2500),
       fx=st.tuples(st.floats(0, 0.9), st.floats(0.05, 1.0)), fy=st.tuples(st.floats(0, 0.9), st.floats(0.05, 1.0)),
       target=st.floats(0.3, 1.0), limit=st.floats(1.0, 3.0))
def test_plan_fill_properties(w, h, bw, bh, fx, fy, target, limit):
    x0 = fx[0] * w
    x1 = min(w, x0 + fx[1] * w)
    y0 = fy[0] * h
    y1 = min(h, y0 + fy[1] * h)
    sp = CanvasSpec(width=bw, height=bh, fit="pad", min_fill=target, max_upscale=limit)
    base = ig.plan_geometry(w, h, sp)
    plan = ig.plan_fill(w, h, sp, (x0, y0, x1, y1))
    (sw, sh), (ox, oy) = plan.scaled, plan.offset
    s0 = base.scaled[0] / w
    s = sw / w
    assert plan.canvas == (bw, bh)
    assert sw >= base.scaled[0] and sh >= base.scaled[1]  # never smaller than the plain pad
    assert s <= max(s0, limit) + 1 / w + 1e-9  # never past the upscale limit (rounding: one pixel)
    # the product stays in the frame (rounding: one pixel)
    assert x0 * sw / w + ox >= -1 and x1 * sw / w + ox <= bw + 1
    assert y0 * sh / h + oy >= -1 and y1 * sh / h + oy <= bh + 1
    # per axis: a photo larger than the frame still covers it; a smaller one stays whole inside it
    for size, off, box_side in ((sw, ox, bw), (sh, oy, bh)):
        if size >= box_side:
            assert off <= 0 and off + size >= box_side
        else:
            assert 0 <= off <= box_side - size
    assert plan.content_box == (max(0, ox), max(0, oy), min(bw, ox + sw), min(bh, oy + sh))
    planned = max((x1 - x0) * sw / w / bw, (y1 - y0) * sh / h / bh)
    reachable = target / max((x1 - x0) / bw, (y1 - y0) / bh) <= max(s0, limit)
    if plan != base and reachable:
        assert planned >= target - 1.5 / min(bw, bh)  # rounding of the scaled size


def test_fill_canvas_reaches_the_target_centred_on_exact_white(tmp_path):
    a = on_white(800, 800, (200, 100, 620, 700))  # product 420 x 600: 60 % of the frame at the pad scale
    sp = spec()
    canvas = ig.canvas_for(photo_of(a, tmp_path, sp), sp, "main")
    px = canvas.pixels
    assert px.shape == (1000, 1000, 3)
    fill = canvas.fill
    assert fill is not None and fill.met and fill.target == 0.85 and fill.reached >= 0.85
    box = product_box(px, WHITE)
    assert box is not None and tuple(fill.box) == box and fill_of(box, (1000, 1000)) == fill.reached
    x0, y0, x1, y1 = box
    assert abs(x0 - (1000 - x1)) <= 2 and abs(y0 - (1000 - y1)) <= 2  # centred
    assert 1.0 < fill.upscale <= 1.5 and canvas.warnings == ()
    outside = np.ones(px.shape[:2], bool)
    outside[y0 - 1:y1 + 1, x0 - 1:x1 + 1] = False  # the product's resampled edge: one pixel
    assert (px[outside] == 255).all()  # the white kept exactly (255, 255, 255): no off-white halo


def test_frame_maps_photo_pixels_into_the_export(tmp_path):
    """What trace relies on: export_x = u * scaled_w + offset_x, also when the photo is trimmed (negative offset)."""
    a = on_white(1200, 900, (150, 100, 1050, 800))  # wide margins: enlarged and trimmed on both axes
    markers = [(300, 200), (900, 700), (600, 450), (160, 110)]
    for i, (x, y) in enumerate(markers):
        a[y - 6:y + 6, x - 6:x + 6] = (250, 10 * i, 5)
    sp = spec(width=900, height=900)
    canvas = ig.canvas_for(photo_of(a, tmp_path, sp), sp, "main")
    (sw, sh), (ox, oy) = canvas.scaled, canvas.offset
    assert ox < 0  # trimmed: the scaled photo is wider than the frame
    for i, (x, y) in enumerate(markers):
        ex, ey = round(x / 1200 * sw + ox), round(y / 900 * sh + oy)
        assert 0 <= ex < 900 and 0 <= ey < 900
        r, g, b = (int(v) for v in canvas.pixels[ey, ex])
        assert (abs(r - 250), abs(g - 10 * i), abs(b - 5)) < (12, 12, 12), (i, (r, g, b))


def test_shortfall_at_the_upscale_limit_is_recorded_not_failed(tmp_path):
    a = on_white(500, 500, (150, 150, 350, 350))  # product 200 px: 85 % of 1000 needs 4.25x
    sp = spec(max_upscale=2.0)
    canvas = ig.canvas_for(photo_of(a, tmp_path, sp), sp, "main")
    fill = canvas.fill
    assert fill is not None and not fill.met
    assert fill.upscale == pytest.approx(2.0, abs=0.01)
    assert fill.reached == pytest.approx(0.40, abs=0.01)
    assert canvas.warnings and "max_upscale 2" in canvas.warnings[0]
    assert fill.as_dict()["met"] is False


def test_only_the_fill_roles_get_the_fill(tmp_path):
    a = on_white(800, 800, (200, 100, 620, 700))
    sp = spec()
    photo = photo_of(a, tmp_path, sp)
    plain = ig.canvas_for(photo, dataclasses.replace(sp, min_fill=0.0))
    for role in ("gallery", None):
        other = ig.canvas_for(photo, sp, role)
        assert other.fill is None and np.array_equal(other.pixels, plain.pixels)
        assert (other.scaled, other.offset) == (plain.scaled, plain.offset)
    assert ig.canvas_for(photo, dataclasses.replace(sp, fill_roles=("main", "gallery")), "gallery").fill is not None


def test_a_product_that_already_fills_gets_the_plain_pad_canvas(tmp_path):
    a = on_white(1000, 800, (40, 100, 960, 700))  # 92 % of the width already
    sp = spec()
    photo = photo_of(a, tmp_path, sp)
    canvas = ig.canvas_for(photo, sp, "main")
    plain = ig.canvas_for(photo, dataclasses.replace(sp, min_fill=0.0))
    assert np.array_equal(canvas.pixels, plain.pixels) and canvas.offset == plain.offset
    assert canvas.fill is not None and canvas.fill.met and canvas.fill.upscale == 1.0


def test_transparent_and_rotated_sources(tmp_path):
    rgba = np.zeros((600, 400, 4), np.uint8)
    rgba[100:500, 150:250] = (30, 90, 160, 255)  # a tall product on a transparent background
    path = tmp_path / "r.png"
    Image.fromarray(rgba, "RGBA").save(path)
    sp = spec(max_upscale=2.5)
    data = path.read_bytes()
    photo, _ = ig.open_photo(SourceBytes(data, "0" * 64, path.stat()), "r.png", [sp], ["main"])
    assert photo is not None
    canvas = ig.canvas_for(photo, sp, "main")
    assert canvas.fill is not None and canvas.fill.met
    # stored rotated (EXIF orientation 6): the box is found on the upright photo
    a = on_white(900, 600, (100, 200, 800, 400))
    stored = np.ascontiguousarray(np.rot90(a, 1))  # orientation 6 turns this back into ``a``
    exif = Image.Exif()
    exif[0x0112] = 6
    jpg = tmp_path / "o.jpg"
    Image.fromarray(stored).save(jpg, quality=95, exif=exif)
    photo, _ = ig.open_photo(SourceBytes(jpg.read_bytes(), "0" * 64, jpg.stat()), "o.jpg", [sp], ["main"])
    assert photo is not None and photo.upright_size == (900, 600)
    canvas = ig.canvas_for(photo, sp, "main")
    assert canvas.fill is not None and canvas.fill.met
    box = product_box(canvas.pixels, WHITE)
    assert box is not None and box[2] - box[0] > box[3] - box[1]  # still landscape: upright


def test_orient_view_equals_orient() -> None:
    a = np.random.default_rng(1).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    for o in range(1, 9):
        assert np.array_equal(ig._orient_view(a, o), ig._orient(a, o)), o
        assert np.array_equal(ig._orient_view(a[..., 0], o), ig._orient(a, o)[..., 0]), o


@settings(max_examples=60, deadline=None)
@given(o=st.integers(1, 8), h=st.integers(1, 9), w=st.integers(1, 9), channels=st.sampled_from([0, 1, 3, 4]),
       wide=st.booleans(), seed=st.integers(0, 2**16))
def test_orient_is_the_numpy_orientation_made_contiguous(o, h, w, channels, wide, seed) -> None:
    """OpenCV does the flips and rotations: the same values as numpy's view, for masks, RGB, RGBA and 16 bits."""
    shape = (h, w) if channels == 0 else (h, w, channels)
    a = np.random.default_rng(seed).integers(0, 65535 if wide else 255, shape).astype(np.uint16 if wide else np.uint8)
    got = ig._orient(a, o)
    assert got.flags.c_contiguous and got.dtype == a.dtype
    assert np.array_equal(got, np.ascontiguousarray(ig._orient_view(a, o)))
    assert np.array_equal(ig._orient(a[:, ::-1], o), np.ascontiguousarray(ig._orient_view(a[:, ::-1], o)))


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), colour=st.tuples(*[st.integers(0, 255)] * 3))
def test_solid_is_one_colour_everywhere(h, w, colour) -> None:
    out = ig._solid(h, w, colour)
    want = np.empty((h, w, 3), np.uint8)
    want[:] = np.asarray(colour, np.uint8)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8 and np.array_equal(out, want)


def test_decode_covers_the_source_for_a_fill_canvas() -> None:
    sp = spec()
    # the scale is known only after the box is found: up to FILL_DECODE_HEADROOM x the pad size, within the source
    assert ig.decode_size(4000, 3000, sp) == (1500, 1125)
    assert ig.decode_size(1200, 900, sp) == (1200, 900)
    assert ig.decode_size(4000, 3000, dataclasses.replace(sp, min_fill=0.0)) == (1000, 750)


def test_ingest_job_applies_the_fill_on_main_only(tmp_path, make_job, make_preset):
    a = on_white(800, 800, (200, 100, 620, 700))
    path = tmp_path / "src.png"
    Image.fromarray(a).save(path)
    preset = make_preset(canvas=spec())
    main = ig.ingest(make_job(path, role="main", position=0, preset=preset))
    gallery = ig.ingest(make_job(path, role="gallery", position=1, preset=preset))
    assert main.fill is not None and main.fill.met and gallery.fill is None


def test_zalando_keeps_a_landscape_gallery_shot_whole(tmp_path):
    """Zalando's frame is 1:1.44 upright; its rules allow cropping only on model views and only while the article
    stays recognisable (which a pipeline cannot check on a scene), so a landscape shot is letterboxed whole, never
    cropped: the photo spans the frame's width, white above and below."""
    from pipeline.presets import load_preset

    sp = load_preset("zalando").canvas
    assert sp.fit == "pad" and not sp.min_fill
    rng = np.random.default_rng(3)
    a = rng.integers(0, 200, (1280, 1920, 3), dtype=np.uint8)  # a scene: no white to trim
    photo = photo_of(a, tmp_path, sp, "gallery")
    canvas = ig.canvas_for(photo, sp, "gallery")
    x0, y0, x1, y1 = canvas.content_box
    assert canvas.pixels.shape == (2600, 1801, 3) and canvas.offset[0] == 0 and canvas.scaled[0] == 1801
    assert (x0, x1) == (0, 1801) and canvas.scaled == (x1 - x0, y1 - y0)  # the whole photo, nothing cropped
    assert (canvas.pixels[:y0] == 255).all() and (canvas.pixels[y1:] == 255).all()


def test_a_blank_photo_is_exported_plain_and_said(tmp_path):
    sp = spec()
    photo = photo_of(np.full((600, 600, 3), 255, np.uint8), tmp_path, sp)
    canvas = ig.canvas_for(photo, sp, "main")
    assert canvas.fill is not None and not canvas.fill.met and canvas.fill.reached == 0.0
    assert "no product found" in canvas.warnings[0] and (canvas.pixels == 255).all()
