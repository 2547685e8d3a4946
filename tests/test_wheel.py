"""Packaging: the sdist and the wheel carry the built-in presets and LICENSE, and an installed wheel works.

The wheel is built the way a release is (``python -m build``: the sdist first, then the wheel from the
unpacked sdist, so a file missing from the sdist is missing from the wheel too), installed into a fresh venv
outside the repository, and its ``catalogmark`` console script is driven from another folder with no
PYTHONPATH, so nothing can come from the checkout.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import product_on_white

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _clean_env(home: Path) -> dict[str, str]:
    """The environment minus anything that could point back at the checkout or the developer's files."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("CATALOGMARK_")}
    return env | {"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
                  "PYTHONDONTWRITEBYTECODE": "1"}


def _sh(args: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _files(pattern: str) -> list[str]:
    """Repository files matching a glob, relative and POSIX: what the sdist (and so the wheel) is built from."""
    return sorted(p.relative_to(REPO).as_posix() for p in REPO.glob(pattern) if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> dict[str, Path]:
    """A fresh venv outside the repo; sdist + wheel built from the checkout; the wheel installed into the venv."""
    root = tmp_path_factory.mktemp("wheel")
    env = _clean_env(root)
    v = root / "venv"
    _sh([sys.executable, "-m", "venv", v], cwd=root, env=env)
    bin_dir = v / "bin"
    _sh([bin_dir / "python", "-m", "pip", "install", "--quiet", "build"], cwd=root, env=env)
    dist = root / "dist"
    _sh([bin_dir / "python", "-m", "build", "--outdir", dist, REPO], cwd=root, env=env)
    wheels, sdists = sorted(dist.glob("catalogmark-*.whl")), sorted(dist.glob("catalogmark-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    _sh([bin_dir / "python", "-m", "pip", "install", "--quiet", wheels[0]], cwd=root, env=env)
    return {"root": root, "bin": bin_dir, "venv": v, "wheel": wheels[0], "sdist": sdists[0]}


def test_wheel_and_sdist_carry_every_preset_and_license(venv: dict[str, Path]) -> None:
    presets = _files("presets/*.toml")
    assert len(presets) >= 14, presets
    with zipfile.ZipFile(venv["wheel"]) as whl:
        names = set(whl.namelist())
        for rel in presets:
            packaged = f"pipeline/_presets/{Path(rel).name}"
            assert packaged in names, f"{packaged} is not in the wheel"
            assert whl.read(packaged) == (REPO / rel).read_bytes(), f"{packaged} differs from {rel}"
        licences = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert licences, "LICENSE is not in the wheel's .dist-info/licenses/"
        assert whl.read(licences[0]) == (REPO / "LICENSE").read_bytes()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(whl.read(meta_name))
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert not any(n.startswith("presets/") for n in names), "the presets must live inside the package"
    with tarfile.open(venv["sdist"]) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        members = set(sdist.getnames())
    for rel in [*presets, "LICENSE", "pyproject.toml"]:
        assert f"{top}/{rel}" in members, f"{rel} is not in the sdist"


def test_wheel_has_every_module(venv: dict[str, Path]) -> None:
    with zipfile.ZipFile(venv["wheel"]) as whl:
        names = set(whl.namelist())
    missing = [m for m in _files("pipeline/**/*.py") if m not in names]
    assert not missing, (
        f"not in the wheel: {missing}; a new sub-package must be added to [tool.setuptools] packages in pyproject.toml"
    )
    assert "pipeline/py.typed" in names


def test_installed_wheel_runs_outside_the_repo(venv: dict[str, Path]) -> None:
    root, bin_dir = venv["root"], venv["bin"]
    work = root / "work"
    work.mkdir()
    env = _clean_env(root)
    cm = bin_dir / "catalogmark"

    where = _sh([bin_dir / "python", "-c",
                 "import pipeline, pipeline.presets as p; print(pipeline.__file__); print(p.builtin_presets_dir())"],
                cwd=work, env=env).splitlines()
    site = venv["venv"].resolve()
    for path in where:
        assert Path(path).resolve().is_relative_to(site), f"{path} is not inside the venv"
        assert not Path(path).resolve().is_relative_to(REPO), f"{path} comes from the checkout"
    assert Path(where[1]).name == "_presets"

    listing = _sh([cm, "presets", "list"], cwd=work, env=env)
    listed = {line.split()[0] for line in listing.splitlines() if line.strip()}
    assert {"amazon", "ebay", "shopify", "web"} <= listed, listing
    assert "amazon" in _sh([cm, "presets", "show", "amazon"], cwd=work, env=env)

    _sh([cm, "keygen", "--key-file", "K"], cwd=work, env=env)
    (work / "catalogmark.toml").write_text(
        '[owner]\nname = "Example Studio"\ncopyright = "(c) 2026 Example Studio. All rights reserved."\n'
        'url = "https://example.com/licensing"\n\n[watermark]\ntext = "example.studio"\n'
    )
    cat = work / "catalog"
    for sku, seed in (("MUG-1", 1), ("LAMP-2", 2)):
        (cat / sku).mkdir(parents=True)
        Image.fromarray(product_on_white((1400, 1200), seed)).save(cat / sku / "a_main.jpg", quality=90)
        Image.fromarray(product_on_white((1200, 1400), seed + 10)).save(cat / sku / "b_side.png")
    _sh([cm, "run", "catalog", "--preset", "amazon", "--preset", "ebay", "--out", "out", "--ledger", "L.sqlite",
         "--key-file", "K", "--jobs", "1", "--quiet"], cwd=work, env=env)
    outputs = sorted(p.relative_to(work / "out").as_posix() for p in (work / "out").rglob("*.jpg"))
    assert len(outputs) == 8, outputs
    assert "amazon/MUG-1.MAIN.jpg" in outputs and "ebay/LAMP-2/LAMP-2-01.jpg" in outputs

    verified = _sh([cm, "verify", "out/amazon/MUG-1.PT01.jpg", "--key-file", "K"], cwd=work, env=env)
    assert "signature valid" in verified, verified
    traced = _sh([cm, "trace", "out/ebay/LAMP-2/LAMP-2-main.jpg", "--ledger", "L.sqlite", "--key-file", "K"],
                 cwd=work, env=env)
    assert "MATCH" in traced and "LAMP-2 [ebay]" in traced, traced

    # a sweep of a saved listing page (offline), as the installed wheel runs it: httpx and BeautifulSoup come
    # with the wheel's dependencies, the case lands in the ledger, the drafts and the report are written
    saved = work / "saved"
    (saved / "Item_files").mkdir(parents=True)
    shutil.copy(work / "out" / "ebay" / "LAMP-2" / "LAMP-2-main.jpg", saved / "Item_files" / "photo.jpg")
    (saved / "Item.html").write_text(
        '<html><head><link rel="canonical" href="https://www.ebay.com/itm/123456789012">'
        '<meta property="og:site_name" content="eBay"></head>'
        '<body><img src="Item_files/photo.jpg"></body></html>')
    r = subprocess.run([str(cm), "sweep", "saved/Item.html", "--offline", "--ledger", "L.sqlite", "--key-file", "K",
                        "--out", "sweep1"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr  # 1: a new copy
    assert (work / "sweep1" / "report.html").is_file() and list((work / "sweep1" / "complaints").glob("*-ebay-vero.txt"))
    listed = _sh([cm, "cases", "list", "--ledger", "L.sqlite"], cwd=work, env=env)
    assert "ebay" in listed and "https://www.ebay.com/itm/123456789012" in listed, listed
