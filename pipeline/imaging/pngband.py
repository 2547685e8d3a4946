"""Band-wise PNG decoding in bounded memory, bit-identical to Pillow's full decode.

A 100 MP PNG decoded by Pillow in one go costs 400 MB (RGB is stored at 4 bytes a pixel) before anything can
downscale it. This module reads the file strictly sequentially (never seeks, never reads a byte twice, so a caller
can hash the bytes as they pass), parses the chunks itself, inflates the IDAT stream incrementally with a bounded
``max_length`` per call, cuts the inflated data into scanlines and hands one band of scanlines at a time to
Pillow's own C "zip" decoder (the decoder PngImagePlugin uses), so the unfiltering and the unpacking into Pillow's
mode are Pillow's code, not a reimplementation.

The one thing a band needs from the band before it is the *reconstructed* (unfiltered) previous scanline: the Up,
Average and Paeth filters of a band's first row refer to it. Each band is therefore decoded as a small image whose
first row is that previous scanline, stored with filter type 0, followed by the band's filtered scanlines as they
are; the first decoded row is dropped. The reconstructed bytes of the band's last row are kept for the next band:

* 8-bit modes and 16-bit grey: Pillow's decoded image is lossless, ``tobytes("raw", rawmode)`` gives them back.
* bit depths 1, 2 and 4: PNG filters these bytewise with one byte per "pixel", exactly like an 8-bit grey image
  ``rowbytes`` wide, so the band is unfiltered as such an "L" image (padding bits included) and then unpacked with
  Pillow's raw decoder and the file's rawmode ("1", "L;2", "P;4", ...).
* 16-bit RGB, RGBA and grey+alpha: Pillow keeps only the high bytes, so the low bytes of the previous row are
  not in its output. Unfiltering works on each byte position modulo the bytes per pixel independently (every
  neighbour a filter uses is a multiple of the pixel size away), so the band is decoded a second time shifted
  left by one byte: the high bytes of that decode are the low bytes of the first. 16-bit bands cost two decodes.

Peak memory is a small multiple of one band (``band_rows`` x ``rowbytes``) plus, for ``reduce_png``, the reduced
output; it does not depend on the image height. A file whose data ends before the declared size, has a bad CRC, a
bad filter type, garbage in place of a chunk, more image data than declared or data after the zlib stream raises
``PngError``; every check of the file (up to and including IEND) is done before the last band is yielded, so a
loop that completes has read a valid file. Bytes after IEND are not read. Interlaced (Adam7) files, and APNGs whose
default image is a partial frame, raise ``NotBandDecodable``: the caller decodes those in full after its own
pixel-limit check. For an APNG the default image (what ``Image.open`` shows as frame 0) is decoded and the other
frames are skipped.

The band is handed to the decoder as ``Image.frombytes(mode, size, zlib_stream, "zip", rawmode)``: the zlib
stream (level 0) of its scanlines, without wrapping it in PNG chunks, since the chunk layer is what this module
replaces. Stricter than ``Image.open``: every chunk's CRC is checked (Pillow skips some), and extra rows or bytes
after the zlib stream, which Pillow ignores, are errors. No pixel limit is applied (``max_inflated`` caps the
declared data size); Pillow's ``MAX_IMAGE_PIXELS`` check is the caller's.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: (bit depth, colour type) -> (Pillow mode, rawmode): the table PngImagePlugin uses (16-bit RGB, grey+alpha and
#: RGBA decode to 8-bit RGB/RGBA keeping the high bytes; 16-bit grey+alpha becomes RGBA).
_MODES: dict[tuple[int, int], tuple[str, str]] = {
    (1, 0): ("1", "1"),
    (2, 0): ("L", "L;2"),
    (4, 0): ("L", "L;4"),
    (8, 0): ("L", "L"),
    (16, 0): ("I;16", "I;16B"),
    (8, 2): ("RGB", "RGB"),
    (16, 2): ("RGB", "RGB;16B"),
    (1, 3): ("P", "P;1"),
    (2, 3): ("P", "P;2"),
    (4, 3): ("P", "P;4"),
    (8, 3): ("P", "P"),
    (8, 4): ("LA", "LA"),
    (16, 4): ("RGBA", "LA;16B"),
    (8, 6): ("RGBA", "RGBA"),
    (16, 6): ("RGBA", "RGBA;16B"),
}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

#: Pillow's test for "tRNS makes exactly one palette entry transparent" (kept identical, quirks included, so the
#: ``transparency`` info is the same as ``Image.open`` gives).
_SIMPLE_PALETTE = re.compile(b"^\xff*\x00\xff*$")

READ_BLOCK = 1 << 16  # bytes asked of fp per read while streaming a chunk
INFLATE_STEP = 1 << 20  # most bytes one zlib decompress call may produce
MAX_CHUNK = 16 << 20  # largest ancillary chunk read into memory; larger unparsed chunks are streamed past
MAX_TEXT_CHUNK = 1 << 20  # as Pillow's PngImagePlugin.MAX_TEXT_CHUNK: inflated iCCP / zTXt / iTXt limit
MAX_TEXT_MEMORY = 64 * MAX_TEXT_CHUNK
#: Bytes per band (filtered data, or decoded pixels) ``reduce_png`` aims at when it picks the band height.
REDUCE_BAND_BYTES = 4 << 20
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "I", "F"})


class PngError(ValueError):
    """The PNG stream is corrupt, truncated or not a PNG; the message says what and where."""


class PngLimitError(PngError):
    """The PNG declares more image data than the caller's ``max_inflated`` allows."""


class NotBandDecodable(Exception):
    """A valid PNG this module cannot decode band by band (Adam7 interlacing, a partial APNG default frame).

    ``info`` is the header that was read; the caller falls back to a full decode.
    """

    def __init__(self, message: str, info: PngInfo) -> None:
        super().__init__(message)
        self.info = info


class SupportsRead(Protocol):
    """What ``fp`` must offer: ``read(n)`` returning at most ``n`` bytes, ``b""`` at the end."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class PngInfo:
    """Header of a PNG (everything before the first IDAT) and the Pillow mode a full decode gives."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool
    mode: str
    rawmode: str
    icc_profile: bytes | None = None
    has_transparency: bool = False
    #: What Pillow puts in ``info["transparency"]``: an int (grey, or the one transparent palette index), an RGB
    #: tuple, or one alpha byte per palette entry; None without tRNS (alpha channels are not listed here).
    transparency: int | tuple[int, int, int] | bytes | None = None
    palette: bytes | None = None
    gamma: float | None = None
    srgb: int | None = None
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None
    animated: bool = False
    #: tEXt / zTXt / iTXt chunks found before the image data (later ones are not collected).
    text: dict[str, str] = field(default_factory=dict)
    _has_iccp: bool = field(default=False, repr=False, compare=False)
    _blocker: str | None = field(default=None, repr=False, compare=False)
    _first_idat_length: int = field(default=-1, repr=False, compare=False)
    _offset: int = field(default=0, repr=False, compare=False)

    @property
    def channels(self) -> int:
        """Samples per pixel in the file (palette images: 1)."""
        return _CHANNELS[self.colour_type]

    @property
    def rowbytes(self) -> int:
        """Bytes of one scanline in the file, without its filter byte."""
        return (self.width * self.bit_depth * self.channels + 7) // 8

    @property
    def inflated_size(self) -> int:
        """Bytes the IDAT stream inflates to: height x (1 + rowbytes)."""
        return self.height * (self.rowbytes + 1)

    def pillow_info(self) -> dict[str, Any]:
        """The entries of ``Image.open(f).info`` this header defines (transparency, icc_profile, gamma, ...)."""
        out: dict[str, Any] = {}
        if self.transparency is not None:
            out["transparency"] = self.transparency
        if self._has_iccp:
            out["icc_profile"] = self.icc_profile
        if self.gamma is not None:
            out["gamma"] = self.gamma
        if self.srgb is not None:
            out["srgb"] = self.srgb
        if self.dpi is not None:
            out["dpi"] = self.dpi
        if self.exif is not None:
            out["exif"] = b"Exif\x00\x00" + self.exif
        return out


def _is_chunk_type(ctype: bytes) -> bool:
    return len(ctype) == 4 and all(65 <= c <= 90 or 97 <= c <= 122 for c in ctype)


class _Chunks:
    """Sequential chunk reader over ``fp`` that verifies every CRC."""

    def __init__(self, fp: SupportsRead, offset: int = 0) -> None:
        self._fp = fp
        self.offset = offset
        self.pending: tuple[bytes, int] | None = None

    def read_exact(self, n: int, what: str) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            b = self._fp.read(n - got)
            if not b:
                raise PngError(
                    f"truncated PNG: {what} ends after {got} of {n} bytes (file offset {self.offset})"
                )
            parts.append(b)
            got += len(b)
            self.offset += len(b)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def header(self) -> tuple[bytes, int]:
        if self.pending is not None:
            ctype, length = self.pending
            self.pending = None
            return ctype, length
        at = self.offset
        length, ctype = struct.unpack(">I4s", self.read_exact(8, "chunk header"))
        if not _is_chunk_type(ctype):
            raise PngError(
                f"invalid chunk type {ctype!r} at file offset {at}: garbage or corruption in the PNG"
            )
        if length > 0x7FFFFFFF:
            raise PngError(f"{ctype.decode()} chunk at file offset {at} declares an invalid length {length}")
        return ctype, length

    def check_crc(self, ctype: bytes, crc: int) -> None:
        (stored,) = struct.unpack(">I", self.read_exact(4, f"{ctype.decode()} CRC"))
        if stored != crc:
            raise PngError(f"CRC mismatch in {ctype.decode()} chunk (ending at file offset {self.offset})")

    def body(self, ctype: bytes, length: int) -> bytes:
        data = self.read_exact(length, f"{ctype.decode()} chunk")
        self.check_crc(ctype, zlib.crc32(data, zlib.crc32(ctype)))
        return data

    def skip(self, ctype: bytes, length: int) -> None:
        crc = zlib.crc32(ctype)
        left = length
        while left:
            b = self.read_exact(min(left, READ_BLOCK), f"{ctype.decode()} chunk")
            crc = zlib.crc32(b, crc)
            left -= len(b)
        self.check_crc(ctype, crc)

    def idat_pieces(self, first_length: int) -> Iterator[bytes]:
        """Compressed data of the consecutive IDAT chunks, CRC-checked; then ``pending`` is the next header."""
        length = first_length
        while True:
            crc = zlib.crc32(b"IDAT")
            left = length
            while left:
                b = self.read_exact(min(left, READ_BLOCK), "IDAT chunk")
                crc = zlib.crc32(b, crc)
                left -= len(b)
                yield b
            self.check_crc(b"IDAT", crc)
            ctype, length = self.header()
            if ctype != b"IDAT":
                self.pending = (ctype, length)
                return

    def read_trailer(self) -> None:
        """Read (and CRC-check) the chunks after the image data, up to and including IEND."""
        while True:
            ctype, length = self.header()
            if ctype == b"IEND":
                if length:
                    raise PngError(f"IEND chunk has length {length}, not 0")
                self.body(ctype, 0)
                return
            if ctype == b"IDAT":
                raise PngError("IDAT chunk after other chunks: the image data is not consecutive")
            if ctype in (b"IHDR", b"PLTE"):
                raise PngError(f"{ctype.decode()} chunk after the image data")
            self.skip(ctype, length)


def _text_entry(ctype: bytes, data: bytes) -> tuple[str, str] | None:
    """Key and value of a tEXt / zTXt / iTXt chunk, or None if it is malformed or too large."""
    try:
        key, _, rest = data.partition(b"\0")
        if ctype == b"tEXt":
            return key.decode("latin-1"), rest.decode("latin-1")
        if ctype == b"zTXt":
            if rest[:1] != b"\0":
                return None
            return key.decode("latin-1"), _bounded_inflate(rest[1:]).decode("latin-1")
        flag, method = rest[0], rest[1]
        _lang, _, rest = rest[2:].partition(b"\0")
        _tkey, _, value = rest.partition(b"\0")
        if flag:
            if method != 0:
                return None
            value = _bounded_inflate(value)
        return key.decode("latin-1"), value.decode("utf-8")
    except (IndexError, UnicodeDecodeError, ValueError, zlib.error):
        return None


def _bounded_inflate(data: bytes) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_TEXT_CHUNK)
    if d.unconsumed_tail:
        raise ValueError(f"inflates to more than {MAX_TEXT_CHUNK} bytes")
    return out


def _check_length(ctype: bytes, length: int, least: int) -> None:
    if length < least:
        raise PngError(f"truncated {ctype.decode()} chunk: {length} bytes, at least {least} needed")


def _read_info(chunks: _Chunks) -> PngInfo:
    if chunks.read_exact(8, "PNG signature") != PNG_SIGNATURE:
        raise PngError("not a PNG file (bad signature)")
    ctype, length = chunks.header()
    if ctype != b"IHDR" or length != 13:
        raise PngError(f"first chunk is {ctype.decode()} of {length} bytes, not a 13-byte IHDR")
    width, height, depth, colour, compression, filter_method, interlace = struct.unpack(
        ">IIBBBBB", chunks.body(ctype, length)
    )
    if not (0 < width <= 0x7FFFFFFF and 0 < height <= 0x7FFFFFFF):
        raise PngError(f"invalid image size {width}x{height} in IHDR")
    if (depth, colour) not in _MODES:
        raise PngError(f"unsupported bit depth {depth} for colour type {colour} in IHDR")
    if compression != 0 or filter_method != 0 or interlace not in (0, 1):
        raise PngError(
            f"unknown compression ({compression}), filter ({filter_method}) or interlace ({interlace}) method"
        )
    mode, rawmode = _MODES[(depth, colour)]
    fields: dict[str, Any] = {}
    text: dict[str, str] = {}
    text_memory = 0
    blocker = "interlaced (Adam7) PNG" if interlace else None
    while True:
        ctype, length = chunks.header()
        if ctype == b"IDAT":
            break
        if ctype == b"IEND":
            raise PngError("no image data: IEND before any IDAT chunk")
        if ctype in (b"IHDR", b"fdAT"):
            raise PngError(f"unexpected {ctype.decode()} chunk before the image data")
        parsed = ctype in (b"PLTE", b"tRNS", b"iCCP", b"sRGB", b"gAMA", b"pHYs", b"eXIf", b"acTL", b"fcTL")
        is_text = ctype in (b"tEXt", b"zTXt", b"iTXt")
        if not (parsed or is_text) or (
            is_text and (length > MAX_TEXT_CHUNK or text_memory > MAX_TEXT_MEMORY)
        ):
            chunks.skip(ctype, length)
            continue
        if length > MAX_CHUNK:
            raise PngError(f"{ctype.decode()} chunk of {length} bytes is larger than {MAX_CHUNK}")
        s = chunks.body(ctype, length)
        if is_text:
            text_memory += length
            entry = _text_entry(ctype, s)
            if entry is not None:
                text[entry[0]] = entry[1]
        elif ctype == b"PLTE":
            if length == 0 or length % 3 or length > 768:
                raise PngError(f"invalid PLTE chunk of {length} bytes")
            if mode == "P":
                fields["palette"] = s
        elif ctype == b"tRNS":
            if mode == "P":
                if _SIMPLE_PALETTE.match(s):
                    i = s.find(b"\0")
                    if i >= 0:
                        fields["transparency"] = i
                else:
                    fields["transparency"] = s
            elif mode in ("1", "L", "I;16", "RGB"):
                _check_length(ctype, length, 6 if mode == "RGB" else 2)
                if mode == "1":
                    fields["transparency"] = 255 if struct.unpack(">H", s[:2])[0] else 0
                elif mode == "RGB":
                    fields["transparency"] = struct.unpack(">HHH", s[:6])
                else:
                    fields["transparency"] = struct.unpack(">H", s[:2])[0]
        elif ctype == b"iCCP":
            name_end = s.find(b"\0")
            if name_end < 0 or name_end + 1 >= len(s):
                raise PngError("malformed iCCP chunk")
            if s[name_end + 1] != 0:
                raise PngError(f"unknown compression method {s[name_end + 1]} in iCCP chunk")
            fields["_has_iccp"] = True
            try:
                fields["icc_profile"] = _bounded_inflate(s[name_end + 2 :])
            except ValueError as e:
                raise PngError(f"iCCP profile {e}") from None
            except zlib.error:
                fields["icc_profile"] = None  # as Pillow: a corrupt profile is dropped
        elif ctype == b"sRGB":
            _check_length(ctype, length, 1)
            fields["srgb"] = s[0]
        elif ctype == b"gAMA":
            _check_length(ctype, length, 4)
            fields["gamma"] = struct.unpack(">I", s[:4])[0] / 100000.0
        elif ctype == b"pHYs":
            _check_length(ctype, length, 9)
            px, py, unit = struct.unpack(">IIB", s[:9])
            if unit == 1:
                fields["dpi"] = (px * 0.0254, py * 0.0254)
        elif ctype == b"eXIf":
            fields["exif"] = s
        elif ctype == b"acTL":
            _check_length(ctype, length, 8)
            fields["animated"] = True
        elif ctype == b"fcTL":
            _check_length(ctype, length, 26)
            fw, fh, fx, fy = struct.unpack(">IIII", s[4:20])
            if (fw, fh, fx, fy) != (width, height, 0, 0) and blocker is None:
                blocker = f"APNG default image is a partial frame ({fw}x{fh} at {fx},{fy})"
    if mode == "P" and "palette" not in fields:
        raise PngError("palette image without a PLTE chunk")
    has_alpha = colour in (4, 6)
    return PngInfo(
        width=width,
        height=height,
        bit_depth=depth,
        colour_type=colour,
        interlaced=bool(interlace),
        mode=mode,
        rawmode=rawmode,
        has_transparency=has_alpha or "transparency" in fields,
        text=text,
        _blocker=blocker,
        _first_idat_length=length,
        _offset=chunks.offset,
        **fields,
    )


def read_png_info(fp: SupportsRead) -> PngInfo:
    """Read the PNG header from ``fp`` (every chunk up to the first IDAT's header) and return it.

    ``fp`` is left at the start of the image data: pass the result as ``info=`` to ``iter_bands`` or
    ``reduce_png`` to go on decoding the same stream. Interlaced files are reported (``interlaced``), not refused.
    Raises ``PngError`` if the header is corrupt.
    """
    return _read_info(_Chunks(fp))


class _Inflater:
    """Inflates the IDAT stream on demand, never producing more than asked (a zlib bomb cannot balloon)."""

    def __init__(self, pieces: Iterator[bytes], total: int) -> None:
        self._pieces = pieces
        self._d = zlib.decompressobj()
        self._total = total
        self._done = 0

    def _input(self) -> bytes | None:
        if self._d.unconsumed_tail:
            return self._d.unconsumed_tail
        for piece in self._pieces:
            if piece:
                return piece
        return None

    def _inflate(self, data: bytes, limit: int) -> bytes:
        try:
            return self._d.decompress(data, limit)
        except zlib.error as e:
            raise PngError(f"corrupt image data after {self._done} inflated bytes (zlib: {e})") from None

    def read(self, n: int) -> bytearray:
        out = bytearray(n)
        view = memoryview(out)
        pos = 0
        while pos < n:
            if self._d.eof:
                break
            data = self._input()
            chunk = self._inflate(data if data is not None else b"", min(n - pos, INFLATE_STEP))
            if not chunk and data is None:
                break
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
            self._done += len(chunk)
        if pos < n:
            raise PngError(
                f"premature end of image data: {self._done} of {self._total} bytes "
                f"(the {'zlib stream' if self._d.eof else 'IDAT data'} ends too early)"
            )
        return out

    def finish(self) -> None:
        """Check that the zlib stream ends right after the declared image data and nothing follows it."""
        while not self._d.eof:
            data = self._input()
            if self._inflate(data if data is not None else b"", 1):
                raise PngError(
                    f"too much image data: the IDAT stream inflates to more than {self._total} bytes"
                )
            if data is None and not self._d.eof:
                raise PngError(
                    "the IDAT data ends before the end of the zlib stream (truncated or no checksum)"
                )
        if self._d.unused_data or any(self._pieces):
            raise PngError("extra data after the end of the zlib stream in IDAT")


def _zip(first_row: bytes, rows: bytearray) -> bytes:
    """A zlib stream (stored blocks: a copy plus adler32) of a filter-0 row followed by already filtered rows."""
    c = zlib.compressobj(0)
    return b"".join((c.compress(b"\0"), c.compress(first_row), c.compress(rows), c.flush()))


class _BandDecoder:
    """Turns a band of filtered scanlines into a Pillow image, carrying the reconstructed previous row."""

    def __init__(self, info: PngInfo) -> None:
        self.info = info
        self.width = info.width
        self.rowbytes = info.rowbytes
        if info.bit_depth < 8:
            self.kind = "bytes"
        elif info.bit_depth == 16 and info.colour_type != 0:
            self.kind = "wide16"
        else:
            self.kind = "direct"
        #: Reconstructed previous scanline, as in the file (zeros before the first row, as PNG defines).
        self.carry = bytes(self.rowbytes)
        self.band_info = info.pillow_info()

    def decode(self, buf: bytearray, n: int, y0: int) -> Image.Image:
        info, w = self.info, self.width
        rows = np.frombuffer(buf, np.uint8).reshape(n, self.rowbytes + 1)
        filters = rows[:, 0]
        bad = filters > 4
        if bad.any():
            i = int(np.argmax(bad))
            raise PngError(f"bad filter type {int(filters[i])} in row {y0 + i}")
        if self.kind == "bytes":
            im = Image.frombytes("L", (self.rowbytes, n + 1), _zip(self.carry, buf), "zip", "L")
            raw = im.tobytes()
            self.carry = raw[n * self.rowbytes :]
            band = Image.frombytes(info.mode, (w, n), memoryview(raw)[self.rowbytes :], "raw", info.rawmode)
        else:
            im = Image.frombytes(info.mode, (w, n + 1), _zip(self.carry, buf), "zip", info.rawmode)
            band = im.crop((0, 1, w, n + 1))
            last = im.crop((0, n, w, n + 1))
            if self.kind == "direct":
                self.carry = last.tobytes("raw", info.rawmode)
            else:
                self.carry = self._carry16(rows, last)
        if info.palette is not None:
            band.putpalette(info.palette, "RGB")
        band.info.update(self.band_info)
        return band

    def _carry16(self, rows: np.ndarray, last_hi: Image.Image) -> bytes:
        """The last row of a 16-bit RGB / RGBA / grey+alpha band, whose decode kept only the high bytes.

        Unfiltering treats each byte position modulo the bytes per pixel as its own sequence, so the band is
        decoded a second time shifted left by one byte: the high bytes of that decode are the low bytes.
        """
        info, w, n = self.info, self.width, rows.shape[0]
        shifted = np.empty_like(rows)
        shifted[:, 0] = rows[:, 0]
        shifted[:, 1:-1] = rows[:, 2:]
        shifted[:, -1] = 0
        z = _zip(self.carry[1:] + b"\0", bytearray(shifted.data))
        last_lo = Image.frombytes(info.mode, (w, n + 1), z, "zip", info.rawmode).crop((0, n, w, n + 1))
        pick = [0, 3] if info.colour_type == 4 else slice(None)  # LA;16B decodes to RGBA as (L, L, L, A)
        out = np.empty((w, info.channels, 2), np.uint8)
        out[:, :, 0] = np.asarray(last_hi)[0][:, pick]
        out[:, :, 1] = np.asarray(last_lo)[0][:, pick]
        return out.tobytes()


def iter_bands(
    fp: SupportsRead,
    *,
    band_rows: int = 256,
    max_inflated: int | None = None,
    info: PngInfo | None = None,
) -> Iterator[Image.Image]:
    """Decode the PNG in ``fp`` band by band: consecutive images ``band_rows`` tall (the last one shorter).

    Each band has the mode, palette and ``info`` entries (transparency, icc_profile, ...) of ``Image.open`` on
    the file, and its pixels are those of the same rows of Pillow's full decode, bit for bit. ``fp`` is read
    strictly sequentially, through IEND (nothing after it); ``info`` is the result of ``read_png_info(fp)`` on
    the same stream when the header has been read already. The header is read, and ``NotBandDecodable`` /
    ``PngLimitError`` raised, when this is called; the image data is read as the bands are taken. Raises
    ``PngError`` on a corrupt or truncated stream, at the latest before the last band is yielded.
    ``max_inflated`` caps the inflated image data the header may declare (height x (1 + rowbytes)).
    """
    if band_rows < 1:
        raise ValueError(f"band_rows must be >= 1, not {band_rows}")
    if info is None:
        chunks = _Chunks(fp)
        info = _read_info(chunks)
    elif info._first_idat_length < 0:
        raise ValueError("info must come from read_png_info on this stream")
    else:
        chunks = _Chunks(fp, info._offset)
    if info._blocker is not None:
        raise NotBandDecodable(f"cannot decode band-wise: {info._blocker}", info)
    if max_inflated is not None and info.inflated_size > max_inflated:
        raise PngLimitError(
            f"{info.width}x{info.height} PNG declares {info.inflated_size} bytes of image data, "
            f"more than the limit of {max_inflated}"
        )
    return _bands(chunks, info, band_rows)


def _bands(chunks: _Chunks, info: PngInfo, band_rows: int) -> Iterator[Image.Image]:
    inflater = _Inflater(chunks.idat_pieces(info._first_idat_length), info.inflated_size)
    decoder = _BandDecoder(info)
    stride = info.rowbytes + 1
    y = 0
    while y < info.height:
        n = min(band_rows, info.height - y)
        band = decoder.decode(inflater.read(n * stride), n, y)
        y += n
        if y == info.height:
            inflater.finish()
            chunks.read_trailer()
        yield band


def reduced_mode(info: PngInfo) -> str:
    """The mode ``reduce_png`` returns by default: the file's mode when Pillow can ``reduce`` it, else
    "1" -> "L", "P" -> "RGBA" (with tRNS) or "RGB", "I;16" -> "I" (16-bit values, not scaled)."""
    if info.mode in _REDUCIBLE:
        return info.mode
    if info.mode == "1":
        return "L"
    if info.mode == "P":
        return "RGBA" if info.has_transparency else "RGB"
    return "I"


def reduce_band_rows(info: PngInfo, factor: int) -> int:
    """Band height ``reduce_png`` uses by default: a multiple of ``factor`` keeping a band's filtered bytes and
    its decoded / converted pixels (at most 4 bytes each in Pillow) near ``REDUCE_BAND_BYTES``."""
    rows = max(1, REDUCE_BAND_BYTES // max(info.rowbytes + 1, 4 * info.width))
    return max(factor, rows // factor * factor)


def reduce_png(
    fp: SupportsRead,
    factor: int,
    *,
    band_rows: int | None = None,
    mode: str | None = None,
    max_inflated: int | None = None,
    info: PngInfo | None = None,
) -> Image.Image:
    """Decode the PNG in ``fp`` band by band and box-reduce it by the integer ``factor``.

    Each band is converted to ``mode`` (default ``reduced_mode(info)``; one of L, LA, RGB, RGBA, I, F, all
    per-pixel conversions) and reduced with Pillow's ``Image.reduce(factor)``; the result is identical to
    ``Image.open(f).convert(mode).reduce(factor)`` (no conversion when the mode is the file's). Note Pillow's own
    conversions: "I;16" -> "L" clips at 255 (use "I" and scale the small result to get 8 bits), 16-bit RGB and
    RGBA files already decode to their high bytes. ``band_rows`` must be a multiple of ``factor`` (default:
    ``reduce_band_rows``); peak memory is about one band plus the output. Other arguments and errors as
    ``iter_bands``.
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, not {factor}")
    if info is None:
        info = read_png_info(fp)
    target = mode or reduced_mode(info)
    if target not in _REDUCIBLE:
        raise ValueError(f"cannot reduce to mode {target!r}; use one of {sorted(_REDUCIBLE)}")
    if band_rows is None:
        band_rows = reduce_band_rows(info, factor)
    elif band_rows < 1 or band_rows % factor:
        raise ValueError(f"band_rows ({band_rows}) must be a positive multiple of factor ({factor})")
    out = Image.new(target, (-(-info.width // factor), -(-info.height // factor)))
    y = 0
    for band in iter_bands(fp, band_rows=band_rows, max_inflated=max_inflated, info=info):
        converted = band if band.mode == target else band.convert(target)
        small = converted.reduce(factor) if factor > 1 else converted
        if y == 0:
            out.info = dict(small.info)
        out.paste(small, (0, y))
        y += small.height
    return out
