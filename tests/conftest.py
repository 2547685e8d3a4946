"""Shared fixtures: a fixed owner key, an owner profile, preset factories and tiny images made in code."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image

from pipeline.keys import OwnerKey
from pipeline.models import ImageJob, Owner
from pipeline.presets import Preset, preset_from_dict

# Property tests draw the same examples on every run (derandomize), so a suite that passed passes again on a clean
# machine; CATALOGMARK_HYPOTHESIS=explore draws fresh ones (run it after changing a tested algorithm: it found the
# informed embedder's over-budget case at seed 1014). The fuzz targets (tests/test_fuzz.py) stay random on purpose.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("CATALOGMARK_HYPOTHESIS", "repeatable"))

FIXED_SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(100, 132))


@pytest.fixture
def owner_key() -> OwnerKey:
    return OwnerKey(FIXED_SECRET)


@pytest.fixture
def other_key() -> OwnerKey:
    return OwnerKey(OTHER_SECRET)


@pytest.fixture
def owner() -> Owner:
    return Owner(
        name="Example Studio",
        copyright="(c) 2026 Example Studio. All rights reserved.",
        url="https://example.com/licensing",
        watermark_text="example.studio",
    )


#: The test preset as a preset file would say it; everything not set here is the schema's default.
TEST_PRESET = {
    "description": "test preset",
    "sources": ["tests"],
    "format": "jpeg",
    "quality": 90,
    "min_quality": 60,
    "max_bytes": 2_000_000,
    "pure_white_roles": ["main"],
    "canvas": {"width": 800, "height": 800, "fit": "pad"},
    "marks": {"gallery": {"visible": True}},
    "naming": {"main": "{sku}.MAIN.{ext}", "gallery": "{sku}.PT{n:02d}.{ext}"},
}
# A fixed digest: attributes replaced by the factory's overrides do not recompute it, so no test may rely on it.
_BASE_PRESET = dataclasses.replace(preset_from_dict(TEST_PRESET, name="test", path="<tests>"), digest="0" * 64)


def _preset(**overrides) -> Preset:
    """The test preset (built through the preset schema) with attributes replaced; overrides are not validated."""
    return dataclasses.replace(_BASE_PRESET, **overrides)


@pytest.fixture
def make_preset():
    """Factory: ``make_preset(format="png", canvas=CanvasSpec(...))`` -> Preset."""
    return _preset


@pytest.fixture
def make_job(tmp_path: Path, make_preset):
    """Factory: ``make_job(source_path, role="gallery", preset=...)`` -> ImageJob with output under tmp."""

    def factory(source: Path, *, sku: str = "SKU1", role: str = "gallery", position: int = 1, preset=None):
        preset = preset or make_preset()
        out = tmp_path / "out" / preset.name / f"{sku}.{role}.{position}.{preset.extension}"
        return ImageJob(
            source=str(source),
            source_display=str(source),
            sku=sku,
            role=role,  # type: ignore[arg-type]
            position=position,
            preset=preset,
            output=str(out),
        )

    return factory


def product_on_white(size: tuple[int, int] = (640, 480), seed: int = 0) -> np.ndarray:
    """A textured 'product' (ellipse with noise and gradients) centred on pure white, RGB uint8."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w, 3), 255, np.uint8)
    cx, cy, rx, ry = w / 2, h / 2, w * 0.3, h * 0.35
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    base = np.stack(
        [90 + 80 * xx / w, 60 + 100 * yy / h, 140 - 60 * xx / w], axis=-1
    ) + rng.normal(0, 18, (h, w, 3))
    img[inside] = np.clip(base[inside], 0, 254).astype(np.uint8)
    return img


@pytest.fixture
def product_image() -> np.ndarray:
    return product_on_white()


@pytest.fixture
def jpeg_file(tmp_path: Path, product_image: np.ndarray) -> Path:
    p = tmp_path / "src" / "product.jpg"
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(product_image).save(p, "JPEG", quality=92)
    return p


def require_tool(name: str) -> str:
    """Path of a system tool the tests use as an independent reader; skip locally, fail in CI, if missing."""
    import os
    import shutil

    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CATALOGMARK_REQUIRE_SYSDEPS"):
        pytest.fail(f"{name} is required (CATALOGMARK_REQUIRE_SYSDEPS is set); run `make sysdeps`")
    pytest.skip(f"{name} is not installed; run `make sysdeps`")


@pytest.fixture(scope="session")
def exiftool() -> str:
    return require_tool("exiftool")


@pytest.fixture(scope="session")
def exiv2() -> str:
    return require_tool("exiv2")


@pytest.fixture
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No test may reach past 127.0.0.1: any other host name lookup fails the test (and the connection)."""
    import socket

    real = socket.getaddrinfo
    outside: list[str] = []

    def guarded(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in ("127.0.0.1", b"127.0.0.1"):
            outside.append(str(host))
            raise OSError(f"test guard: no traffic to {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield outside
    assert outside == [], f"tried to reach {outside}"


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_tool("chromium")


def screenshot_html(chromium: str, html: Path, png: Path, *, width: int = 1280, height: int = 1600) -> Path:
    """Render an HTML file in headless Chromium (Debian's package) and save a PNG screenshot."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             f"--screenshot={png}", html.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    return png
