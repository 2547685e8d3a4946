"""Tests for ``pipeline.metadata.check``'s pHash comparison against imagehash, the reader it replaced."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pipeline.imaging.hashes import phash_hex
from pipeline.metadata.check import _phash_bits

_PIXELS = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
_REF = imagehash.phash(Image.fromarray(_PIXELS))
_MINE = int(phash_hex(_PIXELS), 16)


def _imagehash_distance(text: str) -> int | None:
    try:
        return int(imagehash.hex_to_hash(text) - _REF)
    except (ValueError, TypeError):
        return None


def _distance(text: str) -> int | None:
    try:
        return (_phash_bits(text) ^ _MINE).bit_count()
    except (ValueError, TypeError):
        return None


@pytest.mark.parametrize("text", [
    str(_REF), str(_REF).upper(), " " + str(_REF), "0x" + str(_REF), "0000" + str(_REF), "00000" + str(_REF),
    str(_REF)[:8] + "_" + str(_REF)[8:], str(_REF)[:-1], "f" * 17, "-" + str(_REF)[1:], "None", "", "zz" * 8,
])
def test_claimed_phash_parses_as_imagehash_did(text):
    assert _distance(text) == _imagehash_distance(text)


@given(st.text(alphabet="0123456789abcdefABCDEFxX_-+ \t", max_size=24))
def test_any_claimed_phash_text_parses_as_imagehash_did(text):
    assert _distance(text) == _imagehash_distance(text)


def test_the_signed_pixels_are_at_distance_zero():
    assert _distance(str(_REF)) == 0


# --- public owner fields against the signed claim --------------------------------------------------------------

def _signed(claim, key):
    from pipeline.metadata.claim import sign_claim

    return sign_claim(claim, key)


def test_public_fields_accept_what_the_writers_encode_and_flag_the_rest(owner_key):
    from pipeline.metadata.check import public_field_changes
    from pipeline.metadata.read import EmbeddedMetadata
    from pipeline.metadata.text import ascii_text

    name, notice = "Ñandú Studio — 東京", "© 2026 Ñandú Studio — 東京. All rights reserved; " + "x" * 120
    claim = {"v": 2, "owner": name, "copyright": notice}
    as_written = EmbeddedMetadata(
        exif={"Artist": ascii_text(name), "Copyright": ascii_text(notice)},
        xmp={"dc:creator": [name], "dc:rights": notice},
        iptc={"By-line": name.encode()[:32].decode("utf-8", "ignore"),
              "CopyrightNotice": notice.encode()[:128].decode("utf-8", "ignore")},
    )
    assert public_field_changes(as_written, claim) == []
    assert public_field_changes(EmbeddedMetadata(), claim) == []  # stripped metadata: nothing to contradict
    two = EmbeddedMetadata(xmp={"dc:creator": [name, "Copycat"]}, iptc={"By-line": "Copycat"})
    assert [(a.field, a.found) for a in public_field_changes(two, claim)] == [
        ("XMP dc:creator", f"{name}; Copycat"), ("IPTC By-line", "Copycat")]
    v1 = {"v": 1, "owner": name}  # a v1 claim signs no copyright: those fields are not checked
    other = EmbeddedMetadata(exif={"Artist": "Copycat", "Copyright": "(c) Copycat"})
    assert [a.field for a in public_field_changes(other, v1)] == ["EXIF Artist"]


def test_an_unverified_claim_reports_no_field_changes(owner_key, other_key):
    """Fields are only compared with a claim whose signature verifies: a forged claim vouches for nothing."""
    from pipeline.metadata.check import check_claim
    from pipeline.metadata.read import EmbeddedMetadata

    pixels = np.full((64, 64, 3), 200, np.uint8)
    pixels[16:48, 16:48] = 20
    claim = {"v": 2, "owner": "Example Studio", "copyright": "(c) Example Studio", "key": owner_key.fingerprint,
             "phash": phash_hex(pixels)}
    meta = EmbeddedMetadata(present=True, claim=claim, signature=_signed(claim, owner_key),
                            exif={"Artist": "Copycat"})
    good = check_claim(meta, pixels, owner_key.public)
    assert good.signature_valid and [a.field for a in good.altered] == ["EXIF Artist"] and not good.ok
    assert "EXIF Artist was changed to 'Copycat' (the signed claim says 'Example Studio')" in good.problems
    forged = check_claim(meta, pixels, other_key.public)
    assert not forged.signature_valid and forged.altered == []
    v1 = {k: v for k, v in claim.items() if k != "copyright"} | {"v": 1}
    meta_v1 = EmbeddedMetadata(present=True, claim=v1, signature=_signed(v1, owner_key),
                               exif={"Copyright": "(c) Copycat"})
    assert check_claim(meta_v1, pixels, owner_key.public).ok  # old exports still verify
