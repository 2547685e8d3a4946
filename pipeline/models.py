"""Plain data that flows between the stages, the runner and the ledger (no behaviour, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from pipeline.presets import Preset

Role = Literal["main", "gallery"]
Status = Literal["processed", "skipped", "failed", "missing", "stale", "current"]

# Bits of the invisible watermark payload id (before integrity check and error correction).
PAYLOAD_BITS = 40


@dataclass(frozen=True)
class Owner:
    """Who owns the pictures: from catalogmark.toml / [tool.catalogmark] / --config, flags on top."""

    name: str
    copyright: str
    url: str = ""
    watermark_text: str = ""
    watermark_logo: str | None = None  # path to an RGBA PNG
    watermark_font: str | None = None  # path to a TTF/OTF/TTC font for the mark's text (None: Pillow's own)
    # what of the photographer's own metadata every export keeps, besides its preset's (``[metadata] keep``;
    # names from presets.KEEP_FIELDS)
    keep_metadata: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageJob:
    """One (source image, preset) pair to process; built by the parent before any work starts."""

    source: str  # absolute path of the source file
    source_display: str  # the path as recorded in the ledger and shown to users
    sku: str
    role: Role
    position: int  # 0 for main, 1.. for gallery images in name order
    preset: Preset
    output: str  # absolute path of the output file, from the preset's naming template

    @property
    def identity(self) -> str:
        """The image's identity inside the catalog (independent of preset)."""
        return f"{self.sku}/{self.role}/{self.position}"


@dataclass(frozen=True)
class Expected:
    """What the ledger says is at an output path: the newest record's rerun key and output hash."""

    record_id: str
    job_key: str
    output_sha256: str
    source_sha256: str
    preset_digest: str
    key_fingerprint: str
    payload: str | None
    width: int
    height: int
    output_bytes: int


@dataclass(frozen=True)
class ExportTask:
    """One export of a photo that the parent could not decide without reading the source (or must redo)."""

    job: ImageJob
    expected: Expected | None
    output_sha256: str | None = None  # the output file's SHA-256 if the parent knows it (stat cache), else read


@dataclass(frozen=True)
class PhotoTask:
    """The work unit: one source photo with every export of it that needs work (read, hashed, decoded once)."""

    source: str  # absolute path
    source_display: str
    exports: tuple[ExportTask, ...]
    force: bool = False


@dataclass(frozen=True)
class Described:
    """What the photographer wrote about a source photo (``metadata/source.py`` reads it): the fields a preset or
    the owner profile may keep (``[metadata] keep``). Nothing else: no GPS, serial numbers or thumbnail."""

    keywords: tuple[str, ...] = ()
    title: str | None = None
    caption: str | None = None
    sublocation: str | None = None  # Iptc4xmpCore:Location / IPTC Sub-location
    city: str | None = None
    state: str | None = None  # province or state
    country: str | None = None
    digital_source_type: str | None = None  # IPTC DigitalSourceType (a NewsCodes URI), the AI-provenance field

    def only(self, keep: frozenset[str] | set[str] | tuple[str, ...]) -> Described:
        """These fields cleared but those named in ``keep`` (``location`` covers the four place fields)."""
        place = "location" in keep
        return Described(
            keywords=self.keywords if "keywords" in keep else (),
            title=self.title if "title" in keep else None,
            caption=self.caption if "caption" in keep else None,
            sublocation=self.sublocation if place else None,
            city=self.city if place else None,
            state=self.state if place else None,
            country=self.country if place else None,
            digital_source_type=self.digital_source_type if "ai_provenance" in keep else None,
        )


@dataclass(frozen=True)
class CaptureInfo:
    """Capture metadata worth keeping from the source (goes to the ledger, not all to outputs)."""

    datetime_original: str | None = None
    make: str | None = None
    model: str | None = None
    serial: str | None = None
    original_width: int = 0
    original_height: int = 0
    orientation: int = 1
    source_format: str = ""
    icc_profile: str | None = None  # description of the source ICC profile, if any
    # read only when some export of the photo keeps a field of it; not part of the record (as_dict)
    described: Described | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "") and k != "described"}


@dataclass
class Canvas:
    """Output of ingest: the working canvas at the preset's geometry, sRGB, 8-bit RGB, no alpha."""

    pixels: np.ndarray  # H x W x 3, uint8, RGB, C-contiguous
    content_box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the photo inside any padding
    source_sha256: str
    capture: CaptureInfo
    source_bytes: int = 0
    scaled: tuple[int, int] = (0, 0)  # size the whole upright photo was resampled to
    offset: tuple[int, int] = (0, 0)  # where its top-left lands on the canvas (negative: cropped by cover or fill)
    fill: Fill | None = None  # the product-fill check, on a canvas whose preset asks for one (``min_fill``)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the export should say although it was made: a product fill short of the preset's target."""
        if self.fill is None or self.fill.met:
            return ()
        if self.fill.box == (0, 0, 0, 0):
            return (f"no product found on the background for the preset's min_fill {self.fill.target:g} (a blank "
                    "photo?): exported at the plain pad geometry",)
        return (f"product fill short of the preset's min_fill {self.fill.target:g} (stopped by max_upscale "
                f"{self.fill.max_upscale:g}): the record's extra.fill has the fill reached",)


@dataclass(frozen=True)
class Fill:
    """How much of the frame the product spans on a ``min_fill`` canvas, measured on the canvas pixels.

    fill = max(box width / canvas width, box height / canvas height), the box being the product's bounding box
    on the background (``imaging.productbox``). ``met`` is False when the upscale limit stopped short of the
    target (the export is still made; its record says so).
    """

    target: float  # the preset's min_fill
    reached: float  # measured on the canvas
    met: bool
    box: tuple[int, int, int, int]  # the product's box on the canvas (x0, y0, x1, y1)
    source_fill: float  # the product's fill of the photo itself (its own frame), before any scaling
    upscale: float  # scale applied to the source pixels (> 1: enlarged)
    max_upscale: float  # the preset's limit

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "reached": round(self.reached, 4), "met": self.met, "box": list(self.box),
                "source_fill": round(self.source_fill, 4), "upscale": round(self.upscale, 4),
                "max_upscale": self.max_upscale}


@dataclass(frozen=True)
class VisibleMark:
    """Where and how the visible mark was drawn (recomputable from the key and the identity)."""

    x: float  # centre of the mark, as a fraction of canvas width
    y: float  # centre, fraction of canvas height
    scale: float  # mark width as a fraction of the canvas short side
    rotation: float  # degrees
    opacity: float
    warp: tuple[float, ...] = ()  # small per-image geometric warp parameters
    tone: str = "light"  # "light" or "dark": chosen from the pixels under the mark

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__) | {"warp": list(self.warp)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VisibleMark:
        """The inverse of ``as_dict`` (e.g. a ledger record's ``visible_mark``)."""
        return cls(x=float(d["x"]), y=float(d["y"]), scale=float(d["scale"]), rotation=float(d["rotation"]),
                   opacity=float(d["opacity"]), warp=tuple(float(v) for v in d.get("warp", ())),
                   tone=str(d.get("tone", "light")))


@dataclass
class Marked:
    """Output of watermark: the marked pixels plus what was applied."""

    pixels: np.ndarray
    content_box: tuple[int, int, int, int]
    visible: VisibleMark | None
    payload: int | None  # the invisible watermark's payload id, or None if not embedded
    background_pixels_kept: bool = True  # True if every background pixel is untouched


@dataclass
class Fingerprint:
    """Output of fingerprint: the metadata blocks to embed, and the signed claim."""

    exif: bytes
    xmp: bytes
    iptc: bytes | None
    claim: dict[str, Any]  # the signed fields, canonical JSON of this is what is signed
    signature: str  # base64 Ed25519 signature over canonical_json(claim)
    warnings: tuple[str, ...] = ()  # what the blocks could not carry whole (an IIM field cut to its length)


@dataclass
class Exported:
    """Output of export: what was written and where."""

    path: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    format: str
    quality: int | None
    data: bytes = field(repr=False, default=b"")


@dataclass
class Record:
    """Output of hashrecord: everything the ledger keeps about one export (no chain fields yet)."""

    record_id: str
    job_key: str  # rerun key: source sha, preset digest, key fingerprint, pipeline version, identity
    source: str
    source_sha256: str
    sku: str
    role: str
    position: int
    preset: str
    preset_digest: str
    output: str
    output_sha256: str
    output_bytes: int
    pixel_sha256: str
    width: int
    height: int
    format: str
    phash: str
    pdq: str
    pdq_quality: int
    payload: str | None  # hex
    owner: str
    key_fingerprint: str
    signature: str
    capture: dict[str, Any]
    visible_mark: dict[str, Any] | None
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. crop-robust signatures (trace)


@dataclass(frozen=True)
class Failure:
    path: str
    stage: str
    error: str
    preset: str = ""


@dataclass(frozen=True)
class WorkerDeath:
    """A worker process died while it held one task (killed by a signal, e.g. the kernel's OOM killer, or exited);
    the task is that item's failure and the run goes on with fresh workers."""

    exitcode: int | None = None  # as multiprocessing reports it: -N when killed by signal N; None if unknown

    @property
    def message(self) -> str:
        code = self.exitcode
        if code is None:
            return "worker died (out of memory?)"
        if code < 0:
            import signal

            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "unknown signal"
            if -code == signal.SIGKILL:
                return f"worker died (killed by signal {-code}: out of memory?)"
            return f"worker died (killed by signal {-code}, {name})"
        return f"worker died (exit code {code})"


@dataclass
class ImageResult:
    """What happened to one export: processed (a record and a temp file to publish), up to date, or failed."""

    job: ImageJob
    status: Status
    record: Record | None = None
    failure: Failure | None = None
    seconds: float = 0.0
    trace: tuple[bytes, bytes] | None = None  # (search keys, features) for the ledger's trace side table
    temp_path: str | None = None  # the fsynced output, renamed to job.output only after its record is committed
    reason: str = ""  # why an export is missing or stale (--check), or why it was redone
    warnings: tuple[str, ...] = ()  # processed, but something was cut or dropped (said once per run, counted)


@dataclass
class PhotoResult:
    """What a worker sends back for one PhotoTask: the source's hash and stat (for the stat cache) and each
    export's result."""

    source: str
    sha256: str | None
    stat: tuple[int, int, int, int] | None  # size, mtime_ns, inode, ctime_ns of the file descriptor read
    results: list[ImageResult]
