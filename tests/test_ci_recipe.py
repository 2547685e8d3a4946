"""The CI recipe the README shows (docs/ci/Makefile): `make exports` then `make check`, for real, on a tiny shoot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO, cm

RECIPE = REPO / "docs" / "ci" / "Makefile"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A photographer's folder: the recipe's Makefile, an owner profile, a key and a two-SKU shoot."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    shutil.copy(RECIPE, tmp_path / "Makefile")
    (tmp_path / "catalogmark.toml").write_text('[owner]\nname = "CI Studio"\ncopyright = "(c) 2026 CI Studio"\n'
                                               '[watermark]\ntext = "ci.studio"\n')
    assert cm("keygen", "--key-file", str(tmp_path / "owner.key")).returncode == 0
    rng = np.random.default_rng(7)
    for sku in ("SKU-A", "SKU-B"):
        (tmp_path / "shoot" / sku).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(tmp_path / "shoot" / sku / "main.jpg")
    return tmp_path


def _make(project: Path, target: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run(["make", "-s", target, f"CATALOGMARK={sys.executable} -m pipeline", "PRESETS=web",
                           "JOBS=1", f"KEY={project / 'owner.key'}"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)


def test_the_recipe_exports_then_check_passes_then_fails_naming_the_stale_output(project: Path) -> None:
    first = _make(project, "exports")
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(list((project / "exports" / "web").rglob("*.webp"))) == 2
    current = _make(project, "check")
    assert current.returncode == 0, current.stdout + current.stderr
    assert "check: 2 up to date, 0 missing, 0 stale, 0 failed" in current.stdout

    # a retouched photo and a deleted export: make check fails and names both, with the reason
    Image.new("RGB", (800, 600), (200, 30, 30)).save(project / "shoot" / "SKU-A" / "main.jpg")
    gone = next(p for p in (project / "exports" / "web").rglob("*.webp") if "SKU-B" in str(p))
    gone.unlink()
    stale = _make(project, "check")
    assert stale.returncode != 0
    lines = stale.stdout.splitlines()
    assert any(line.startswith("STALE") and "SKU-A" in line and "[web]" in line for line in lines), stale.stdout
    assert any(line.startswith("MISSING") and gone.name in line for line in lines), stale.stdout
    assert "check: 0 up to date, 1 missing, 1 stale, 0 failed" in stale.stdout
    assert not gone.exists()  # --check changed nothing

    # and `make exports` brings it back to current
    assert _make(project, "exports").returncode == 0
    assert _make(project, "check").returncode == 0
