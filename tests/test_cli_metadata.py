"""End to end: ``[metadata] keep`` through the real CLI, read back by exiftool (an independent reader).

One photo with the photographer's keywords, title, caption, location and an IPTC DigitalSourceType (an AI image),
plus GPS, camera serials and a thumbnail, goes to a preset that keeps the photographer's fields, to google-merchant
(keeps the AI-provenance field by default), to shopify (keeps nothing), and, in a second run, to shopify under an
owner profile that keeps keywords (which makes that export stale). GPS, serials and the thumbnail reach no output.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.keys import OwnerKey, write_key
from tests.conftest import FIXED_SECRET
from tests.helpers import NEVER_CARRIED, PHOTOGRAPHER, cm, photographer_jpeg

OWNER = '[owner]\nname = "Example Studio"\n\n[watermark]\ntext = "example.studio"\n'
KEEP_PRESET = ('extends = "shopify"\nname = "shop-keep"\n\n'
               '[metadata]\nkeep = ["keywords", "title", "caption", "location"]\n')
DST = "XMP-iptcExt:DigitalSourceType"


def _run(d: Path, *presets: str) -> list[dict[str, Any]]:
    args = ["run", str(d / "catalog"), "--out", str(d / "out"), "--ledger", str(d / "ledger.sqlite"),
            "--key-file", str(d / "owner.key"), "--jobs", "1", "--json", "--quiet"]
    for p in presets:
        args += ["--preset", p]
    r = cm(*args, cwd=d, env={"SOURCE_DATE_EPOCH": "1767225600"})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["failed"] == 0 and doc["processed"] == len(presets), doc
    return list(doc["outputs"])


def _exiftool(exiftool: str, path: str) -> dict[str, Any]:
    r = subprocess.run([exiftool, "-j", "-G1", "-a", "-struct", path], capture_output=True, text=True, check=True)
    meta: dict[str, Any] = json.loads(r.stdout)[0]
    return meta


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def run(tmp_path_factory, exiftool) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("keep-e2e")
    photographer_jpeg(d / "catalog" / "MUG-AI" / "main.jpg")
    (d / "catalogmark.toml").write_text(OWNER)
    (d / "keep.toml").write_text(KEEP_PRESET)
    write_key(OwnerKey(FIXED_SECRET), d / "owner.key")
    paths = {o["preset"]: o["output"] for o in _run(d, "./keep.toml", "google-merchant", "shopify")}
    meta = {name: _exiftool(exiftool, path) for name, path in paths.items()}
    # The owner profile now keeps keywords for every preset: part of the rerun key, so shopify's export is stale
    # and made again (the only one of this run), in place.
    (d / "catalogmark.toml").write_text(OWNER + '\n[metadata]\nkeep = ["keywords"]\n')
    (again,) = _run(d, "shopify")
    assert again["output"] == paths["shopify"]
    meta["shopify+owner"] = _exiftool(exiftool, again["output"])
    return {"dir": d, "paths": paths, "meta": meta}


@pytest.fixture(scope="module")
def meta(run) -> dict[str, dict[str, Any]]:
    return dict(run["meta"])


def test_a_preset_keeps_keywords_title_caption_and_location(meta) -> None:
    m, p = meta["shop-keep"], PHOTOGRAPHER
    assert _as_list(m["XMP-dc:Subject"]) == p["keywords"] and _as_list(m["IPTC:Keywords"]) == p["keywords"]
    assert m["XMP-dc:Title"] == p["title"] and m["IPTC:ObjectName"] == p["title"]
    for tag in ("XMP-dc:Description", "IPTC:Caption-Abstract", "IFD0:XPComment"):
        assert m[tag].startswith(p["caption"] + " — MUG-AI — © Example Studio — record r"), tag
    assert (m["XMP-iptcCore:Location"], m["XMP-photoshop:City"], m["XMP-photoshop:State"],
            m["XMP-photoshop:Country"]) == (p["sublocation"], p["city"], p["state"], p["country"])
    assert (m["IPTC:Sub-location"], m["IPTC:City"], m["IPTC:Province-State"],
            m["IPTC:Country-PrimaryLocationName"]) == (p["sublocation"], p["city"], p["state"], p["country"])
    assert DST not in m  # not asked for
    assert _as_list(m["XMP-dc:Creator"]) == ["Example Studio"]  # what every export says, still there


def test_google_merchant_keeps_digital_source_type_and_nothing_else(meta) -> None:
    m = meta["google-merchant"]
    assert m[DST] == PHOTOGRAPHER["digital_source_type"]
    assert "XMP-dc:Subject" not in m and "XMP-photoshop:City" not in m and m["XMP-dc:Title"] == "MUG-AI"


def test_a_preset_without_keep_drops_it_all(meta) -> None:
    m = meta["shopify"]
    assert DST not in m and "XMP-dc:Subject" not in m and "IPTC:Keywords" not in m
    assert m["XMP-dc:Title"] == "MUG-AI" and not m["XMP-dc:Description"].startswith(PHOTOGRAPHER["caption"])


def test_the_owner_profile_keeps_for_every_preset(meta) -> None:
    m = meta["shopify+owner"]
    assert _as_list(m["XMP-dc:Subject"]) == PHOTOGRAPHER["keywords"]
    assert m["XMP-dc:Title"] == "MUG-AI" and DST not in m


def test_gps_serials_and_thumbnail_never_reach_an_output(meta) -> None:
    for name, m in meta.items():
        flat = json.dumps(m, ensure_ascii=False)
        for secret in NEVER_CARRIED:
            assert secret not in flat, (name, secret)
        assert not [k for k in m if "GPS" in k or "Serial" in k or "Thumbnail" in k or k.startswith("IFD1:")], name


def test_kept_outputs_are_valid_and_verify(run, exiftool) -> None:
    kept, merchant = run["paths"]["shop-keep"], run["paths"]["google-merchant"]
    r = subprocess.run([exiftool, "-validate", "-warning", "-a", "-j", kept], capture_output=True, text=True)
    assert json.loads(r.stdout)[0]["Validate"] == "OK", r.stdout
    r = cm("verify", "--key-file", str(run["dir"] / "owner.key"), "--json", kept, merchant)
    assert r.returncode == 0, r.stdout + r.stderr


def _exiv2(exiv2: str, path: str) -> dict[str, list[str]]:
    """Every XMP and IPTC value exiv2 reads (key -> values in order; LangAlt values without their lang prefix)."""
    out: dict[str, list[str]] = {}
    for flag in ("-px", "-pi"):
        r = subprocess.run([exiv2, flag, path], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            parts = line.split(None, 3)
            if len(parts) == 4:
                value = parts[3].removeprefix('lang="x-default" ')
                out.setdefault(parts[0], []).append(value)
    return out


def test_exiv2_reads_the_kept_fields_as_exiftool_does(run, exiv2) -> None:
    """An independent reader: exiv2 reads the same keywords, title, caption, location and DigitalSourceType."""
    p = PHOTOGRAPHER
    kept = _exiv2(exiv2, run["paths"]["shop-keep"])
    assert kept["Iptc.Application2.Keywords"] == p["keywords"]
    assert kept["Xmp.dc.subject"] == [", ".join(p["keywords"])]
    assert kept["Xmp.dc.title"] == [p["title"]]
    assert kept["Xmp.dc.description"][0].startswith(p["caption"] + " — MUG-AI")
    assert (kept["Xmp.iptc.Location"], kept["Xmp.photoshop.City"], kept["Xmp.photoshop.State"],
            kept["Xmp.photoshop.Country"]) == ([p["sublocation"]], [p["city"]], [p["state"]], [p["country"]])
    assert (kept["Iptc.Application2.SubLocation"], kept["Iptc.Application2.City"],
            kept["Iptc.Application2.ProvinceState"], kept["Iptc.Application2.CountryName"]) == \
        ([p["sublocation"]], [p["city"]], [p["state"]], [p["country"]])
    merchant = _exiv2(exiv2, run["paths"]["google-merchant"])
    assert merchant["Xmp.iptcExt.DigitalSourceType"] == [p["digital_source_type"]]
    assert "Xmp.iptcExt.DigitalSourceType" not in _exiv2(exiv2, run["paths"]["shopify"])
