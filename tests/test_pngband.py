"""Band-wise PNG decoding (pipeline.imaging.pngband): bit-exact against Pillow's full decode, errors, memory."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from pipeline.imaging import pngband
from pipeline.imaging.pngband import (
    NotBandDecodable,
    PngError,
    PngLimitError,
    iter_bands,
    read_png_info,
    reduce_png,
)

SIG = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Every (bit depth, colour type) PNG allows.
FORMATS = [(1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (1, 3), (2, 3), (4, 3), (8, 3)]
FORMATS += [(8, 4), (16, 4), (8, 6), (16, 6)]
SIZES = [(1, 1), (1, 17), (17, 1), (13, 9), (37, 29)]


# --------------------------------------------------------------------------------------------------------------
# A tiny PNG encoder with forced filters (vectorised: filtering only looks at unfiltered bytes)


def chunk(ctype: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(ctype)))
    )


def rowbytes(width: int, depth: int, colour: int) -> int:
    return (width * depth * CHANNELS[colour] + 7) // 8


def filter_rows(raw: np.ndarray, bpp: int, filters: np.ndarray) -> np.ndarray:
    """Filtered scanlines (filter byte first) of raw scanlines ``raw`` (H x rowbytes) with per-row ``filters``."""
    x = raw.astype(np.int16)
    h, rb = x.shape
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp] if rb > bpp else left[:, bpp:]
    upleft = np.zeros_like(x)
    upleft[:, bpp:] = up[:, :-bpp] if rb > bpp else upleft[:, bpp:]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    preds = np.stack([np.zeros_like(x), left, up, (left + up) // 2, paeth])
    out = np.empty((h, rb + 1), np.uint8)
    out[:, 0] = filters
    out[:, 1:] = (x - preds[filters, np.arange(h)]) & 0xFF
    return out


def encode_png(
    raw: np.ndarray,
    width: int,
    depth: int,
    colour: int,
    *,
    filters: int | np.ndarray | None = None,
    plte: bytes | None = None,
    trns: bytes | None = None,
    extra: Sequence[bytes] = (),
    interlace: int = 0,
    idat_size: int = 1 << 30,
    zdata: bytes | None = None,
    height: int | None = None,
    seed: int = 0,
) -> bytes:
    """A PNG of raw scanlines ``raw``; ``filters`` None = random per row; ``zdata`` replaces the IDAT stream."""
    h = raw.shape[0]
    bpp = max(1, depth * CHANNELS[colour] // 8)
    if filters is None:
        filters = np.asarray(np.random.default_rng(seed).integers(0, 5, h))
    f = np.broadcast_to(np.asarray(filters, dtype=np.intp), (h,))
    if zdata is None:
        zdata = zlib.compress(filter_rows(raw, bpp, f).tobytes(), 6)
    ihdr = struct.pack(">IIBBBBB", width, h if height is None else height, depth, colour, 0, 0, interlace)
    out = [SIG, chunk(b"IHDR", ihdr), *extra]
    if plte is not None:
        out.append(chunk(b"PLTE", plte))
    if trns is not None:
        out.append(chunk(b"tRNS", trns))
    out += [chunk(b"IDAT", zdata[i : i + idat_size]) for i in range(0, max(1, len(zdata)), idat_size)]
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


def random_png(
    width: int, height: int, depth: int, colour: int, *, seed: int = 0, **kw: Any
) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (height, rowbytes(width, depth, colour)), dtype=np.uint8)
    if colour == 3 and "plte" not in kw:
        kw["plte"] = rng.integers(0, 256, 3 * 2**depth, dtype=np.uint8).tobytes()
    return encode_png(raw, width, depth, colour, seed=seed, **kw), raw


def full_decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def assert_bands_match(data: bytes, band_rows: int) -> list[Image.Image]:
    ref = full_decode(data)
    bands = list(iter_bands(io.BytesIO(data), band_rows=band_rows))
    heights = [b.height for b in bands]
    assert heights == [band_rows] * (len(bands) - 1) + [ref.height - band_rows * (len(bands) - 1)]
    for b in bands:
        assert b.mode == ref.mode and b.width == ref.width
        assert b.getpalette() == ref.getpalette()
        assert b.info.get("transparency") == ref.info.get("transparency")
    assert b"".join(b.tobytes() for b in bands) == ref.tobytes()
    return bands


def idat_stream(data: bytes) -> tuple[bytes, bytes]:
    """IHDR body and the concatenated IDAT data of a PNG (parsed here independently of the module)."""
    pos, z, ihdr = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if ctype == b"IHDR":
            ihdr = body
        elif ctype == b"IDAT":
            z += body
        pos += 12 + length
    return ihdr, z


def idat_filter_types(data: bytes) -> set[int]:
    """Filter types used in a non-interlaced PNG."""
    ihdr, z = idat_stream(data)
    w, _h, depth, colour = struct.unpack(">IIBB", ihdr[:10])
    stride = rowbytes(w, depth, colour) + 1
    return set(zlib.decompress(z)[::stride])


class SequentialReader:
    """A stream with nothing but ``read``: records every byte handed out, so the order can be checked."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0
        self.served = bytearray()

    def read(self, size: int, /) -> bytes:
        assert size > 0
        b = self._data[self.pos : self.pos + min(size, 1000)]  # short reads on purpose
        self.pos += len(b)
        self.served += b
        return b


# --------------------------------------------------------------------------------------------------------------
# Exactness


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"d{f[0]}c{f[1]}")
@pytest.mark.parametrize("filt", [0, 1, 2, 3, 4, None], ids=lambda f: f"filter{f}")
def test_forced_filters_match_full_decode(fmt: tuple[int, int], filt: int | None) -> None:
    depth, colour = fmt
    for k, (w, h) in enumerate(SIZES):
        data, _ = random_png(w, h, depth, colour, filters=filt, seed=k)
        for band_rows in (1, 2, 7, 256):
            assert_bands_match(data, band_rows)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"d{f[0]}c{f[1]}")
def test_carry_row_round_trips(fmt: tuple[int, int]) -> None:
    """The reconstructed previous row a band hands to the next is the raw scanline, padding bits included."""
    depth, colour = fmt
    data, raw = random_png(21, 5, depth, colour, filters=4, seed=3)
    info = read_png_info(io.BytesIO(data))
    dec = pngband._BandDecoder(info)
    stride = info.rowbytes + 1
    z = zlib.decompress(idat_stream(data)[1])
    for y in range(raw.shape[0]):
        dec.decode(bytearray(z[y * stride : (y + 1) * stride]), 1, y)
        assert dec.carry == raw[y].tobytes()


def _pillow_images() -> Iterator[tuple[str, Image.Image, dict[str, object]]]:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:90, 0:123]
    smooth = np.stack([xx * 2, yy * 2, xx + yy], axis=-1).astype(np.uint8)
    noisy = (smooth + rng.integers(0, 24, smooth.shape)).astype(np.uint8)
    mixed = np.where((xx // 20 % 2 == 0)[..., None], smooth, rng.integers(0, 256, smooth.shape)).astype(
        np.uint8
    )
    # Tiny signed values: no filter beats None. An Average-filtered stream of residuals in -1..1: Average wins.
    tiny = rng.choice(np.array([0, 2, 254], np.uint8), smooth.shape)
    residuals = (rng.integers(-1, 2, (90, 123 * 3)) & 0xFF).astype(np.uint8)
    avg_stream = np.concatenate([np.full((90, 1), 3, np.uint8), residuals], axis=1).tobytes()
    avg = np.asarray(full_decode(encode_png(residuals, 123, 8, 2, zdata=zlib.compress(avg_stream))))
    cases = (("smooth", smooth), ("noisy", noisy), ("mixed", mixed), ("tiny", tiny), ("avg", avg))
    for name, a in cases:
        rgb = Image.fromarray(a)
        yield f"{name}-RGB", rgb, {}
        yield f"{name}-RGBA", Image.fromarray(np.dstack([a, a[..., 1] ^ a[..., 2]])), {}
        yield f"{name}-L", rgb.convert("L"), {}
        yield f"{name}-LA", rgb.convert("LA"), {}
        yield f"{name}-1", rgb.convert("1"), {}
        for bits in (1, 2, 4, 8):
            yield f"{name}-P{bits}", rgb.quantize(2**bits), {"bits": bits}
        yield f"{name}-I16", Image.fromarray(a[..., 0].astype(np.uint16) * 257 + a[..., 1]), {}
    rgb = Image.fromarray(noisy)
    yield "trns-L", rgb.convert("L"), {"transparency": 17}
    yield "trns-RGB", rgb, {"transparency": (1, 2, 3)}
    yield "trns-P-one", rgb.quantize(16), {"transparency": 3}
    yield "trns-P-alphas", rgb.quantize(16), {"transparency": bytes(range(0, 160, 10))}
    yield "trns-1", rgb.convert("1"), {"transparency": 255}
    yield "icc", rgb, {"icc_profile": b"not really a profile" * 40}


@pytest.mark.parametrize("case", list(_pillow_images()), ids=lambda c: c[0])
def test_pillow_encoded_files_match(case: tuple[str, Image.Image, dict[str, object]]) -> None:
    _name, im, params = case
    buf = io.BytesIO()
    im.save(buf, "PNG", **params)
    data = buf.getvalue()
    ref = full_decode(data)
    for band_rows in (1, 5, 32, 1000):
        bands = assert_bands_match(data, band_rows)
    assert bands[0].info.get("icc_profile") == ref.info.get("icc_profile")
    if "transparency" in ref.info or ref.mode == "P":
        rgba = Image.new("RGBA", ref.size)
        y = 0
        for b in iter_bands(io.BytesIO(data), band_rows=7):
            rgba.paste(b.convert("RGBA"), (0, y))
            y += b.height
        assert rgba.tobytes() == ref.convert("RGBA").tobytes()


def test_pillow_adaptive_filtering_exercises_several_filter_types() -> None:
    """Pillow's encoder picks a filter per row; in these files it uses None, Sub, Up and Paeth (Average never
    won in any content tried: the forced-filter tests above cover it with the hand-built encoder)."""
    seen: set[int] = set()
    for name, im, params in _pillow_images():
        if name.endswith(("-RGB", "-RGBA", "-L")):
            buf = io.BytesIO()
            im.save(buf, "PNG", **params)
            seen |= idat_filter_types(buf.getvalue())
    assert seen >= {0, 1, 2, 4}


def test_short_palette_and_out_of_range_indices() -> None:
    data, _ = random_png(19, 11, 8, 3, plte=bytes(range(30)), trns=b"\x00\x80\xff")
    assert_bands_match(data, 4)


def test_many_small_idat_chunks_and_ancillary_chunks() -> None:
    extra = [
        chunk(b"tEXt", b"Title\0hello"),
        chunk(b"prVt", b"x" * 100),
        chunk(b"gAMA", struct.pack(">I", 45455)),
    ]
    data, _ = random_png(33, 20, 8, 2, idat_size=7, extra=extra)
    assert_bands_match(data, 3)
    info = read_png_info(io.BytesIO(data))
    assert info.text == {"Title": "hello"} and info.gamma == full_decode(data).info["gamma"]


@settings(max_examples=80, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    width=st.integers(1, 70),
    height=st.integers(1, 40),
    band_rows=st.integers(1, 45),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_sizes_and_bands(
    fmt: tuple[int, int], width: int, height: int, band_rows: int, seed: int
) -> None:
    data, _ = random_png(width, height, *fmt, seed=seed)
    assert_bands_match(data, band_rows)


# --------------------------------------------------------------------------------------------------------------
# Header, streaming, APNG, interlace


def test_read_png_info_fields_and_continuing_the_stream() -> None:
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).quantize(8)
    meta = PngImagePlugin.PngInfo()
    meta.add_text("Author", "me")
    meta.add_itxt("Note", "héllo", zip=True)
    meta.add_text("Zipped", "z" * 50, zip=True)
    buf = io.BytesIO()
    im.save(buf, "PNG", bits=4, transparency=2, icc_profile=b"ICC" * 100, dpi=(300, 300), pnginfo=meta)
    data = buf.getvalue()
    fp = io.BytesIO(data)
    info = read_png_info(fp)
    assert (info.width, info.height, info.bit_depth, info.colour_type) == (40, 30, 4, 3)
    assert info.mode == "P" and info.rawmode == "P;4" and not info.interlaced
    assert info.icc_profile == b"ICC" * 100 and info.has_transparency and info.transparency == 2
    assert info.text == {"Author": "me", "Note": "héllo", "Zipped": "z" * 50}
    ref = full_decode(data)
    for key in ("transparency", "icc_profile", "dpi"):
        assert info.pillow_info()[key] == ref.info[key]
    bands = list(iter_bands(fp, band_rows=8, info=info))
    assert b"".join(b.tobytes() for b in bands) == ref.tobytes()


def test_mode_table_is_pillows() -> None:
    assert pngband._MODES == PngImagePlugin._MODES
    assert sorted(pngband._MODES) == sorted(FORMATS)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"d{f[0]}c{f[1]}")
def test_info_mode_is_pillows(fmt: tuple[int, int]) -> None:
    data, _ = random_png(5, 3, *fmt)
    info = read_png_info(io.BytesIO(data))
    assert info.mode == full_decode(data).mode
    assert info.has_transparency == (fmt[1] in (4, 6))


def test_reads_strictly_sequentially_and_stops_at_iend() -> None:
    data, _ = random_png(300, 40, 8, 6, idat_size=3000)
    reader = SequentialReader(data + b"trailing junk after IEND")
    bands = list(iter_bands(reader, band_rows=16))
    assert bytes(reader.served) == data  # every byte once, in order, nothing after IEND
    assert b"".join(b.tobytes() for b in bands) == full_decode(data).tobytes()


def test_errors_surface_before_the_last_band() -> None:
    data, _ = random_png(10, 8, 8, 0)
    bad = data[:-8] + b"IEND\x00\x00\x00\x00"  # IEND with a wrong CRC
    it = iter_bands(io.BytesIO(bad), band_rows=4)
    next(it)
    with pytest.raises(PngError, match="CRC"):
        next(it)


def test_interlaced_is_not_band_decodable() -> None:
    data, _ = random_png(9, 9, 8, 2, interlace=1)
    info = read_png_info(io.BytesIO(data))
    assert info.interlaced
    with pytest.raises(NotBandDecodable) as e:
        iter_bands(io.BytesIO(data))
    assert e.value.info.width == 9
    with pytest.raises(NotBandDecodable):
        reduce_png(io.BytesIO(data), 2)
    assert not issubclass(NotBandDecodable, ValueError)


@pytest.mark.parametrize("default_image", [False, True])
def test_apng_decodes_the_default_image(default_image: bool) -> None:
    rng = np.random.default_rng(5)
    frames = [Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)) for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], default_image=default_image)
    data = buf.getvalue()
    info = read_png_info(io.BytesIO(data))
    assert info.animated
    reader = SequentialReader(data)
    bands = list(iter_bands(reader, band_rows=6))
    assert bytes(reader.served) == data
    assert b"".join(b.tobytes() for b in bands) == full_decode(data).tobytes() == frames[0].tobytes()


def test_apng_partial_default_frame_is_not_band_decodable() -> None:
    fctl = chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 4, 4, 0, 0, 1, 10, 0, 0))
    data, _ = random_png(8, 8, 8, 0, extra=[chunk(b"acTL", struct.pack(">II", 1, 0)), fctl])
    with pytest.raises(NotBandDecodable, match="partial"):
        iter_bands(io.BytesIO(data))


# --------------------------------------------------------------------------------------------------------------
# Corrupt and hostile files


def _decode_all(data: bytes) -> None:
    for _ in iter_bands(io.BytesIO(data), band_rows=3):
        pass


def test_every_truncation_is_a_png_error() -> None:
    data, _ = random_png(11, 7, 8, 3, trns=b"\x00\x80")
    for n in range(len(data)):
        with pytest.raises(PngError):
            _decode_all(data[:n])


def test_every_single_byte_corruption_is_a_png_error() -> None:
    data, _ = random_png(6, 5, 2, 0)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x41
        with pytest.raises(PngError):
            _decode_all(bytes(bad))


def _filtered(w: int, h: int, seed: int = 0) -> bytes:
    raw = np.random.default_rng(seed).integers(0, 256, (h, w * 3), dtype=np.uint8)
    return filter_rows(raw, 3, np.full(h, 2)).tobytes()


def test_bad_crc_names_the_chunk() -> None:
    data, _ = random_png(10, 10, 8, 2)
    i = data.index(b"IEND") - 5  # last byte of the IDAT data
    bad = data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]
    with pytest.raises(PngError, match="CRC mismatch in IDAT"):
        _decode_all(bad)


def test_premature_end_of_image_data() -> None:
    z = zlib.compress(_filtered(10, 6), 6)  # a complete zlib stream of 6 rows for a 10-row header
    data, _ = random_png(10, 10, 8, 2, zdata=z)
    with pytest.raises(PngError, match="premature end"):
        _decode_all(data)
    data, _ = random_png(10, 10, 8, 2, zdata=zlib.compress(_filtered(10, 10))[:-40])  # stream cut short
    with pytest.raises(PngError, match="premature end"):
        _decode_all(data)


def test_too_much_image_data_and_garbage_after_the_zlib_stream() -> None:
    data, _ = random_png(10, 10, 8, 2, zdata=zlib.compress(_filtered(10, 11)))
    with pytest.raises(PngError, match="too much image data"):
        _decode_all(data)
    data, _ = random_png(10, 10, 8, 2, zdata=zlib.compress(_filtered(10, 10)) + b"garbage")
    with pytest.raises(PngError, match="extra data after the end of the zlib stream"):
        _decode_all(data)
    data, _ = random_png(10, 10, 8, 2, zdata=zlib.compress(_filtered(10, 10))[:-4])  # adler32 missing
    with pytest.raises(PngError, match="end of the zlib stream"):
        _decode_all(data)


def test_bad_filter_type_names_the_row() -> None:
    rows = bytearray(_filtered(4, 6))
    rows[3 * 13] = 5
    data, _ = random_png(4, 6, 8, 2, zdata=zlib.compress(bytes(rows)))
    with pytest.raises(PngError, match="bad filter type 5 in row 3"):
        _decode_all(data)


def test_structural_garbage() -> None:
    data, _ = random_png(5, 5, 8, 0)
    with pytest.raises(PngError, match="signature"):
        _decode_all(b"GIF89a" + data[6:])
    i = data.index(b"IDAT") - 4
    with pytest.raises(PngError, match="invalid chunk type"):
        _decode_all(data[:i] + b"\x00\x00\x00\x04\x01\x02\x03\x04" + b"junkjunk" + data[i:])
    iend = data.index(b"IEND") - 4
    with pytest.raises(PngError, match="not consecutive"):
        _decode_all(data[:iend] + chunk(b"tEXt", b"a\0b") + chunk(b"IDAT", b"") + data[iend:])
    with pytest.raises(PngError, match="PLTE"):
        _decode_all(random_png(5, 5, 8, 3, plte=None)[0])
    with pytest.raises(PngError, match="IHDR"):
        _decode_all(SIG + chunk(b"IDAT", b""))
    with pytest.raises(PngError, match="bit depth"):
        _decode_all(SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 5, 3, 0, 0, 0, 0)) + chunk(b"IEND", b""))


def test_zlib_bomb_is_inflated_in_bounded_steps() -> None:
    """A small file declaring a huge image: the limit refuses it up front, and without a limit the data is
    inflated one band at a time (the test takes a couple of bands and stops)."""
    w, h = 20000, 20000
    stride = w * 3 + 1
    z = zlib.compress(bytes(stride * 100), 9)  # 6 MB of zero rows in 6 kB (the rest of the file is missing)
    data = encode_png(np.zeros((1, 3 * w), np.uint8), w, 8, 2, zdata=z, height=h)
    assert len(data) < 10_000
    with pytest.raises(PngLimitError):
        iter_bands(io.BytesIO(data), max_inflated=100 << 20)
    it = iter_bands(io.BytesIO(data), band_rows=16)
    assert next(it).size == (w, 16) and next(it).size == (w, 16)


# --------------------------------------------------------------------------------------------------------------
# reduce_png


def _reference_reduce(data: bytes, factor: int, mode: str | None = None) -> Image.Image:
    full = full_decode(data)
    target = mode or pngband.reduced_mode(read_png_info(io.BytesIO(data)))
    converted = full if full.mode == target else full.convert(target)
    return converted.reduce(factor) if factor > 1 else converted


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"d{f[0]}c{f[1]}")
def test_reduce_matches_full_decode_then_reduce(fmt: tuple[int, int]) -> None:
    for k, (w, h) in enumerate([(1, 1), (7, 3), (64, 61), (100, 37)]):
        data, _ = random_png(w, h, *fmt, seed=k, filters=None)
        for factor in (1, 2, 3, 5):
            ref = _reference_reduce(data, factor)
            for band_rows in (None, factor, 4 * factor):
                out = reduce_png(io.BytesIO(data), factor, band_rows=band_rows)
                assert out.mode == ref.mode and out.size == ref.size
                assert out.tobytes() == ref.tobytes(), (fmt, w, h, factor, band_rows)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "I"])
def test_reduce_to_a_chosen_mode(mode: str) -> None:
    for fmt in [(8, 2), (8, 3), (16, 0), (1, 0), (16, 6)]:
        data, _ = random_png(50, 43, *fmt, trns=b"\x00\x05" if fmt[1] == 0 else None)
        out = reduce_png(io.BytesIO(data), 4, mode=mode)
        assert out.tobytes() == _reference_reduce(data, 4, mode).tobytes(), fmt


def test_reduce_of_pillow_8bit_files_equals_image_reduce() -> None:
    for name, im, params in _pillow_images():
        if name.rsplit("-", 1)[-1] in ("RGB", "RGBA", "L", "LA"):
            buf = io.BytesIO()
            im.save(buf, "PNG", **params)
            for factor in (2, 3, 5, 8):
                ref = Image.open(io.BytesIO(buf.getvalue())).reduce(factor)
                assert reduce_png(io.BytesIO(buf.getvalue()), factor).tobytes() == ref.tobytes()


@settings(max_examples=40, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    width=st.integers(1, 60),
    height=st.integers(1, 60),
    factor=st.integers(1, 7),
    bands=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_reduce(
    fmt: tuple[int, int], width: int, height: int, factor: int, bands: int, seed: int
) -> None:
    data, _ = random_png(width, height, *fmt, seed=seed)
    out = reduce_png(io.BytesIO(data), factor, band_rows=bands * factor)
    assert out.tobytes() == _reference_reduce(data, factor).tobytes()


def test_reduce_argument_checks() -> None:
    data, _ = random_png(10, 10, 8, 2)
    with pytest.raises(ValueError, match="multiple"):
        reduce_png(io.BytesIO(data), 3, band_rows=4)
    with pytest.raises(ValueError, match="mode"):
        reduce_png(io.BytesIO(data), 2, mode="P")
    with pytest.raises(ValueError, match="factor"):
        reduce_png(io.BytesIO(data), 0)


# --------------------------------------------------------------------------------------------------------------
# Memory: a 100 MP PNG reduced by 5


def write_gradient_png(path: Path, width: int, height: int, *, band: int = 200) -> None:
    """A width x height RGB gradient PNG written band by band (zlib level 1, Sub filter) in bounded memory."""
    xs = np.arange(width, dtype=np.uint32)[None, :]
    c = zlib.compressobj(1)
    with path.open("wb") as f:
        f.write(SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        for y0 in range(0, height, band):
            ys = np.arange(y0, min(height, y0 + band), dtype=np.uint32)[:, None]
            n = ys.shape[0]
            rows = np.empty((n, 1 + 3 * width), np.uint8)
            rgb = rows[:, 1:].reshape(n, width, 3)
            rgb[..., 0] = xs * 255 // width
            rgb[..., 1] = ys * 255 // height
            rgb[..., 2] = (xs + ys) % 256
            rows[:, 4:] -= rows[:, 1:-3].copy()  # Sub filter (uint8 arithmetic wraps like PNG's)
            rows[:, 0] = 1
            z = c.compress(rows.data)
            if z:
                f.write(chunk(b"IDAT", z))
        f.write(chunk(b"IDAT", c.flush()) + chunk(b"IEND", b""))


_MEASURE = """
import json, resource, sys, time
from pipeline.imaging.pngband import reduce_png
from PIL import Image

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))

# ru_maxrss survives exec on Linux (it starts at the parent's peak), so the peak is read from VmHWM, reset to
# the current RSS once the imports are done.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
t = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    out = reduce_png(f, 5)
elapsed = time.perf_counter() - t
print(json.dumps({"base_kb": base, "peak_kb": status("VmHWM:"), "seconds": elapsed, "size": out.size,
                  "mode": out.mode, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to read the peak RSS"
)
def test_100mp_png_reduces_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    write_gradient_png(path, 10000, 10000)
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    r = json.loads(proc.stdout)
    extra_mb = (r["peak_kb"] - r["base_kb"]) / 1024
    print(
        f"100 MP RGB PNG reduce_png(5): {r['seconds']:.2f} s, peak RSS {r['peak_kb'] / 1024:.0f} MB "
        f"({extra_mb:.0f} MB over the {r['base_kb'] / 1024:.0f} MB after imports)"
    )
    assert r["size"] == [2000, 2000] and r["mode"] == "RGB"
    assert extra_mb < 150
