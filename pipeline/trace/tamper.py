"""Removal-attempt check: the export's own pilot tones against its own data chips in a registered copy.

The invisible mark has two parts (``pipeline.invisible.layout``): the data chips, which carry the payload, and a
few pilot tones, which let a blind reader find the chips' lattice. The pilots are the part an attacker goes for:
they are a handful of strong spectral lines, so a thief who learns them (the catalog-averaging attack of
``tests/collusion.py`` on scheme 1's fixed set, a leaked key, trial and error) notches them out at little cost
in quality, and the blind read is gone while the picture looks the same.

Ordinary processing does not do that. A re-encode, a resize, a blur, noise, a crop or a colour change weakens the
pilots and the chips *together*: both are smooth luminance patterns in the same band. So once a copy is
registered against the export trace named, this module folds the copy's whitened residual into the export's
tile (exactly as the embedder laid it out: the export frame at half resolution, tile origin at pixel 0) and
measures, in the same folded tile, the amplitude of the export's pilot tones and the amplitude of its data
chips (correlation with the chips its payload dictates). Their ratio is a property of the embedder, not of the
picture: ``make robustness`` measured +0.0 to +5.1 dB (median +3.2) on 1148 copies under the 24 in-house
attacks and AugLy's 32 augmentations (none of them a removal attempt), while notching the pilots (the chips, and
usually the informed read, survive it) brings it down to as low as -15 dB: 55 of 63 notched copies were flagged
(19/21 with +-2 FFT bins notched, 19/21 also resized to 70 %, 17/21 with +-1 bin, which leaves more of the
pilots). A ratio
below ``RATIO_FLAG_DB`` with the chips clearly present (``CHIP_Z_MIN``) is reported as signs of an attack on
the watermark; the false-alarm rate is the one ``make robustness`` measures on copies that were not attacked
that way (``FALSE_ALARMS`` of ``CLEAN_COPIES``).

Records carry no scheme number, so a record may carry scheme 1's pilot set instead of its payload's: the ratio
is taken for both sets and the larger one counts (a notched copy is weak under both; an intact scheme 1 copy is
strong under its own).

What this does not see: a copy whose whole mark (chips too) was destroyed (the chips are then not "clearly
present", and the check says it could not measure), or an attack on the chips alone.
"""

from __future__ import annotations

import numpy as np

from pipeline.invisible.chiptest import MIN_COVERED, Folded, chip_test
from pipeline.invisible.embedder import export_layout
from pipeline.invisible.layout import LEGACY, Layout, layout_for
from pipeline.trace.evidence import PilotCheck
from pipeline.trace.marktest import fold_registered

CHIP_Z_MIN = 8.0  # chip correlation (~N(0, 1) without the export's mark) at which its chips are clearly there
RATIO_FLAG_DB = -2.0  # pilot/chip amplitude ratio below which the pilots were attacked
# measured by make robustness (bench/robustness.py, "removal-attempt check", 2026-12-03, the embedder that marks
# flat areas): the ratio on traced copies processed but not attacked by a notch (in-house + AugLy suites, chips
# z >= CHIP_Z_MIN), and how many of them the check flagged (0 of 1148: a false-alarm rate below 3 / 1148 = 0.26 %
# at 95 % confidence)
CLEAN_RANGE_DB = (0.0, 5.1)
CLEAN_COPIES = 1148
FALSE_ALARMS = 0


def _pilot_amplitude(folded: np.ndarray, lay: Layout) -> float:
    """RMS amplitude of the layout's pilot tones in a folded tile (a tone A cos(...) is A N^2 / 2 in its bin)."""
    n = folded.shape[0]
    spec = np.fft.fft2(folded)
    amps = [abs(spec[int(ky) % n, int(kx) % n]) * 2 / (n * n) for kx, ky in lay.pilots]
    return float(np.sqrt(np.mean(np.square(amps))))


def _db(ratio: float) -> float:
    return float(20 * np.log10(max(ratio, 1e-6)))


def pilot_check(suspect: np.ndarray, matrix: np.ndarray, export_size: tuple[int, int], subkey: bytes,
                payload: int) -> PilotCheck:
    """Measure the export's pilots against its chips in ``suspect`` registered by ``matrix`` (suspect px ->
    export px) onto an export of ``export_size`` (w, h) that carries ``payload`` under ``subkey``."""
    return measure_pilots(fold_registered(suspect, matrix, export_size), subkey, payload)


def measure_pilots(folded: Folded, subkey: bytes, payload: int) -> PilotCheck:
    """``pilot_check`` on a copy already folded into the export's tile (``marktest.fold_registered``)."""
    if folded.covered < MIN_COVERED:
        return PilotCheck(measured=False, reason=f"the copy covers too little of the export ({folded.covered} px at "
                                                 "half resolution)")
    chips = chip_test(folded, subkey, payload)
    chip_z = chips.z
    if chip_z < CHIP_Z_MIN or chips.amplitude <= 0:
        return PilotCheck(measured=False, chip_z=round(chip_z, 2),
                          reason=f"the export's data chips are not clearly in the copy (correlation z = {chip_z:.1f},"
                                 f" needs {CHIP_Z_MIN:g}): nothing to compare its pilots with")
    own = export_layout(subkey, payload)
    ratios = {"payload's": _pilot_amplitude(folded.tile, own) / chips.amplitude,
              "scheme 1": _pilot_amplitude(folded.tile, layout_for(subkey, LEGACY)) / chips.amplitude}
    which = max(ratios, key=lambda k: ratios[k])
    ratio_db = _db(ratios[which])
    return PilotCheck(measured=True, chip_z=round(chip_z, 2), ratio_db=round(ratio_db, 2), pilot_set=which,
                      attacked=ratio_db < RATIO_FLAG_DB, flag_below_db=RATIO_FLAG_DB, chip_z_min=CHIP_Z_MIN,
                      unattacked_range_db=CLEAN_RANGE_DB, false_alarms=(FALSE_ALARMS, CLEAN_COPIES))
