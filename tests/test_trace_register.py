"""Registration: known similarity transforms (incl. mirror) are recovered; other products do not verify."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.presets import CanvasSpec
from pipeline.trace import candidates as cd
from pipeline.trace import signatures as sg
from pipeline.trace.register import SuspectFeatures, fit_photo, register, register_export
from tests import synthetic

SIZE = 640


@pytest.fixture(scope="module")
def export() -> np.ndarray:
    return synthetic.product_shot(2, (SIZE, SIZE))


@pytest.fixture(scope="module")
def signature(export: np.ndarray) -> sg.ExportTrace:
    keys, feats = synthetic.trace_blobs(export)
    return sg.export_trace(keys, feats, sg.Frame.identity(SIZE, SIZE))  # what the ledger gives back


def _similarity(scale: float, angle: float, flip: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """Export px -> suspect px (3x3) and the suspect size: scale + rotate about the centre (+ mirror)."""
    c = SIZE / 2
    m = np.vstack([cv2.getRotationMatrix2D((c, c), angle, scale), [0, 0, 1]])
    if flip:
        m = m @ np.array([[-1.0, 0, SIZE - 1], [0, 1, 0], [0, 0, 1]])
    out = round(SIZE * scale)
    shift = np.array([[1.0, 0, out / 2 - c], [0, 1, out / 2 - c], [0, 0, 1]])  # keep the centre in the middle
    return shift @ m, (out, out)


def _apply(export: np.ndarray, m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.warpAffine(export, m[:2], size, flags=cv2.INTER_AREA if m[0, 0] ** 2 + m[0, 1] ** 2 < 1
                          else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))


def _check(export: np.ndarray, signature: sg.ExportTrace, scale: float, angle: float, flip: bool) -> None:
    m, size = _similarity(scale, angle, flip)
    suspect = synthetic.jpeg(_apply(export, m, size), 90)
    reg = register(SuspectFeatures.compute(suspect), signature)
    assert reg.ok, reg.reason
    assert cd.registration_tier(reg) == "strong", (reg.inliers, reg.ncc, reg.ncc_grey)
    truth = np.linalg.inv(m)  # suspect px -> export px
    pts = np.array([[x, y, 1.0] for x in np.linspace(0.2, 0.8, 4) * size[0] for y in np.linspace(0.2, 0.8, 4) * size[1]])
    err = np.abs(pts @ reg.matrix.T - pts @ truth.T)[:, :2].max()
    assert err <= 2.0, f"max position error {err:.2f} px"
    t = reg.transform
    assert t["mirrored"] is flip and reg.mirrored is flip
    assert t["scale"] == pytest.approx(scale, rel=0.02)
    assert t["rotation_deg"] == pytest.approx(angle if not flip else -angle, abs=0.5)


@pytest.mark.parametrize("scale, angle, flip", [(1.0, 0.0, False), (0.5, 0.0, False), (0.8, 7.0, False),
                                                (1.3, -3.0, False), (0.7, 0.0, True), (0.9, 5.0, True)])
def test_recovers_known_similarity(export: np.ndarray, signature: sg.ExportTrace, scale: float, angle: float,
                                   flip: bool) -> None:
    _check(export, signature, scale, angle, flip)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(scale=st.floats(0.45, 1.4), angle=st.floats(-12, 12), flip=st.booleans())
def test_recovers_random_similarity(export: np.ndarray, signature: sg.ExportTrace, scale: float, angle: float,
                                    flip: bool) -> None:
    _check(export, signature, scale, angle, flip)


def test_recovers_a_crop(export: np.ndarray, signature: sg.ExportTrace) -> None:
    crop = synthetic.jpeg(export[100:500, 60:460], 80)  # 400 x 400 window at (60, 100)
    reg = register(SuspectFeatures.compute(crop), signature)
    assert cd.registration_tier(reg) == "strong"
    assert np.allclose(reg.matrix[:2, :2], np.eye(2), atol=0.01)
    assert reg.matrix[0, 2] == pytest.approx(60, abs=1.0) and reg.matrix[1, 2] == pytest.approx(100, abs=1.0)
    x0, y0, x1, y1 = reg.transform["suspect_covers_export_box"]
    assert (x0, y0) == pytest.approx((60, 100), abs=1.5) and (x1, y1) == pytest.approx((460, 500), abs=1.5)
    assert reg.transform["export_area_kept"] == pytest.approx(400 * 400 / SIZE**2, abs=0.05)


@pytest.mark.parametrize("seed", [8, 14, 20, 3])  # 8/14/20: the same shape, label layout and fonts as seed 2
def test_other_products_on_white_do_not_verify(signature: sg.ExportTrace, seed: int) -> None:
    other = synthetic.jpeg(synthetic.product_shot(seed, (SIZE, SIZE)), 85)
    reg = register(SuspectFeatures.compute(other), signature)
    assert cd.registration_tier(reg) in ("none", "weak"), (reg.reason, reg.inliers, reg.ncc, reg.ncc_grey)


def test_blank_suspect_fails_cleanly(signature: sg.ExportTrace) -> None:
    reg = register(SuspectFeatures.compute(np.full((300, 300, 3), 255, np.uint8)), signature)
    assert not reg.ok and "match" in reg.reason


def test_candidate_without_features_fails_cleanly(export: np.ndarray, signature: sg.ExportTrace) -> None:
    empty = sg.PhotoFeatures((SIZE, SIZE), (SIZE, SIZE), np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8),
                             b"")
    reg = register(SuspectFeatures.compute(export), sg.ExportTrace(signature.frame, empty))
    assert not reg.ok and "no registration features" in reg.reason


@pytest.mark.parametrize("spec", [CanvasSpec(1000, 1000, "pad"), CanvasSpec(560, 760, "cover")], ids=["pad", "cover"])
def test_one_photo_fit_maps_into_each_export(spec: CanvasSpec) -> None:
    """Features of the photo, a copy of one of its exports: the photo fit mapped through the export's frame gives
    suspect -> export pixels, and the copy lies in that export's frame (and overhangs a tighter twin's)."""
    photo = synthetic.product_shot(4, (900, 700))
    canvas, frame = synthetic.place_photo(photo, spec)
    keys, feats = synthetic.trace_blobs(canvas, photo)
    view = sg.export_trace(keys, feats, sg.Frame.from_dict(frame))
    x0, y0 = canvas.shape[1] // 8, canvas.shape[0] // 10
    crop = synthetic.jpeg(canvas[y0:, x0:], 85)  # a crop of the export: suspect px + (x0, y0) = export px
    feats_s = SuspectFeatures.compute(crop)
    fit = fit_photo(feats_s, view.photo)
    reg = register_export(fit, feats_s, view)
    assert cd.registration_tier(reg) == "strong", (reg.reason, reg.inliers, reg.ncc, reg.ncc_grey)
    pts = np.array([[x, y, 1.0] for x in (50, 200, 400) for y in (60, 300)])
    truth = pts[:, :2] + [x0, y0]
    assert np.abs((pts @ reg.matrix.T)[:, :2] - truth).max() <= 1.5
    assert cd.fits_frame(reg)
    # the same photo fit through an identity frame (the photo itself): the copy is scaled into the photo
    twin = sg.ExportTrace(sg.Frame.identity(*photo.shape[1::-1]), view.photo)
    t = register_export(fit, feats_s, twin)
    s = frame["scaled"][0] / photo.shape[1]
    assert t.ok and t.transform["scale"] == pytest.approx(s, rel=0.02)


def test_padding_agreement_tells_the_copied_export_from_its_twin_with_more_padding():
    """A copy of an export with a 20 px pad, on a grey page: its own padding reads as background (1.0); a twin
    export of the same photo with a 60 px pad expects background where the copy shows the page."""
    import numpy as np

    from pipeline.trace.register import Registration, padding_agreement

    page = np.full((400, 400, 3), 128, np.uint8)
    page[80:320, 80:320] = 255  # the copied export: 240 x 240, white padding ...
    page[100:300, 100:300] = 30  # ... around a 200 x 200 photo
    own = Registration(ok=True, reason="", matrix=np.array([[1.0, 0, -80], [0, 1.0, -80], [0, 0, 1]]))
    assert padding_agreement(page, own, (240, 240), (20, 20, 220, 220), (255, 255, 255)) == 1.0
    # the twin: the same photo at the same scale on a 320 x 320 canvas (pad 60): its frame starts at 40 in the copy
    twin = Registration(ok=True, reason="", matrix=np.array([[1.0, 0, -40], [0, 1.0, -40], [0, 0, 1]]))
    agreement = padding_agreement(page, twin, (320, 320), (60, 60, 260, 260), (255, 255, 255))
    assert agreement is not None and agreement < 0.5
    # no padding at all (a cover export): nothing to say
    assert padding_agreement(page, own, (200, 200), (0, 0, 200, 200), (255, 255, 255)) is None
