"""The sweep report: a real sweep's items (real traces against a real ledger) as the page a seller reads and its JSON."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipeline.keys import OwnerKey
from pipeline.sweep.models import (
    Case,
    CaseEvent,
    DraftFile,
    FetchFailure,
    Found,
    Suspect,
    SweepItem,
    SweepResult,
)
from pipeline.sweep.report import render_sweep_html, sweep_json, web_url, write_sweep_report
from pipeline.trace import trace_files
from tests import synthetic
from tests.conftest import FIXED_SECRET, screenshot_html
from tests.test_trace_report import (  # helpers only: no fixture or test is imported
    OWNER,
    SIZE,
    traced_ledger,
)

HOSTILE_SELLER = "<script>alert(1)</script>"
HOSTILE_PAGE = "javascript:alert(1)"
HOSTILE_IMAGE = "data:text/html,<script>alert(2)</script>"
HOSTILE_TITLE = '"><img src=x onerror=alert(3)>'
SWEEP = "sweep-20261202T100000Z"


def _case(n: int, rid: str, found: Found, status: str = "found", relisted: bool = False,
          first: str = "2026-12-02T10:00:00Z", events: tuple[CaseEvent, ...] = ()) -> Case:
    return Case(case_id=n, record_id=rid, verdict="match", false_match_probability=1e-9, suspect_sha256="a" * 64,
                suspect_phash="0" * 16, page_url=found.page_url, image_url=found.image_url,
                marketplace=found.marketplace, seller=found.seller, listing_title=found.listing_title,
                first_seen=first, last_seen="2026-12-02T10:00:00Z", status=status,  # type: ignore[arg-type]
                relisted=relisted, events=events or (CaseEvent(first, "found", sweep_id=SWEEP),))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A sweep folder with real traced copies of three exports, and the SweepResult a sweep would make of them."""
    base = tmp_path_factory.mktemp("sweep")
    key = OwnerKey(FIXED_SECRET)
    exports, ledger, _root = traced_ledger(base, key)

    out = base / SWEEP
    dl = out / "downloads"
    dl.mkdir(parents=True)
    rng = np.random.default_rng(3)
    Image.fromarray(synthetic.rotate(synthetic.crop_area(exports[2], 0.6, rng), 3)).save(dl / "a.jpg", quality=80)
    Image.fromarray(synthetic.hflip(exports[3])).save(dl / "b.webp", quality=80)
    Image.fromarray(exports[1]).save(dl / "c.jpg", quality=85)
    Image.fromarray(exports[2]).save(dl / "d.jpg", quality=75)
    Image.fromarray(exports[1]).save(dl / "e.jpg", quality=70)
    Image.fromarray(synthetic.product_shot(44, SIZE)).save(dl / "f.jpg", quality=85)
    (dl / "g.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    names = ["a.jpg", "b.webp", "c.jpg", "d.jpg", "e.jpg", "f.jpg", "g.jpg"]
    evidence = out / "evidence.html"
    results = trace_files([dl / n for n in names], store=ledger, key=key, owner=OWNER, report_html=evidence)
    ledger.close()
    res = {Path(r.suspect).name: r for r in results}

    ali = "aliexpress"
    where = {
        "a.jpg": Found("https://www.aliexpress.com/item/1005001.html", "https://ae01.alicdn.com/kf/a.jpg", ali,
                       "Shop One", "Kitchen scale, 5 kg", "2026-12-02T10:01:00Z"),
        "b.webp": Found("https://www.aliexpress.com/item/1005002.html", "https://ae01.alicdn.com/kf/b.webp", ali,
                        "Shop One", "Scale with bowl", "2026-12-02T10:01:30Z"),
        "c.jpg": Found("https://www.ebay.com/itm/2233" + "4" * 120, "https://i.ebayimg.com/images/g/c.jpg", "ebay",
                       "Second Store", None, "2026-12-02T10:02:00Z"),
        "d.jpg": Found("https://www.etsy.com/listing/777/scale", "https://i.etsystatic.com/d.jpg", "etsy", "Relister",
                       "Scale", "2026-12-02T10:03:00Z"),
        "e.jpg": Found(HOSTILE_PAGE, HOSTILE_IMAGE, "amazon", HOSTILE_SELLER, HOSTILE_TITLE, "2026-12-02T10:04:00Z"),
        "f.jpg": Found("https://www.amazon.com/dp/B0000", "https://m.media-amazon.com/images/I/f.jpg", "amazon",
                       "Other Brand", None, "2026-12-02T10:05:00Z"),
        "g.jpg": Found("https://www.temu.com/g.html", "https://img.kwcdn.com/g.jpg", "temu", "Broken Shop", None,
                       "2026-12-02T10:06:00Z"),
    }
    drafts_dir = out / "drafts"
    drafts_dir.mkdir()

    def draft(n: int, channel: str) -> DraftFile:
        t, j = drafts_dir / f"case-{n}.{channel}.txt", drafts_dir / f"case-{n}.{channel}.json"
        t.write_text("draft")
        j.write_text("{}")
        return DraftFile(n, channel, t, j, missing=("email",) if n == 1 else ())

    removed = (CaseEvent("2026-11-01T09:00:00Z", "found", sweep_id="s0"), CaseEvent("2026-11-02T09:00:00Z", "reported"),
               CaseEvent("2026-11-10T09:00:00Z", "removed"), CaseEvent("2026-12-02T10:03:00Z", "found", sweep_id=SWEEP))
    outside = base / "elsewhere" / "case-3.dmca.txt"
    outside.parent.mkdir()
    outside.write_text("draft")
    kit = out / "kits" / "case-1"
    kit.mkdir(parents=True)

    def item(name: str, change: str, case: Case | None = None, drafts: list[DraftFile] | None = None,
             kit_dir: Path | None = None) -> SweepItem:
        return SweepItem(Suspect(dl / name, where[name]), res[name], change, sha256="b" * 64,  # type: ignore[arg-type]
                         case=case, drafts=drafts or [], kit=kit_dir)

    items = [
        item("f.jpg", "no-match"),
        item("b.webp", "new", _case(2, "rid0003", where["b.webp"]), [draft(2, "aliexpress-ipp")]),
        item("e.jpg", "still-up", _case(5, "rid0001", where["e.jpg"], status="reported",
                                        first="2026-11-20T08:00:00Z")),
        item("a.jpg", "new", _case(1, "rid0002", where["a.jpg"]), [draft(1, "aliexpress-ipp"), draft(1, "dmca")],
             kit),
        item("g.jpg", "error"),
        item("d.jpg", "relisted", _case(4, "rid0002", where["d.jpg"], relisted=True, first="2026-11-01T09:00:00Z",
                                        events=removed), [draft(4, "dmca")]),
        item("c.jpg", "new", _case(3, "rid0001", where["c.jpg"]),
             [DraftFile(3, "ebay-vero", outside, outside.with_suffix(".json"))]),
    ]
    failures = [FetchFailure("https://www.aliexpress.com/item/404.html", "HTTP 404 Not Found"),
                FetchFailure("javascript:fetch('//evil.example')", "not a web address",
                             page_url="https://www.aliexpress.com/item/1005001.html")]
    result = SweepResult(sweep_id=SWEEP, started_at="2026-12-02T10:00:00Z", finished_at="2026-12-02T10:07:00Z",
                         out_dir=out, items=items, failures=failures, report_html=out / "report.html",
                         evidence_html=evidence, warnings=["kit for case 9 not written: <no proof>"])
    write_sweep_report(result, out / "report.html", out / "report.json")
    return {"result": result, "out": out, "html": (out / "report.html").read_text(),
            "json": json.loads((out / "report.json").read_text()), "traced": res}


def test_the_traces_are_real(sweep: dict[str, Any]) -> None:
    got = {n: (r.verdict.verdict, r.verdict.record_id) for n, r in sweep["traced"].items()}
    assert got == {"a.jpg": ("match", "rid0002"), "b.webp": ("match", "rid0003"), "c.jpg": ("match", "rid0001"),
                   "d.jpg": ("match", "rid0002"), "e.jpg": ("match", "rid0001"), "f.jpg": ("no-match", None),
                   "g.jpg": ("no-match", None)}
    assert sweep["traced"]["g.jpg"].error


def test_header_counts_and_next_step(sweep: dict[str, Any]) -> None:
    text = sweep["html"]
    header = text[text.index("<header>"):text.index("</header>")]
    assert SWEEP in header and "2026-12-02 10:00:00 UTC" in header and "<b>7</b> suspects traced" in header
    chips = dict(re.findall(r'data-count="([a-z-]+)"><b>(\d+)</b>', header))
    assert chips == {"new": "3", "relisted": "1", "still-up": "1", "no-match": "1", "errors": "1",
                     "fetch-failures": "2"}
    assert "1 warning at the end of this page." in header
    assert "(cases 1, 2, 3, 4)" in header and "<code>catalogmark cases mark N reported</code>" in header


def test_sections_in_order_grouped_by_seller_and_listing(sweep: dict[str, Any]) -> None:
    text = sweep["html"]
    ids = re.findall(r'<section class="part[^"]*" id="([a-z-]+)"><h2>', text)
    assert ids == ["new", "relisted", "still-up", "no-match", "errors", "warnings"]
    heads = re.findall(r'id="[a-z-]+"><h2>([^<]+)</h2>', text)
    assert heads[:5] == ["New copies (3)", "Relisted (1)", "Still up (1)", "No match (1)",
                         "Could not read / could not fetch (3)"]
    new = text[text.index('id="new"'):text.index('id="relisted"')]
    # sellers sorted by name: "Second Store" (eBay) before "Shop One" (AliExpress, two listings)
    sellers = re.findall(r"<h3>Seller: (.*?) <span class=\"market\">on (\w+)", new)
    assert sellers == [("Second Store", "eBay"), ("Shop One", "AliExpress")]
    shop_one = new[new.index("Seller: Shop One"):]
    listings = re.findall(r'<div class="listing"><h4>Listing: ([^<]+) &mdash; <a class="url" href="([^"]+)"', shop_one)
    assert listings == [("Kitchen scale, 5 kg", "https://www.aliexpress.com/item/1005001.html"),
                        ("Scale with bowl", "https://www.aliexpress.com/item/1005002.html")]
    assert re.findall(r'data-case="(\d+)"', new) == ["3", "1", "2"]
    for needle in ("SKU <b>SKU2</b> &middot; preset amazon &middot; record <code>rid0002</code>",
                   "probability of a false match &le;", '<span class="badge found">found</span>',
                   "2026-12-02 10:01:00 UTC", 'href="https://ae01.alicdn.com/kf/a.jpg"'):
        assert needle in new, needle
    relisted = text[text.index('id="relisted"'):text.index('id="still-up"')]
    assert '<span class="badge relisted">RELISTED</span>' in relisted
    assert "marked removed on 2026-11-10 09:00:00 UTC and is up again" in relisted
    still = text[text.index('id="still-up"'):text.index('id="no-match"')]
    assert "at least 12 days; the case is <b>reported</b>" in still
    assert '<h5>Case 5 <span class="badge reported">reported</span></h5>' in still
    assert "2026-11-20 08:00:00 UTC / 2026-12-02 10:00:00 UTC" in still
    tail = text[text.index('id="no-match"'):]
    assert "Other Brand" in tail and "HTTP 404 Not Found" in tail and "Broken Shop" in tail
    # every matched item shows the suspect beside our export; none for the no-match / error tables
    assert text.count('<figure data-role="suspect">') == 5 and text.count('<figure data-role="export">') == 5


def test_local_links_are_relative_to_the_report(sweep: dict[str, Any]) -> None:
    text = sweep["html"]
    assert 'href="drafts/case-1.aliexpress-ipp.txt">text</a>' in text
    assert 'href="drafts/case-1.dmca.json">JSON</a>' in text and "to fill in: email" in text
    assert 'href="evidence.html">evidence report</a>' in text and 'href="kits/case-1">priority kit' in text
    assert 'href="downloads/a.jpg">the saved copy</a>' in text
    outside = sweep["result"].items[-1].drafts[0].text_path
    assert f'href="{outside.resolve().as_uri()}"' in text  # outside the report's folder: an absolute file: URI
    assert (sweep["out"] / "report.html").exists() and not list(sweep["out"].glob("*.part"))


def test_untrusted_text_is_escaped_and_only_web_urls_are_links(sweep: dict[str, Any]) -> None:
    text = sweep["html"]
    assert "<script" not in text and "<img src=x" not in text and "onerror=alert(3)>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&quot;&gt;&lt;img src=x onerror=alert(3)&gt;" in text
    hrefs = re.findall(r'href="([^"]*)"', text)
    assert hrefs and all(h.startswith(("https://", "file:///")) or not re.match(r"^[a-z]+:", h) for h in hrefs)
    assert not any("javascript" in h or h.startswith("data:") for h in hrefs)
    assert '<span class="url unlinked" title="not a web link: shown as text">javascript:alert(1)</span>' in text
    assert "javascript:fetch(&#x27;//evil.example&#x27;)</span>" in text
    assert "default-src 'none'; img-src data:" in text
    srcs = re.findall(r'src="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert "url(" not in text.split("<body>")[0]  # the CSS fetches nothing
    for bad in ("javascript:alert(1)", " https://x.example/", "https://", "data:image/png;base64,AA",
                "https://x.example/\nevil", "ftp://x.example/a", "//x.example/a"):
        assert web_url(bad) is None, bad
    assert web_url("HTTPS://x.example/a?b=<c>") == "HTTPS://x.example/a?b=<c>"


def test_json_twin_has_the_same_counts_and_items(sweep: dict[str, Any]) -> None:
    doc = sweep["json"]
    assert doc["sweep_id"] == SWEEP and doc["sections"] == ["new", "relisted", "still-up", "no-match", "errors"]
    assert doc["counts"] == {"suspects": 7, "new": 3, "relisted": 1, "still_up": 1, "no_match": 1, "errors": 1,
                             "fetch_failures": 2, "drafts": 5, "warnings": 1}
    assert [i["change"] for i in doc["items"]] == [i.change for i in sweep["result"].items]
    by_case = {i["case_id"]: i for i in doc["items"] if i["case_id"]}
    assert set(by_case) == {1, 2, 3, 4, 5}
    assert by_case[1]["match"]["record_id"] == "rid0002" and by_case[1]["marketplace_name"] == "AliExpress"
    assert by_case[1]["drafts"][0]["missing"] == ["email"] and by_case[1]["kit"].endswith("kits/case-1")
    assert by_case[4]["case"]["relisted"] is True and by_case[5]["seller"] == HOSTILE_SELLER
    assert by_case[5]["page_url"] == HOSTILE_PAGE and by_case[5]["trace"]["verdict"] == "match"
    err = next(i for i in doc["items"] if i["change"] == "error")
    assert err["error"] and err["case"] is None
    assert [f["url"] for f in doc["failures"]] == [f.url for f in sweep["result"].failures]
    assert json.loads(json.dumps(sweep_json(sweep["result"]), default=str))["counts"] == doc["counts"]


def test_an_empty_sweep_renders(tmp_path: Path) -> None:
    text = render_sweep_html(SweepResult("empty", "2026-12-02T10:00:00Z", "2026-12-02T10:00:01Z", tmp_path))
    assert text.count("None in this sweep.") == 5 and "Nothing new to file in this sweep." in text


def _white_twin(match: re.Match[str]) -> str:
    """A data URI of a white JPEG of the same size as the one matched (the page's layout stays the same)."""
    size = Image.open(io.BytesIO(base64.b64decode(match.group(1)))).size
    buf = io.BytesIO()
    Image.new("RGB", size, (255, 255, 255)).save(buf, "JPEG")
    return 'src="data:image/jpeg;base64,' + base64.b64encode(buf.getvalue()).decode("ascii") + '"'


def test_the_page_renders_in_headless_chromium(sweep: dict[str, Any], chromium: str, tmp_path: Path) -> None:
    """The page in Chromium: not blank, the header band, and the side-by-side photos: the same page with each photo
    replaced by a white one of its size differs from it exactly where the figures are, in the left column."""
    page = sweep["out"] / "report.html"
    height = 2400
    shot = screenshot_html(chromium, page, tmp_path / "sweep.png", width=1280, height=height)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (height, 1280)
    assert pixels.std() > 20 and (np.abs(pixels - 255).sum(axis=2) > 30).mean() > 0.2  # not blank
    assert (np.abs(pixels[:150] - [29, 43, 69]).sum(axis=2) < 12).mean() > 0.5  # the header band
    white = tmp_path / "white.html"
    white.write_text(re.sub(r'src="data:image/jpeg;base64,([^"]+)"', _white_twin, sweep["html"]))
    bare = np.asarray(Image.open(screenshot_html(chromium, white, tmp_path / "white.png", width=1280,
                                                 height=height)).convert("RGB")).astype(int)
    photo = np.abs(pixels - bare).sum(axis=2) > 30
    assert 0.1 < photo.mean() < 0.5, photo.mean()
    assert not photo[:200].any()  # the header has no photo
    cols = photo.mean(axis=0)
    assert cols[:40].max() == 0 and cols[760:].max() == 0  # inside the page's margin, in the left column
    # the first item: two figures side by side at the same height (the products differ from white, not the
    # white around them)
    rows = np.flatnonzero(photo.any(axis=1))
    first = photo[rows[0]:rows[0] + 300]
    xs = np.flatnonzero(first.any(axis=0))
    gap = np.flatnonzero(np.diff(xs) > 5)
    assert len(gap) == 1, xs  # two blocks
    left, right = xs[:gap[0] + 1], xs[gap[0] + 1:]
    assert 80 < len(left) <= 340 and 80 < len(right) <= 340 and right[0] - left[0] > 300
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "<script" not in dom and len(re.findall(r"<img ", dom)) == 10
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    keep = os.environ.get("CATALOGMARK_KEEP_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
