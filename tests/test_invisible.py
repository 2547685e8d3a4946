"""Tests of the keyed invisible watermark: codec, round trip, keys, false positives, masks, quality, attacks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data
from skimage.metrics import structural_similarity

from pipeline import invisible
from pipeline.invisible import codec
from pipeline.keys import OwnerKey
from pipeline.models import PAYLOAD_BITS
from tests import attacks
from tests.conftest import product_on_white
from tests.synthetic import product_shot, small_product

PAYLOAD = 0x9A_5C3E_71F2
SUBKEY = bytes(range(32))


# ------------------------------------------------------------------------------------------------ fixtures


def _resize(rgb: np.ndarray, long_side: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    f = long_side / max(h, w)
    return cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A natural photo canvas (skimage's coffee, CC0), 1200 px long side."""
    return _resize(data.coffee(), 1200)


@pytest.fixture(scope="module")
def shot() -> tuple[np.ndarray, np.ndarray]:
    """A generated product shot on pure white, and its "may change" mask (not pure white)."""
    rgb = product_shot(3, (1200, 1200))
    return rgb, ~np.all(rgb == 255, axis=2)


@pytest.fixture(scope="module")
def key() -> OwnerKey:
    return OwnerKey(bytes(range(32)))


@pytest.fixture(scope="module")
def marked_photo(photo: np.ndarray, key: OwnerKey) -> np.ndarray:
    return invisible.embed(photo, key, PAYLOAD, None)


@pytest.fixture(scope="module")
def marked_shot(shot: tuple[np.ndarray, np.ndarray], key: OwnerKey) -> np.ndarray:
    return invisible.embed(shot[0], key, PAYLOAD, shot[1])


# ------------------------------------------------------------------------------------------------ codec


@given(st.integers(0, (1 << PAYLOAD_BITS) - 1))
@settings(max_examples=25, deadline=None)
def test_codec_round_trip(payload: int) -> None:
    coded = codec.encode_payload(SUBKEY, payload)
    assert coded.shape == (codec.CODED_BITS,)
    dec = codec.decode_payload(SUBKEY, 1.0 - 2.0 * coded)
    assert dec.ok and dec.payload == payload and dec.bit_errors == 0


@given(st.integers(0, (1 << PAYLOAD_BITS) - 1), st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_ecc_corrects_injected_hard_errors(payload: int, seed: int) -> None:
    coded = codec.encode_payload(SUBKEY, payload)
    soft = 1.0 - 2.0 * coded
    flips = np.random.default_rng(seed).choice(codec.CODED_BITS, 14, replace=False)  # 6.5 % of the coded bits
    soft[flips] *= -1
    dec = codec.decode_payload(SUBKEY, soft)
    assert dec.ok and dec.payload == payload
    assert dec.bit_errors == 14


def test_soft_decoding_beats_noise() -> None:
    rng = np.random.default_rng(1)
    for i in range(20):
        payload = int(rng.integers(0, 1 << PAYLOAD_BITS))
        x = 1.0 - 2.0 * codec.encode_payload(SUBKEY, payload)
        noisy = x + rng.normal(0, 0.9, x.shape)  # ~23 % of the hard decisions wrong
        dec = codec.decode_payload(SUBKEY, noisy)
        assert dec.ok and dec.payload == payload, i


def _short_frame_metrics(soft: np.ndarray, info_bits: int) -> list[tuple[float, tuple[int, ...]]]:
    """Every information sequence of a short frame with its correlation metric, best first (brute force)."""
    out = []
    for v in range(1 << info_bits):
        bits = np.array([(v >> (info_bits - 1 - i)) & 1 for i in range(info_bits)], np.uint8)
        code = 1.0 - 2.0 * codec.conv_encode(bits).astype(np.float64)
        out.append((float(np.dot(soft, code)), tuple(int(b) for b in bits)))
    return sorted(out, key=lambda m: -m[0])


@given(seed=st.integers(0, 2**32 - 1), info_bits=st.integers(1, 8), size=st.integers(1, 6))
@settings(max_examples=60, deadline=None)
def test_list_viterbi_gives_the_most_likely_sequences_in_order(seed: int, info_bits: int, size: int) -> None:
    """Against every codeword of a short frame: the list is the ``size`` best sequences, best first, and its head
    is the plain Viterbi decode."""
    soft = np.random.default_rng(seed).normal(size=(info_bits + codec.CONSTRAINT - 1) * codec.RATE_INV)
    got = codec.viterbi_list(soft, size)
    want = _short_frame_metrics(soft, info_bits)[:size]
    assert len(got) == min(size, 1 << info_bits)
    assert [tuple(int(b) for b in g) for g in got] == [w[1] for w in want]
    assert np.array_equal(got[0], codec.viterbi_decode(soft))


def test_a_payload_second_in_the_list_is_decoded_and_says_so() -> None:
    """Soft values that favour a wrong sequence a little over the true one: the maximum-likelihood sequence fails
    the keyed check, the list's next candidate is the payload."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        payload = int(rng.integers(0, 1 << PAYLOAD_BITS))
        x = 1.0 - 2.0 * codec.encode_payload(SUBKEY, payload)
        noisy = x + rng.normal(0, 1.3, x.shape)
        dec = codec.decode_payload(SUBKEY, noisy)
        if dec.ok and dec.rank > 0:
            assert dec.payload == payload
            ml = codec.viterbi_decode(noisy)
            assert codec._bits_to_int(ml[:PAYLOAD_BITS]) != payload
            return
    raise AssertionError("no case where the payload was second or third in the list")


def test_check_is_keyed() -> None:
    soft = 1.0 - 2.0 * codec.encode_payload(SUBKEY, PAYLOAD)
    dec = codec.decode_payload(bytes(range(1, 33)), soft)
    assert not dec.ok and dec.payload is None


def test_random_soft_values_fail_the_check() -> None:
    rng = np.random.default_rng(2)
    assert not any(codec.decode_payload(SUBKEY, rng.normal(size=codec.CODED_BITS)).ok for _ in range(200))


def test_payload_range_is_enforced(photo: np.ndarray, key: OwnerKey) -> None:
    with pytest.raises(ValueError, match="payload"):
        invisible.embed(photo, key, 1 << PAYLOAD_BITS, None)
    with pytest.raises(ValueError, match="payload"):
        invisible.embed(photo, key, -1, None)


def test_bad_inputs_name_the_problem(key: OwnerKey) -> None:
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        invisible.embed(np.zeros((64, 64), np.uint8), key, 1, None)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        invisible.read(np.zeros((64, 64, 3), np.float32), key)
    with pytest.raises(ValueError, match="mask shape"):
        invisible.embed(np.zeros((64, 64, 3), np.uint8), key, 1, np.ones((10, 10), bool))


# ------------------------------------------------------------------------------------------------ round trip


def test_round_trip_photo(marked_photo: np.ndarray, key: OwnerKey) -> None:
    det = invisible.read(marked_photo, key)
    assert det.found and det.payload == PAYLOAD
    assert 0.5 < det.confidence <= 1.0
    assert det.bit_errors is not None and det.bit_errors < codec.CODED_BITS // 4
    assert det.false_positive_probability <= 1e-6
    assert not det.details["flipped"]
    assert det.details["scale"] == pytest.approx(1.0, abs=0.01)


def test_round_trip_product_on_white(marked_shot: np.ndarray, key: OwnerKey) -> None:
    det = invisible.read(marked_shot, key)
    assert det.found and det.payload == PAYLOAD


def test_embedding_is_deterministic(photo: np.ndarray, key: OwnerKey, marked_photo: np.ndarray) -> None:
    assert np.array_equal(invisible.embed(photo, key, PAYLOAD, None), marked_photo)
    assert not np.array_equal(invisible.embed(photo, key, PAYLOAD ^ 1, None), marked_photo)


def test_reads_share_the_keys_pilot_syncs_and_agree(marked_shot: np.ndarray, key: OwnerKey) -> None:
    from pipeline.invisible import reader

    reader.syncs_for.cache_clear()
    first = invisible.read(marked_shot, key)
    syncs = reader.syncs_for(key.subkey(invisible.SUBKEY_PURPOSE))
    assert syncs.cache, "the first read built pilot syncs"
    again = invisible.read(marked_shot, key)  # served from the cache: the same detection
    assert reader.syncs_for(key.subkey(invisible.SUBKEY_PURPOSE)) is syncs
    assert (again.payload, again.details) == (first.payload, first.details)
    basis = next(iter(syncs.cache.values())).basis
    with pytest.raises(ValueError):
        basis[0, 0, 0] = 0  # shared between reads: read-only
    other = OwnerKey(bytes(range(100, 132)))
    assert reader.syncs_for(other.subkey(invisible.SUBKEY_PURPOSE)) is not syncs


def test_input_not_modified(photo: np.ndarray, key: OwnerKey) -> None:
    before = photo.copy()
    invisible.embed(photo, key, PAYLOAD, None)
    assert np.array_equal(photo, before)


# ------------------------------------------------------------------------------------------------ keys and FPs


def test_wrong_key_reads_nothing(marked_photo: np.ndarray, marked_shot: np.ndarray) -> None:
    other = OwnerKey(bytes(range(100, 132)))
    for img in (marked_photo, marked_shot):
        det = invisible.read(img, other)
        assert not det.found and det.payload is None
        assert det.false_positive_probability <= 1e-6


def _unmarked() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "white": np.full((800, 800, 3), 255, np.uint8),
        "noise": rng.integers(0, 256, (700, 900, 3), dtype=np.uint8),
        "astronaut": _resize(data.astronaut(), 1000),
        "product": product_on_white((900, 700), seed=3),
        "tiny": rng.integers(0, 256, (40, 60, 3), dtype=np.uint8),
    }


@pytest.mark.parametrize("name", list(_unmarked()))
def test_unmarked_pictures_read_nothing(name: str, key: OwnerKey) -> None:
    det = invisible.read(_unmarked()[name], key)
    assert not det.found and det.payload is None and det.bit_errors is None
    assert det.false_positive_probability <= invisible.WORST_FP
    assert det.details["decodes"] <= invisible.MAX_DECODES


def test_fp_bound_counts_every_decode_and_every_candidate_of_its_list() -> None:
    check = codec.LIST_SIZE * 2.0**-invisible.CHECK_BITS  # one decode: LIST_SIZE keyed checks
    assert codec.LIST_SIZE == 3
    assert invisible.fp_bound(1) == check
    assert invisible.fp_bound(1, legacy=0) == check / invisible.VARIANTS
    assert invisible.fp_bound(3, legacy=1) == (1 + 2 / invisible.VARIANTS) * check
    assert invisible.fp_bound(0) == check
    assert invisible.fp_bound(invisible.MAX_DECODES) <= 1e-6
    assert abs(invisible.WORST_FP - 3 * (3 + 5 / 32) * 2.0**-26) < 1e-20
    assert invisible.WORST_FP < 1.5e-7


# ------------------------------------------------------------------------------------------------ masks, quality


def test_white_stays_white_and_outside_mask_is_untouched(shot: tuple[np.ndarray, np.ndarray], marked_shot: np.ndarray) -> None:
    rgb, mask = shot
    assert np.array_equal(marked_shot[~mask], rgb[~mask])
    assert np.all(marked_shot[np.all(rgb == 255, axis=2)] == 255)
    assert np.any(marked_shot[mask] != rgb[mask])


def test_arbitrary_mask_is_respected(photo: np.ndarray, key: OwnerKey) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[100:700, 200:900] = True
    out = invisible.embed(photo, key, PAYLOAD, mask)
    assert np.array_equal(out[~mask], photo[~mask])
    assert np.any(out[mask] != photo[mask])


@pytest.fixture(scope="module")
def decal() -> tuple[np.ndarray, np.ndarray]:
    """A flat black decal (one colour, no texture at all) on pure white, and its "may change" mask."""
    import cv2

    rgb = np.full((900, 1000, 3), 255, np.uint8)
    cv2.ellipse(rgb, (500, 450), (380, 280), 0, 0, 360, (30, 30, 30), -1, cv2.LINE_AA)
    cv2.rectangle(rgb, (430, 650), (470, 860), (30, 30, 30), -1)
    return rgb, ~np.all(rgb == 255, axis=2)


def test_flat_product_carries_a_mark(decal: tuple[np.ndarray, np.ndarray], key: OwnerKey) -> None:
    """A product with no texture is marked all over (it used to carry nothing, and the blind read missed it on
    every attack), its white background stays exactly white, and the blind read finds it after JPEG."""
    rgb, mask = decal
    out = invisible.embed(rgb, key, PAYLOAD, mask)
    assert np.all(out[~mask] == 255)
    changed = np.any(out != rgb, axis=2)
    assert changed[mask].mean() > 0.5
    for suspect in (out, attacks.jpeg70(out), attacks.scale50(out)):
        det = invisible.read(suspect, key)
        assert det.found and det.payload == PAYLOAD


def test_fills_without_headroom_stay_as_they_are(key: OwnerKey) -> None:
    """Pure black and pure white fills leave no room for a zero-mean mark (a clipped one would shift their mean,
    which shows): away from the textured patch they are left exactly as they were; a mid-grey fill is marked."""
    rgb = np.zeros((600, 900, 3), np.uint8)
    rgb[:, 300:600] = 255
    rgb[:, 600:] = 128
    rgb[200:400, 200:400] = product_on_white((200, 200), seed=1)
    out = invisible.embed(rgb, key, PAYLOAD, None)
    far = np.ones(rgb.shape[:2], bool)
    far[150:450, 150:450] = False  # the textured patch plus a margin
    far[:, 250:350] = far[:, 550:650] = False  # and the edges between the fills
    extreme = far.copy()
    extreme[:, 600:] = False
    assert np.array_equal(out[extreme], rgb[extreme])
    assert np.any(out[:, 650:] != rgb[:, 650:])


def _region_quality(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """PSNR and mean SSIM over ``region`` only (the product), SSIM's map computed on the whole canvas."""
    mse = float(np.mean((a[region].astype(np.float64) - b[region]) ** 2))
    _, smap = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    return 10 * float(np.log10(255.0**2 / mse)), float(smap.mean(axis=2)[region].mean())


@pytest.mark.parametrize("which", ["decal", "small shot", "shot"])
def test_quality_on_the_product(which: str, decal: tuple[np.ndarray, np.ndarray], shot: tuple[np.ndarray, np.ndarray],
                                key: OwnerKey) -> None:
    """The floors on the product region alone, where a small product on a large white canvas concentrates the
    mark (the canvas-wide figures hide it): PSNR >= 35 dB, SSIM >= 0.96 (embedder.REGION_*)."""
    if which == "small shot":
        rgb, mask = small_product(800)  # a small shoe on an 800 px canvas: 19 % of it
    else:
        rgb, mask = decal if which == "decal" else shot
    out = invisible.embed(rgb, key, PAYLOAD, mask)
    psnr, ssim = _region_quality(rgb, out, mask)
    assert psnr >= 35.0
    assert ssim >= 0.96
    assert _psnr(rgb, out) >= 42.0 and _ssim(rgb, out) >= 0.99


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def test_quality_photo(photo: np.ndarray, marked_photo: np.ndarray) -> None:
    assert _psnr(photo, marked_photo) >= 42.0
    assert _ssim(photo, marked_photo) >= 0.99


def test_quality_product(shot: tuple[np.ndarray, np.ndarray], marked_shot: np.ndarray) -> None:
    assert _psnr(shot[0], marked_shot) >= 42.0
    assert _ssim(shot[0], marked_shot) >= 0.99


# ------------------------------------------------------------------------------------------------ attacks


@pytest.mark.parametrize("attack", ["jpeg50", "scale50", "crop80", "flip", "rotate3"])
@pytest.mark.parametrize("which", ["photo", "shot"])
def test_survives_attack(attack: str, which: str, marked_photo: np.ndarray, marked_shot: np.ndarray, key: OwnerKey) -> None:
    marked = marked_photo if which == "photo" else marked_shot
    suspect = attacks.ATTACKS[attack](marked, 7)
    det = invisible.read(suspect, key)
    assert det.found and det.payload == PAYLOAD, det.details
    if attack == "flip":
        assert det.details["flipped"]


@pytest.mark.parametrize(("name", "view", "flipped", "turned"), [
    ("top-bottom mirror", lambda a: a[::-1], True, True),
    ("upside down", lambda a: a[::-1, ::-1], False, True),
])
@pytest.mark.parametrize("which", ["photo", "shot"])
def test_reads_upside_down_and_top_bottom_mirrored(name: str, view, flipped: bool, turned: bool, which: str,
                                                   marked_photo: np.ndarray, marked_shot: np.ndarray,
                                                   key: OwnerKey) -> None:
    """The lattice fit cannot tell a lattice from its negative: the reader tries the folded tile turned 180
    degrees, and mirrored and turned (a top-bottom mirror), as well as mirrored left-right."""
    marked = marked_photo if which == "photo" else marked_shot
    suspect = attacks._encode(np.ascontiguousarray(view(marked)), "JPEG", 80)
    det = invisible.read(suspect, key)
    assert det.found and det.payload == PAYLOAD, (name, det.details)
    assert (det.details["flipped"], det.details["turned"]) == (flipped, turned), det.details
    assert abs(abs(det.details["rotation_deg"]) - (180.0 if turned else 0.0)) < 2.0, det.details


def test_attacks_are_deterministic(photo: np.ndarray) -> None:
    for name, fn in attacks.ATTACKS.items():
        a, b = fn(photo, 3), fn(photo, 3)
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3, name
        assert np.array_equal(a, b), name


def test_hint_reads_a_registered_copy(marked_shot: np.ndarray, key: OwnerKey) -> None:
    """Informed read: the trace stage knows how the suspect maps onto the export (here a 40 % downscale)."""
    small = attacks._scale(marked_shot, 0.4)
    h, w = marked_shot.shape[:2]
    sh, sw = small.shape[:2]
    homography = np.diag([w / sw, h / sh, 1.0])
    det = invisible.read(small, key, hint=invisible.Hint(homography, (w, h)))
    assert det.found and det.payload == PAYLOAD
    assert det.details["hinted"] and det.details["scheme"] == 2
    assert det.false_positive_probability == invisible.fp_bound(1)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_headroom_is_the_room_of_the_tightest_channel_over_3x3(h, w, seed) -> None:
    """``embedder.headroom`` against its definition written out in numpy."""
    import cv2

    from pipeline.invisible import embedder

    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)
    rgb[: h // 2, : w // 3] = 255  # a white corner and a black one: no room at all there
    rgb[h // 2 :, w // 2 :] = 0
    room = np.minimum(rgb.min(axis=2), 255 - rgb.max(axis=2))
    want = cv2.erode(room, np.ones((3, 3), np.uint8)).astype(np.float32)
    got = embedder.headroom(rgb)
    assert got.dtype == np.float32 and np.array_equal(got, want)


def _bit_case(seed: int) -> tuple:
    """A real layout and random reader quantities for informed embedding: host interference, gains, energies."""
    from pipeline.invisible.embedder import export_layout
    from pipeline.invisible.layout import TILE

    rng = np.random.default_rng(seed)
    lay = export_layout(OwnerKey(bytes(range(32))).subkey(invisible.SUBKEY_PURPOSE), int(rng.integers(0, 2**40)))
    values = lay.tile(rng.integers(0, 2, codec.CODED_BITS).astype(np.uint8))
    host = rng.normal(0, rng.uniform(0.1, 3.0), (TILE, TILE)).astype(np.float32)
    gain = rng.uniform(0.2, 1.5, (TILE, TILE)).astype(np.float32)
    energy = rng.uniform(0.1, 2.0, (TILE, TILE)).astype(np.float32)
    return lay, values, host, gain, energy


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), margin=st.floats(0.05, 4.0))
def test_each_bit_gets_the_least_amplitude_that_reaches_its_margin(seed: int, margin: float) -> None:
    """``embedder._BitSolver.amps`` (the knees of each bit's piecewise-linear sum, written out) against a bisection
    of each bit's scale mu on the definition a = clip(mu * g / e, A_MIN, A_MAX)."""
    from pipeline.invisible import embedder

    lay, values, host, gain, energy = _bit_case(seed)
    solver = embedder._BitSolver(lay, gain, energy)
    none = np.zeros(codec.CODED_BITS, bool)
    got = solver.amps(margin, solver.helped(values, host), none)
    rows, cols, bit = lay.data_rows, lay.data_cols, lay.data_bit
    g, e = gain[rows, cols].astype(np.float64), energy[rows, cols].astype(np.float64)
    helped = np.bincount(bit, (values * host)[rows, cols], codec.CODED_BITS)
    need = margin * np.bincount(bit, None, codec.CODED_BITS)
    lo, hi = np.zeros(codec.CODED_BITS), np.full(codec.CODED_BITS, 1e4)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        ok = helped + np.bincount(bit, g * np.clip(mid[bit] * g / e, embedder.A_MIN, embedder.A_MAX),
                                  codec.CODED_BITS) >= need
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    want = np.clip(hi[bit] * g / e, embedder.A_MIN, embedder.A_MAX)
    grid = solver.chip_grid(got, values.shape)
    assert np.allclose(grid[rows, cols], want, atol=1e-4)
    sums = helped + np.bincount(bit, g * grid[rows, cols], codec.CODED_BITS)
    reachable = solver.reach(helped) >= need
    assert np.all(sums[reachable] >= need[reachable] - 1e-3)  # every bit that can reaches its margin


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_informed_amplitudes_stay_in_range_and_within_the_energy_of_unit_amplitudes(seed: int) -> None:
    from pipeline.invisible import embedder

    lay, values, host, gain, energy = _bit_case(seed)
    amps = embedder.informed_amplitudes(lay, values, host, gain, energy)
    assert amps.shape == values.shape and amps.dtype == np.float32
    assert amps.min() >= embedder.A_MIN - 1e-6 and amps.max() <= embedder.A_MAX + 1e-6
    assert float(np.sum(amps.astype(np.float64) ** 2 * energy)) <= float(np.sum(energy)) * (1 + 1e-6)
    # the bits the picture pushes the wrong way get more energy than they would on a blank picture, relative to
    # those it already helps (each bit against itself: how much energy a bit gets depends mostly on its chips'
    # gains and energies, which a faint picture hardly moves; seed 21807, host sd 0.11, broke a plain comparison)
    rows, cols, bit = lay.data_rows, lay.data_cols, lay.data_bit
    blank = embedder.informed_amplitudes(lay, values, np.zeros_like(host), gain, energy)
    helped = np.bincount(bit, (values * host)[rows, cols], codec.CODED_BITS)
    power = np.bincount(bit, (amps[rows, cols] ** 2 * energy[rows, cols]), codec.CODED_BITS)
    power0 = np.bincount(bit, (blank[rows, cols] ** 2 * energy[rows, cols]), codec.CODED_BITS)
    hurt, helps = helped < -np.percentile(np.abs(helped), 20), helped > np.percentile(np.abs(helped), 20)
    floor = np.bincount(bit, embedder.A_MIN ** 2 * energy[rows, cols], codec.CODED_BITS) * (1 + 1e-6)
    # a bit left at A_MIN on the blank picture (hopeless there) has no energy to compare with, and a hurt bit left
    # at A_MIN here was given up to the error correction
    ratio = power / power0
    assert np.median(ratio[hurt & (power > floor) & (power0 > floor)]) > np.median(ratio[helps & (power0 > floor)])


def test_with_no_interference_and_even_chips_every_amplitude_is_one() -> None:
    """No picture, every chip alike: the largest common margin within the unit-amplitude energy is unit amplitudes."""
    from pipeline.invisible import embedder

    lay, values, _host, _gain, _energy = _bit_case(7)
    flat = np.ones(values.shape, np.float32)
    amps = embedder.informed_amplitudes(lay, values, np.zeros_like(flat), 0.5 * flat, flat)
    assert np.allclose(amps, 1.0, atol=2e-3)
