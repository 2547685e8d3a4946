"""Storefront presets: the schema (dataclasses), loading TOML files, `extends`, and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Fit = Literal["fit", "pad", "cover"]
Format = Literal["jpeg", "png", "webp"]


@dataclass(frozen=True)
class CanvasSpec:
    width: int  # target box width in px
    height: int  # target box height in px
    fit: Fit  # fit: inside the box, no padding; pad: inside + pad to the exact box; cover: fill + centre crop
    background: tuple[int, int, int] = (255, 255, 255)  # pad colour and alpha-flatten colour
    upscale: bool = False  # scale small sources up to the box (otherwise they keep their size)
    min_long_side: int = 0  # a source whose canvas would be smaller than this is a per-image failure


@dataclass(frozen=True)
class MarkPolicy:
    visible: bool  # draw the visible keyed mark on this role
    invisible: bool  # embed the invisible keyed watermark on this role


@dataclass(frozen=True)
class VisibleStyle:
    opacity: tuple[float, float] = (0.22, 0.38)  # keyed opacity range
    scale: tuple[float, float] = (0.28, 0.45)  # mark width as a fraction of the canvas short side
    rotation: float = 25.0  # max |rotation| in degrees
    warp: float = 0.06  # max per-image warp (fraction of mark size)


@dataclass(frozen=True)
class MetadataPolicy:
    exif: bool = True
    xmp: bool = True
    iptc: bool = True  # written where the format allows (JPEG)
    keep_capture_date: bool = True  # copy DateTimeOriginal to the output
    keep_camera: bool = False  # copy camera make/model to the output (serials and GPS never)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    path: str  # the TOML file it came from
    canvas: CanvasSpec
    format: Format
    quality: int  # starting encoder quality (JPEG/WebP)
    min_quality: int  # lowest quality the byte-cap search may use
    max_bytes: int | None  # byte cap per output file
    subsampling: str  # "4:2:0" | "4:2:2" | "4:4:4" (JPEG)
    colour_space: Literal["srgb"]
    pure_white_roles: tuple[str, ...]  # roles whose background must stay exactly the preset background
    marks: dict[str, MarkPolicy]  # per role: "main", "gallery"
    visible_style: VisibleStyle
    metadata: MetadataPolicy
    naming: dict[str, str]  # per role: template, e.g. "{sku}.MAIN.{ext}", "{sku}.PT{n:02d}.{ext}"
    sources: tuple[str, ...] = field(default_factory=tuple)
    digest: str = ""  # SHA-256 of the canonical resolved preset; part of the rerun key

    @property
    def extension(self) -> str:
        return {"jpeg": "jpg", "png": "png", "webp": "webp"}[self.format]
