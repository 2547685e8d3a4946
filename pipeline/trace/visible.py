"""The visible-mark check: is the owner's mark still at its keyed place in a registered suspect?"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pipeline.models import Record, VisibleMark
from pipeline.trace import signatures as sg
from pipeline.trace.evidence import VisibleCheck
from pipeline.trace.register import Registration, aligned_to_thumbnail, correlation

MARK_PRESENT = 0.65  # band-pass correlation in the mark's footprint at or above which the mark is intact
MARK_REMOVED = 0.50  # ... below which it was removed
OWN_MARK = 0.1  # detail correlation with the marked export this much above that with the unmarked photo: the copy
#                 carries this export's own mark (separates exports of one photo, see verdict.pick_twin)
# A mark is semi-transparent (opacity 0.22-0.38), so on a textured photo the marked export's detail is mostly the
# photo's: a copy with the mark taken out cleanly (the collection attack of tests/collection_attack.py on a fixed
# mark, or no mark at all) still correlates 0.6-0.8 with it. What tells them apart is which rendering it matches
# better: measured (tests/test_visible_collection.py) intact marks +0.13 or more above the unmarked photo, marks
# taken out 0.14 or more below it.
SIDE_MARGIN = 0.05  # present needs detail >= unmarked + this; the copy matching the unmarked photo by this is removed


def mark_layer(record: Record, thumb_size: tuple[int, int],
               owner: Any = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Where the record's visible mark sits (bool mask in the thumbnail frame, None: no visible mark) and, with
    the ``owner`` profile, the mark itself at thumbnail size (float32 H x W x 4: premultiplied RGB 0..255 and
    alpha 0..1) to composite over the photo thumbnail, which is of the unmarked photo.

    With the ``owner`` profile the mark is re-rendered exactly (``watermark.render_mark``, ~30 ms at 2048 px);
    without it, the recorded keyed geometry gives its nominal footprint (a rotated box of the recorded width and
    0.22 aspect) and no layer.
    """
    vm = record.visible_mark
    if not vm:
        return None, None
    tw, th = thumb_size
    ew, eh = int(record.width or tw), int(record.height or th)
    if owner is not None:
        try:
            from pipeline.marks.visible import render_mark

            rgba = render_mark(owner, VisibleMark.from_dict(vm), (ew, eh))
            small = cv2.resize(_premultiplied(rgba), (tw, th), interpolation=cv2.INTER_AREA)
            mask = cv2.dilate((small[..., 3] > 8 / 255).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            return mask, np.ascontiguousarray(small, dtype=np.float32)
        except Exception:  # fall back to the nominal footprint below
            pass
    width = float(vm["scale"]) * min(ew, eh) * tw / ew
    box = ((float(vm["x"]) * tw, float(vm["y"]) * th), (width, width * 0.22), -float(vm["rotation"]))
    nominal = np.zeros((th, tw), np.uint8)
    cv2.fillPoly(nominal, [np.round(cv2.boxPoints(box)).astype(np.int32)], 1)
    return nominal > 0, None


def _premultiplied(rgba: np.ndarray) -> np.ndarray:
    """float32 premultiplied RGB (0..255) and alpha (0..1) of a uint8 RGBA rendering. Computed on the mark's
    bounding box only (a few % of the export; zero elsewhere, as alpha is): the same values as over the whole
    frame, ~30x faster (21 ms against 640 ms at 2048 px, measured)."""
    h, w = rgba.shape[:2]
    out = np.zeros((h, w, 4), np.float32)
    x, y, bw, bh = cv2.boundingRect(np.ascontiguousarray(rgba[..., 3]))
    if bw and bh:
        win = rgba[y : y + bh, x : x + bw].astype(np.float32)
        a = win[..., 3] / 255
        out[y : y + bh, x : x + bw, :3] = win[..., :3] * a[..., None]
        out[y : y + bh, x : x + bw, 3] = a
    return out


def visible_mark_check(suspect: np.ndarray, registration: Registration | None, sig: sg.ExportTrace,
                       record: Record, owner: Any = None, *,
                       mask: np.ndarray | None = None) -> VisibleCheck:
    """Is the record's visible mark still where the key put it, in the registered suspect?

    ``mask``: the record's ``mark_layer`` mask when the caller has it already (else it is computed here). The
    comparison is with the export as re-rendered (photo thumbnail + the mark layer, ``sig.mark_layer``): without
    the owner profile there is no layer and the check says "unchecked".
    """
    if not record.visible_mark:
        return VisibleCheck(expected=False, status="none", note="this export carries no visible mark")
    if registration is None or not registration.ok or sig.plain_thumbnail is None:
        return VisibleCheck(expected=True, status="unchecked", note="the suspect could not be aligned to the export")
    if mask is None:
        mask, layer = mark_layer(record, sig.thumb_size, owner)
        if sig.mark_layer is None:
            sig.mark_layer = layer
    thumb = sig.thumbnail_rgb()
    if sig.mark_layer is None or thumb is None:
        return VisibleCheck(expected=True, status="unchecked",
                            note="the mark cannot be re-rendered without the owner profile (catalogmark.toml)")
    if mask is None or mask.sum() < 20:
        return VisibleCheck(expected=True, status="unchecked", note="the mark footprint is too small at this scale")
    warped, valid = aligned_to_thumbnail(suspect, registration.matrix, sig)
    inside = mask & valid
    if inside.sum() < 0.5 * mask.sum():
        return VisibleCheck(expected=True, status="cropped-out",
                            note="the suspect does not cover the place of the mark (it was cropped away)")
    a = sg.to_gray(warped).astype(np.float32)
    b = sg.to_gray(thumb).astype(np.float32)
    tone = correlation(a[inside], b[inside])
    # the decision rests on the fine detail (the mark's letter edges, a 0.7-2 px band-pass in the thumbnail):
    # inpainting keeps the area's tones, so the plain correlation stays high on a painted-out mark, while the
    # detail correlation collapses.  Measured on the e2e suite (tests/test_trace_cli.py, four owner keys):
    # intact marks >= 0.78 (mirrored copies lowest; a logo pasted over the mark 0.60), painted out <= 0.43.
    ha = cv2.GaussianBlur(a, (0, 0), 0.7) - cv2.GaussianBlur(a, (0, 0), 2.0)
    hb = cv2.GaussianBlur(b, (0, 0), 0.7) - cv2.GaussianBlur(b, (0, 0), 2.0)
    detail = correlation(ha[inside], hb[inside])
    # the same against the export without its mark (the photo): a copy that carries this export's own mark matches
    # the marked rendering clearly better; a copy of a twin export without the mark (another preset of the photo)
    # matches the unmarked one as well or better, even where a faint mark leaves the detail correlation high
    plain = sig.plain_thumbnail
    assert plain is not None
    p = sg.to_gray(plain).astype(np.float32)
    hp = cv2.GaussianBlur(p, (0, 0), 0.7) - cv2.GaussianBlur(p, (0, 0), 2.0)
    unmarked = correlation(ha[inside], hp[inside])
    if detail < MARK_REMOVED or unmarked >= detail + SIDE_MARGIN:
        status = "removed"
    elif detail >= MARK_PRESENT and detail >= unmarked + SIDE_MARGIN:
        status = "present"
    else:
        status = "altered"
    notes = {
        "present": "the visible mark is where the owner's key placed it",
        "removed": "the fine detail of the visible mark is gone from its keyed place while the rest of the "
                   "picture matches the export (the place matches the photo without the mark better than with "
                   "it): the mark was painted out, covered or taken out",
        "altered": "the area of the visible mark only partly matches the export",
    }
    return VisibleCheck(expected=True, status=status, detail_ncc=round(detail, 3), ncc=round(tone, 3),
                        detail_ncc_unmarked=round(unmarked, 3),
                        own_mark=bool(status == "present" and detail - unmarked >= OWN_MARK),
                        thresholds=(MARK_PRESENT, MARK_REMOVED), note=notes[status])
