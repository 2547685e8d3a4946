"""Tests for the watermark stage: keyed visible mark (geometry, placement, contrast, clipping) and the invisible seam."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.errors import ImageError
from pipeline.keys import OwnerKey
from pipeline.marks.visible import render_mark
from pipeline.models import PAYLOAD_BITS, Canvas, CaptureInfo, ImageJob, VisibleMark
from pipeline.presets import MarkPolicy, VisibleStyle
from pipeline.stages import watermark as wm
from tests.conftest import FIXED_SECRET, product_on_white

SHA = "ab" * 32
VISIBLE_ONLY = {"main": MarkPolicy(visible=True, invisible=False), "gallery": MarkPolicy(visible=True, invisible=False)}
NO_MARKS = {"main": MarkPolicy(visible=False, invisible=False), "gallery": MarkPolicy(visible=False, invisible=False)}


# ---------------------------------------------------------------------------------------------------------------
# Fixtures and helpers


def make_canvas(pixels: np.ndarray, sha: str = SHA, content_box: tuple[int, int, int, int] | None = None) -> Canvas:
    h, w = pixels.shape[:2]
    return Canvas(pixels=pixels, content_box=content_box or (0, 0, w, h), source_sha256=sha, capture=CaptureInfo())


@pytest.fixture
def visible_preset(make_preset):
    """Visible mark on both roles, no invisible mark, nothing pure white."""
    return make_preset(marks=VISIBLE_ONLY, pure_white_roles=())


@pytest.fixture
def job_for(make_job, tmp_path: Path):
    def factory(preset, *, role: str = "gallery", sku: str = "SKU1", position: int = 1) -> ImageJob:
        return make_job(tmp_path / "src.jpg", sku=sku, role=role, position=position if role == "gallery" else 0,
                        preset=preset)

    return factory


@pytest.fixture
def logo_file(tmp_path: Path) -> Path:
    """A transparent RGBA logo: a filled ring, 120 x 120."""
    yy, xx = np.mgrid[0:120, 0:120]
    r = np.hypot(xx - 60, yy - 60)
    rgba = np.zeros((120, 120, 4), np.uint8)
    rgba[..., :3] = (200, 30, 30)
    rgba[..., 3] = np.where((r < 55) & (r > 25), 255, 0)
    path = tmp_path / "logo.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def changed_mask(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=2)


def small_product(size=(400, 300), box=(40, 30, 200, 150), colour=(60, 90, 140)) -> np.ndarray:
    """A flat-ish rectangular 'product' away from the centre, on pure white."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = box
    rng = np.random.default_rng(1)
    patch = np.clip(np.array(colour, np.float32) + rng.normal(0, 6, (y1 - y0, x1 - x0, 3)), 0, 254)
    img[y0:y1, x0:x1] = patch.astype(np.uint8)
    return img


# ---------------------------------------------------------------------------------------------------------------
# Keyed parameters


def test_same_key_and_identity_give_identical_params_and_pixels(owner_key, owner, visible_preset, job_for):
    canvas = make_canvas(product_on_white())
    job = job_for(visible_preset)
    a = wm.watermark(canvas, job, owner, owner_key)
    b = wm.watermark(make_canvas(product_on_white()), job, owner, OwnerKey(FIXED_SECRET))
    assert a.visible is not None and a.visible == b.visible
    assert np.array_equal(a.pixels, b.pixels)
    assert a.payload is None
    assert changed_mask(a.pixels, canvas.pixels).sum() > 200  # a mark was drawn


def test_different_identity_or_key_gives_different_params(owner_key, other_key, visible_preset):
    style, size = visible_preset.visible_style, (640, 480)
    mask = wm.product_mask(product_on_white(), (255, 255, 255), (0, 0, 640, 480))
    base = wm.visible_params(owner_key, f"{SHA}|SKU1/gallery/1", size, style, mask)
    others = [
        wm.visible_params(owner_key, f"{SHA}|SKU1/gallery/2", size, style, mask),
        wm.visible_params(owner_key, f"{'cd' * 32}|SKU1/gallery/1", size, style, mask),
        wm.visible_params(other_key, f"{SHA}|SKU1/gallery/1", size, style, mask),
    ]
    for other in others:
        assert (other.x, other.y) != (base.x, base.y)
        assert other.scale != base.scale and other.rotation != base.rotation and other.opacity != base.opacity
        assert other.warp != base.warp


def test_watermark_uses_source_sha_and_job_identity(owner_key, owner, visible_preset, job_for):
    img = product_on_white()
    marked = wm.watermark(make_canvas(img), job_for(visible_preset), owner, owner_key)
    mask = wm.product_mask(img, (255, 255, 255), (0, 0, 640, 480))
    expected = wm.visible_params(owner_key, f"{SHA}|SKU1/gallery/1", (640, 480), visible_preset.visible_style, mask)
    assert marked.visible == dataclasses.replace(expected, tone=marked.visible.tone)
    moved = wm.watermark(make_canvas(img), job_for(visible_preset, position=2), owner, owner_key)
    assert moved.visible != marked.visible and not np.array_equal(moved.pixels, marked.pixels)


_MASK = wm.product_mask(product_on_white((320, 240)), (255, 255, 255), (0, 0, 320, 240))


@settings(max_examples=60, deadline=None)
@given(identity=st.text(min_size=0, max_size=40),
       style=st.builds(VisibleStyle,
                       opacity=st.tuples(st.floats(0.05, 0.4), st.floats(0.4, 0.9)),
                       scale=st.tuples(st.floats(0.05, 0.3), st.floats(0.3, 0.8)),
                       rotation=st.floats(0.0, 45.0),
                       warp=st.floats(0.0, 0.2)),
       use_mask=st.booleans())
def test_params_stay_in_style_ranges(identity, style, use_mask):
    key = OwnerKey(FIXED_SECRET)
    mark = wm.visible_params(key, identity, (320, 240), style, _MASK if use_mask else None)
    assert style.scale[0] <= mark.scale <= style.scale[1]
    assert style.opacity[0] <= mark.opacity <= style.opacity[1]
    assert abs(mark.rotation) <= style.rotation
    assert len(mark.warp) == 8 and all(abs(v) <= style.warp for v in mark.warp)
    assert 0.0 <= mark.x <= 1.0 and 0.0 <= mark.y <= 1.0
    if use_mask:  # the centre lies within the product's bounding box (where the footprint allows)
        ys, xs = np.nonzero(_MASK)
        assert xs.min() - 1 <= mark.x * 320 <= xs.max() + 1 and ys.min() - 1 <= mark.y * 240 <= ys.max() + 1


@given(identity=st.text(min_size=0, max_size=40), tone=st.sampled_from(["light", "dark"]))
def test_mark_params_survive_the_ledgers_json(identity, tone):
    """What trace reads back from a ledger record is exactly the mark that was drawn."""
    import json

    mark = dataclasses.replace(wm.visible_params(OwnerKey(FIXED_SECRET), identity, (320, 240), VisibleStyle(), None),
                               tone=tone)
    assert VisibleMark.from_dict(json.loads(json.dumps(mark.as_dict()))) == mark


# ---------------------------------------------------------------------------------------------------------------
# Placement over the product


@pytest.mark.parametrize("position", range(1, 7))
def test_mark_sits_over_the_product(owner_key, owner, visible_preset, job_for, position):
    img = small_product()
    marked = wm.watermark(make_canvas(img), job_for(visible_preset, position=position), owner, owner_key)
    mask = wm.product_mask(img, (255, 255, 255), (0, 0, 400, 300))
    layer = render_mark(owner, marked.visible, (400, 300))
    ink = layer[..., 3] > 0.5 * 255 * marked.visible.opacity  # the glyphs' core, not the outline fringe
    assert ink.sum() > 100
    # the product covers 16% of the canvas; the mark's ink must fall mostly on it
    assert mask[ink].mean() >= 0.6, mask[ink].mean()


def ring_product(size=(400, 400)) -> np.ndarray:
    """A thick ring: its bounding box is mostly empty in the middle, so only scoring finds the product."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - w / 2, yy - h / 2)
    img = np.full((h, w, 3), 255, np.uint8)
    img[(r > 0.34 * w) & (r < 0.48 * w)] = (70, 110, 60)
    return img


def test_mark_prefers_the_product_over_empty_space_inside_its_bounding_box(owner_key, owner, visible_preset,
                                                                             job_for):
    img = ring_product()
    mask = wm.product_mask(img, (255, 255, 255), (0, 0, 400, 400))
    on_product = []
    for position in range(1, 13):
        marked = wm.watermark(make_canvas(img), job_for(visible_preset, position=position), owner, owner_key)
        cx, cy = round(marked.visible.x * 400), round(marked.visible.y * 400)
        on_product.append(mask[min(cy, 399), min(cx, 399)])
    # the ring covers ~40% of its bounding box; keyed scoring puts (nearly) every mark centre on it
    assert sum(on_product) >= 10, on_product


def test_no_product_falls_back_to_the_centre(owner_key, owner, visible_preset, job_for):
    blank = np.full((300, 400, 3), 255, np.uint8)
    marked = wm.watermark(make_canvas(blank), job_for(visible_preset), owner, owner_key)
    assert (marked.visible.x, marked.visible.y) == (0.5, 0.5)
    assert changed_mask(marked.pixels, blank).any()  # gallery, not pure white: the mark is drawn anyway


def test_product_mask_is_exact_and_respects_the_content_box():
    img = np.full((10, 12, 3), 255, np.uint8)
    img[2, 3] = (255, 255, 254)  # one channel off: product
    img[5, 5] = (0, 0, 0)
    img[8, 11] = (10, 10, 10)  # outside the content box below
    mask = wm.product_mask(img, (255, 255, 255), (0, 0, 10, 10))
    assert mask.dtype == bool and mask.shape == (10, 12)
    assert {tuple(p) for p in np.argwhere(mask)} == {(2, 3), (5, 5)}


# ---------------------------------------------------------------------------------------------------------------
# Policy: visible off, pure white backgrounds


def test_visible_false_leaves_the_canvas_bit_identical(owner_key, owner, make_preset, job_for):
    img = product_on_white()
    before = img.copy()
    marked = wm.watermark(make_canvas(img), job_for(make_preset(marks=NO_MARKS)), owner, owner_key)
    assert marked.visible is None and marked.payload is None and marked.background_pixels_kept
    assert np.array_equal(marked.pixels, before) and np.array_equal(img, before)


def test_visible_mark_never_modifies_the_input_canvas(owner_key, owner, visible_preset, job_for):
    img = product_on_white()
    before = img.copy()
    marked = wm.watermark(make_canvas(img), job_for(visible_preset), owner, owner_key)
    assert np.array_equal(img, before) and not np.array_equal(marked.pixels, before)


def thin_strip() -> np.ndarray:
    img = np.full((300, 400, 3), 255, np.uint8)
    img[140:160, 50:350] = (40, 40, 40)
    return img


@pytest.mark.parametrize("position", range(1, 4))
@pytest.mark.parametrize("product", ["strip", "ring", "box"])
def test_pure_white_role_keeps_every_background_pixel(owner_key, owner, make_preset, job_for, position, product,
                                                     caplog):
    preset = make_preset(marks=VISIBLE_ONLY, pure_white_roles=("main", "gallery"))
    img = {"strip": thin_strip, "ring": ring_product, "box": small_product}[product]()
    background = np.all(img == 255, axis=2)
    marked = wm.watermark(make_canvas(img), job_for(preset, position=position), owner, owner_key)
    assert np.all(marked.pixels[background] == 255)
    assert marked.background_pixels_kept is True
    assert changed_mask(marked.pixels, img)[~background].sum() > 100  # the mark is on the product
    assert "restored" not in caplog.text  # kept by the mark's own clipping, not by the safety net


def test_background_pixels_kept_is_reported_truthfully_off_pure_white(owner_key, owner, visible_preset, job_for):
    # A thin product: the mark necessarily spills onto the white around it, and the flag must say so.
    img = thin_strip()
    marked = wm.watermark(make_canvas(img), job_for(visible_preset), owner, owner_key)
    spilled = changed_mask(marked.pixels, img) & np.all(img == 255, axis=2)
    assert spilled.any()
    assert marked.background_pixels_kept is False


def test_non_white_preset_background_is_respected(owner_key, owner, make_preset, job_for):
    canvas_spec = dataclasses.replace(make_preset().canvas, background=(240, 240, 240))
    preset = make_preset(marks=VISIBLE_ONLY, pure_white_roles=("gallery",), canvas=canvas_spec)
    img = small_product()
    img[np.all(img == 255, axis=2)] = 240
    marked = wm.watermark(make_canvas(img), job_for(preset), owner, owner_key)
    bg = np.all(img == 240, axis=2)
    assert np.all(marked.pixels[bg] == 240) and marked.background_pixels_kept
    assert changed_mask(marked.pixels, img).any()


# ---------------------------------------------------------------------------------------------------------------
# Contrast and translucency


def _glyph_delta(owner, marked, img) -> float:
    layer = render_mark(owner, marked.visible, img.shape[1::-1])
    core = layer[..., 3] > 0.8 * 255 * marked.visible.opacity
    assert core.sum() > 50
    return float(np.abs(marked.pixels[core].astype(int) - img[core].astype(int)).mean()), core


@pytest.mark.parametrize(("grey", "tone"), [(5, "light"), (60, "light"), (200, "dark"), (240, "dark")])
def test_contrast_adapts_to_what_is_under_the_mark(owner_key, owner, visible_preset, job_for, grey, tone):
    img = np.full((300, 400, 3), grey, np.uint8)
    marked = wm.watermark(make_canvas(img), job_for(visible_preset), owner, owner_key)
    assert marked.visible.tone == tone
    delta, core = _glyph_delta(owner, marked, img)
    assert delta >= 25, delta  # visible: at least ~10% of full scale under the glyphs
    # translucent: the glyph never fully replaces the pixels (alpha <= opacity < 1)
    assert render_mark(owner, marked.visible, (400, 300))[..., 3].max() <= round(255 * marked.visible.opacity) + 1
    lighter = marked.pixels[core].astype(int).mean() > grey
    assert lighter == (tone == "light")


def test_translucent_mark_keeps_the_texture_underneath(owner_key, owner, visible_preset, job_for):
    img = product_on_white((400, 300), seed=3)
    marked = wm.watermark(make_canvas(img), job_for(visible_preset), owner, owner_key)
    _, core = _glyph_delta(owner, marked, img)
    before, after = img[core].astype(float).ravel(), marked.pixels[core].astype(float).ravel()
    assert np.corrcoef(before, after)[0, 1] > 0.5  # the product's noise still shows through the glyphs


# ---------------------------------------------------------------------------------------------------------------
# Text, logo, both; rendering consistency; clipping


@pytest.mark.parametrize("kind", ["text", "logo", "both"])
def test_text_logo_and_both(owner_key, owner, visible_preset, job_for, logo_file, kind):
    who = {
        "text": owner,
        "logo": dataclasses.replace(owner, watermark_text="", watermark_logo=str(logo_file)),
        "both": dataclasses.replace(owner, watermark_logo=str(logo_file)),
    }[kind]
    img = np.full((400, 400, 3), 90, np.uint8)
    marked = wm.watermark(make_canvas(img), job_for(visible_preset), who, owner_key)
    layer = render_mark(who, dataclasses.replace(marked.visible, rotation=0.0, warp=()), (400, 400))
    ys, xs = np.nonzero(layer[..., 3] > 0.5 * 255 * marked.visible.opacity)  # the ink, not the outline
    width, height = xs.max() - xs.min(), ys.max() - ys.min()
    assert abs(width - marked.visible.scale * 400) <= 0.15 * marked.visible.scale * 400 + 12
    aspect = height / width
    expected = {"text": (0.08, 0.3), "logo": (0.85, 1.15), "both": (0.1, 0.4)}[kind]
    assert expected[0] <= aspect <= expected[1], aspect
    assert changed_mask(marked.pixels, img).sum() > 300


def test_logo_and_text_marks_differ(owner, logo_file):
    mark = VisibleMark(x=0.5, y=0.5, scale=0.6, rotation=0.0, opacity=0.3)
    text = render_mark(owner, mark, (300, 300))
    both = render_mark(dataclasses.replace(owner, watermark_logo=str(logo_file)), mark, (300, 300))
    assert not np.array_equal(text, both)


def test_unreadable_logo_is_a_per_image_error(owner_key, owner, visible_preset, job_for, tmp_path):
    bad = tmp_path / "logo.png"
    bad.write_bytes(b"not a png")
    for path in (bad, tmp_path / "missing.png"):
        with pytest.raises(ImageError, match="logo") as info:
            wm.watermark(make_canvas(product_on_white()), job_for(visible_preset),
                         dataclasses.replace(owner, watermark_logo=str(path)), owner_key)
        assert info.value.stage == "watermark" and str(path) in str(info.value)


def test_compositing_render_mark_reproduces_the_stage(owner_key, owner, visible_preset, job_for):
    img = product_on_white((400, 300), seed=5)
    marked = wm.watermark(make_canvas(img), job_for(visible_preset), owner, owner_key)
    layer = render_mark(owner, marked.visible, (400, 300)).astype(np.float32)
    a = layer[..., 3:] / 255
    again = layer[..., :3] * a + img.astype(np.float32) * (1 - a)
    assert np.abs(again - marked.pixels.astype(np.float32)).max() <= 2.5


@pytest.mark.parametrize(("x", "y"), [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.97, 0.02)])
def test_mark_at_the_edge_is_clipped_not_shifted(owner, x, y):
    size = 400
    centred = VisibleMark(x=0.5, y=0.5, scale=0.6, rotation=12.0, opacity=0.3, warp=(0.03,) * 8)
    edge = dataclasses.replace(centred, x=x, y=y)
    ref = render_mark(owner, centred, (size, size))
    got = render_mark(owner, edge, (size, size))
    assert got.shape == (size, size, 4)
    # the edge layer is the centred layer moved by a whole number of pixels, cut at the canvas border
    dx, dy = round((x - 0.5) * size), round((y - 0.5) * size)
    shifted = np.zeros_like(ref)
    src = ref[max(0, -dy):size - max(0, dy), max(0, -dx):size - max(0, dx)]
    shifted[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    assert got[..., 3].sum() > 0

    def premultiplied(layer):
        return layer[..., :3].astype(float) * layer[..., 3:] / 255

    assert np.abs(got[..., 3].astype(int) - shifted[..., 3].astype(int)).max() <= 2
    assert np.abs(premultiplied(got) - premultiplied(shifted)).max() <= 2


def test_huge_mark_on_a_tiny_canvas_is_clipped(owner_key, owner, make_preset, job_for):
    style = VisibleStyle(opacity=(0.3, 0.3), scale=(1.0, 1.0), rotation=45.0, warp=0.2)
    preset = make_preset(marks=VISIBLE_ONLY, pure_white_roles=(), visible_style=style)
    for size in [(24, 16), (3, 200)]:
        img = np.full((size[1], size[0], 3), 100, np.uint8)
        marked = wm.watermark(make_canvas(img), job_for(preset), owner, owner_key)
        assert marked.pixels.shape == img.shape


# ---------------------------------------------------------------------------------------------------------------
# Payload id and the invisible seam


def test_payload_id_is_deterministic_in_range_and_per_preset(owner_key, other_key, make_preset, job_for):
    a = job_for(make_preset(name="amazon"))
    b = job_for(make_preset(name="ebay"))
    p = wm.payload_id(owner_key, a, SHA)
    assert p == wm.payload_id(OwnerKey(FIXED_SECRET), a, SHA)
    assert 0 <= p < 2**PAYLOAD_BITS
    assert p != wm.payload_id(owner_key, b, SHA)
    assert p != wm.payload_id(other_key, a, SHA)
    assert p != wm.payload_id(owner_key, a, "cd" * 32)
    assert p != wm.payload_id(owner_key, job_for(make_preset(name="amazon"), position=2), SHA)
    # uses the full width: over many images the top bit is set about half the time
    tops = [wm.payload_id(owner_key, job_for(make_preset(name=f"p{i}")), SHA) >> (PAYLOAD_BITS - 1) for i in range(64)]
    assert 10 < sum(tops) < 54


@pytest.fixture
def fake_invisible(monkeypatch):
    """A stand-in ``pipeline.invisible`` that records its calls and adds +1 everywhere it is allowed to."""
    calls: list[dict] = []

    def embed(rgb, key, payload, mask):
        calls.append({"rgb": rgb.copy(), "payload": payload, "mask": None if mask is None else mask.copy()})
        out = rgb.astype(np.int16)
        allowed = np.ones(rgb.shape[:2], bool) if mask is None else mask
        out[allowed] += np.where(out[allowed] < 255, 1, -1).astype(np.int16)
        return out.astype(np.uint8)

    module = types.ModuleType("pipeline.invisible")
    module.embed = embed  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pipeline.invisible", module)
    return calls


def test_seam_order_mask_and_payload(owner_key, owner, make_preset, job_for, fake_invisible):
    marks = {"main": MarkPolicy(visible=True, invisible=True), "gallery": MarkPolicy(visible=True, invisible=True)}
    preset = make_preset(marks=marks, pure_white_roles=("main",))
    img = small_product()
    canvas = make_canvas(img)
    main = wm.watermark(canvas, job_for(preset, role="main"), owner, owner_key)
    call = fake_invisible[-1]
    assert call["payload"] == main.payload == wm.payload_id(owner_key, job_for(preset, role="main"), SHA)
    assert np.array_equal(call["mask"], wm.product_mask(img, (255, 255, 255), (0, 0, 400, 300)))
    # visible first: the pixels handed to embed already carry the visible mark
    visible_only = wm.watermark(canvas, job_for(make_preset(marks=VISIBLE_ONLY), role="main"), owner, owner_key)
    assert np.array_equal(call["rgb"], visible_only.pixels)
    assert main.background_pixels_kept and np.all(main.pixels[np.all(img == 255, axis=2)] == 255)
    gallery = wm.watermark(canvas, job_for(preset), owner, owner_key)
    assert fake_invisible[-1]["mask"] is None and gallery.payload is not None
    assert gallery.background_pixels_kept is False  # the stand-in touched the white: reported, not hidden


def test_seam_restores_background_an_embedder_touched_on_pure_white(owner_key, owner, make_preset, job_for,
                                                                    monkeypatch):
    def careless(rgb, key, payload, mask):
        return np.clip(rgb.astype(np.int16) - 1, 0, 255).astype(np.uint8)  # ignores the mask

    module = types.ModuleType("pipeline.invisible")
    module.embed = careless  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pipeline.invisible", module)
    marks = {"main": MarkPolicy(visible=False, invisible=True), "gallery": MarkPolicy(visible=False, invisible=True)}
    img = small_product()
    marked = wm.watermark(make_canvas(img), job_for(make_preset(marks=marks), role="main"), owner, owner_key)
    assert np.all(marked.pixels[np.all(img == 255, axis=2)] == 255) and marked.background_pixels_kept
    assert marked.visible is None and changed_mask(marked.pixels, img).any()


def test_real_invisible_module_through_the_seam(owner_key, owner, make_preset, job_for, caplog):
    marks = {"main": MarkPolicy(visible=False, invisible=True), "gallery": MarkPolicy(visible=True, invisible=True)}
    preset = make_preset(marks=marks, pure_white_roles=("main",))
    img = product_on_white((512, 512), seed=7)
    for role in ("main", "gallery"):
        marked = wm.watermark(make_canvas(img), job_for(preset, role=role), owner, owner_key)
        assert marked.payload == wm.payload_id(owner_key, job_for(preset, role=role), SHA)
        assert marked.pixels.shape == img.shape and marked.pixels.dtype == np.uint8
        assert not np.array_equal(marked.pixels, img)
        if role == "main":
            assert marked.visible is None and marked.background_pixels_kept
            assert np.all(marked.pixels[np.all(img == 255, axis=2)] == 255)
            assert "restored" not in caplog.text  # embed honoured the mask by itself
