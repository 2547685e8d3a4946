"""Tests of pipeline/sweep/sources.py: files, folders, saved pages, URL lists and listing pages → suspects."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.sweep.fetch import MIB, Fetcher
from pipeline.sweep.models import FetchFailure, Found, Suspect
from pipeline.sweep.sources import NO_IMAGES, OFFLINE, gather, read_url_list
from pipeline.timefmt import ISO_UTC
from tests.listing_server import (
    ListingServer,
    aliexpress_page,
    ebay_page,
    make_jpeg,
    make_png,
    plain_shop_page,
)

ALI_CANONICAL = "https://www.aliexpress.com/item/1005006123456789.html"


@pytest.fixture(autouse=True)
def _guard(only_loopback: list[str]) -> None:
    """Every test here runs under conftest's only_loopback guard."""


@pytest.fixture
def listing_server() -> Iterator[ListingServer]:
    with ListingServer(huge_page_bytes=MIB + MIB // 2, huge_image_bytes=3 * MIB) as srv:
        yield srv


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(trust_env=False, timeout=2, deadline=3, max_image_bytes=2 * MIB, max_page_bytes=MIB) as f:
        yield f


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    return tmp_path / "downloads"


@pytest.fixture
def ali_listing(listing_server: ListingServer) -> dict[str, bytes]:
    """An AliExpress-like listing at /item/1.html: og:image + JSON-LD seller + a two-photo srcset gallery, every
    largest rendition served (the thumbnails too, so a wrong pick would show)."""
    photos = {"/kf/Smain.jpg": make_jpeg(1), "/kf/Sa_960.jpg": make_jpeg(2), "/kf/Sb_960.png": make_png(3),
              "/kf/Sa_220.jpg": make_jpeg(4, (22, 16)), "/kf/Sb_220.jpg": make_jpeg(5, (22, 16))}
    for path, data in photos.items():
        listing_server.add_file(path, data, "image/png" if path.endswith(".png") else "image/jpeg")
    listing_server.add_page("/item/1.html", aliexpress_page(
        title="LED Desk Lamp", seller="Bright Home Store", og_image=listing_server.url("/kf/Smain.jpg"),
        canonical=ALI_CANONICAL,
        gallery=[[("/kf/Sa_220.jpg", 220), ("/kf/Sa_960.jpg", 960)], [("/kf/Sb_220.jpg", 220), ("/kf/Sb_960.png", 960)]]))
    return photos


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- listing pages over HTTP ---------------------------------------------------------------------------------------

def test_listing_page(listing_server: ListingServer, fetcher: Fetcher, downloads: Path,
                      ali_listing: dict[str, bytes]) -> None:
    page = listing_server.url("/item/1.html")
    lines: list[str] = []
    got = gather([page], download_dir=downloads, fetcher=fetcher, progress=lines.append)
    assert got.failures == ()
    assert [s.found.image_url for s in got.suspects] == [listing_server.url(p) for p in
                                                         ("/kf/Smain.jpg", "/kf/Sa_960.jpg", "/kf/Sb_960.png")]
    for suspect, path in zip(got.suspects, ("/kf/Smain.jpg", "/kf/Sa_960.jpg", "/kf/Sb_960.png"), strict=True):
        data = ali_listing[path]
        assert suspect.path.parent == downloads
        assert suspect.path.name == _sha(data)[:16] + (".png" if path.endswith(".png") else ".jpg")
        assert suspect.path.read_bytes() == data
        f = suspect.found
        assert (f.page_url, f.marketplace, f.seller, f.listing_title) == (page, "aliexpress", "Bright Home Store",
                                                                          "LED Desk Lamp")
        time.strptime(f.fetched_at or "", ISO_UTC)
    assert listing_server.hits("/kf/Sa_220.jpg") == 0  # the largest rendition only
    assert not [p for p in downloads.iterdir() if p.name.startswith(".")]  # no temp files left
    assert any(page in line for line in lines)


def test_flags_override_the_page(listing_server: ListingServer, fetcher: Fetcher, downloads: Path,
                                 ali_listing: dict[str, bytes]) -> None:
    got = gather([listing_server.url("/item/1.html")], download_dir=downloads, fetcher=fetcher,
                 seller="Copycat Ltd", marketplace="AliExpress", max_images_per_page=1)
    assert len(got.suspects) == 1
    assert (got.suspects[0].found.seller, got.suspects[0].found.marketplace) == ("Copycat Ltd", "aliexpress")


def test_marketplace_from_the_site_name_on_an_unknown_host(listing_server: ListingServer, fetcher: Fetcher,
                                                           downloads: Path) -> None:
    listing_server.add_file("/i/1.jpg", make_jpeg(11), "image/jpeg")
    page = listing_server.add_page("/itm/5", ebay_page(title="Lamp", seller="joe_uk", images=["/i/1.jpg"]))
    got = gather([page], download_dir=downloads, fetcher=fetcher)
    assert [(s.found.marketplace, s.found.seller) for s in got.suspects] == [("ebay", "joe_uk")]
    plain = listing_server.add_page("/shop/lamp", plain_shop_page(title="Lamp", images=["/i/1.jpg"]))
    found = gather([plain], download_dir=downloads, fetcher=fetcher).suspects[0].found
    assert (found.marketplace, found.seller, found.listing_title) == (None, None, "Lamp")


def test_hostile_image_candidates(listing_server: ListingServer, fetcher: Fetcher, downloads: Path) -> None:
    listing_server.add_page("/", "<html><body>home</body></html>")
    good = listing_server.add_file("/img/good.jpg", make_jpeg(21), "image/jpeg")
    html = plain_shop_page(title="Trap", images=[
        "/", "/robots.txt", "/shop/trap.html", "/hostile/html-as-jpeg", "/hostile/404", "/hostile/500",
        "/hostile/loop", "/hostile/redirect-to-page", "/hostile/redirect-to-file", "/hostile/oversize.jpg",
        "/hostile/gzip-bomb.jpg", "javascript:alert(1)", "file:///etc/passwd", "/img/good.jpg"])
    page = listing_server.add_page("/shop/trap.html", html)
    got = gather([page], download_dir=downloads, fetcher=fetcher, max_images_per_page=12)
    assert [s.found.image_url for s in got.suspects] == [good]
    errors = {f.url.removeprefix(listing_server.base_url): f.error for f in got.failures}
    assert errors == {
        "/": "not an image: the server sent text/html",
        "/robots.txt": "not an image: the server sent text/plain",
        "/shop/trap.html": "not an image: the server sent text/html",
        "/hostile/html-as-jpeg": "not an image: the bytes are HTML although the server says image/jpeg",
        "/hostile/404": "HTTP 404 Not Found",
        "/hostile/500": "HTTP 500 Internal Server Error",
        "/hostile/loop": "too many redirects (more than 5)",
        "/hostile/redirect-to-page": "not an image: the server sent text/html",
        "/hostile/redirect-to-file": "redirected to file:///etc/passwd: only http and https URLs can be fetched",
        "/hostile/oversize.jpg": "larger than 2 MiB (3 MiB announced)",
        "/hostile/gzip-bomb.jpg": "larger than 2 MiB",
    }
    assert {f.page_url for f in got.failures} == {page}
    assert sorted(downloads.iterdir()) == [got.suspects[0].path]


def test_page_failures(listing_server: ListingServer, fetcher: Fetcher, downloads: Path) -> None:
    no_images = listing_server.add_page("/empty.html", "<html><head><title>x</title></head><body></body></html>")
    urls = [listing_server.url("/hostile/404"), listing_server.url("/hostile/huge-page"),
            listing_server.url("/hostile/huge-page-chunked"), listing_server.url("/hostile/redirect-to-page"),
            no_images]
    got = gather(urls, download_dir=downloads, fetcher=fetcher)
    assert got.suspects == ()
    assert got.failures == (
        FetchFailure(urls[0], "HTTP 404 Not Found"),
        FetchFailure(urls[1], "larger than 1 MiB (1.5 MiB announced)"),
        FetchFailure(urls[2], "larger than 1 MiB"),
        FetchFailure(urls[3], NO_IMAGES),  # an image URL that redirects to a page without images
        FetchFailure(no_images, NO_IMAGES),
    )


def test_a_slow_page_is_cut_off(listing_server: ListingServer, downloads: Path) -> None:
    with Fetcher(trust_env=False, timeout=2, deadline=0.5) as quick:
        t = time.monotonic()
        got = gather([listing_server.url("/hostile/slow.jpg")], download_dir=downloads, fetcher=quick)
        assert time.monotonic() - t < 2
    assert [f.error for f in got.failures] == ["timed out after 0.5 s (the whole answer took too long)"]


def test_direct_image_url(listing_server: ListingServer, fetcher: Fetcher, downloads: Path) -> None:
    data = make_png(31)
    listing_server.add_file("/cdn/x.png", data, "image/png")
    url = listing_server.add_redirect("/i/x", "/cdn/x.png")
    got = gather([url], download_dir=downloads, fetcher=fetcher, seller="s1")
    assert len(got.suspects) == 1
    s = got.suspects[0]
    assert s.path.read_bytes() == data and s.path.suffix == ".png"
    assert (s.found.page_url, s.found.image_url, s.found.seller) == (None, url, "s1")  # the URL as given


def test_each_image_url_is_fetched_once(listing_server: ListingServer, fetcher: Fetcher, downloads: Path) -> None:
    listing_server.add_file("/img/shared.jpg", make_jpeg(41), "image/jpeg")
    listing_server.add_file("/img/copy.jpg", make_jpeg(41), "image/jpeg")  # the same bytes under another URL
    one = listing_server.add_page("/p/1", plain_shop_page(title="One", images=["/img/shared.jpg", "/img/copy.jpg"]))
    two = listing_server.add_page("/p/2", plain_shop_page(title="Two", images=["/img/shared.jpg"]))
    got = gather([one, two, one], download_dir=downloads, fetcher=fetcher)
    assert listing_server.hits("/img/shared.jpg") == 1
    assert [(s.found.page_url, s.found.image_url) for s in got.suspects] == [
        (one, listing_server.url("/img/shared.jpg")),  # its copy under /img/copy.jpg is the same bytes: once
        (two, listing_server.url("/img/shared.jpg"))]
    assert len({s.path for s in got.suspects}) == 1


def test_max_images_per_page(listing_server: ListingServer, fetcher: Fetcher, downloads: Path) -> None:
    for i in range(6):
        listing_server.add_file(f"/g/{i}.jpg", make_jpeg(50 + i), "image/jpeg")
    page = listing_server.add_page("/p", plain_shop_page(title="G", images=[f"/g/{i}.jpg" for i in range(6)]))
    got = gather([page], download_dir=downloads, fetcher=fetcher, max_images_per_page=4)
    assert [s.found.image_url for s in got.suspects] == [listing_server.url(f"/g/{i}.jpg") for i in range(4)]
    assert listing_server.hits("/g/4.jpg") == 0
    with pytest.raises(ConfigError):
        gather([page], download_dir=downloads, fetcher=fetcher, max_images_per_page=0)


def test_urls_offline(downloads: Path) -> None:
    got = gather(["https://www.aliexpress.com/item/1.html"], download_dir=downloads, fetcher=None)
    assert got.failures == (FetchFailure("https://www.aliexpress.com/item/1.html", "not fetched (offline: no fetcher)"),)


# -- URL lists -----------------------------------------------------------------------------------------------------

def test_txt_url_list(listing_server: ListingServer, fetcher: Fetcher, downloads: Path, tmp_path: Path,
                      ali_listing: dict[str, bytes]) -> None:
    image = listing_server.add_file("/loose.jpg", make_jpeg(61), "image/jpeg")
    lst = tmp_path / "found.txt"
    lst.write_text(f"# found on 2026-12-01\n\n  {listing_server.url('/item/1.html')}  \n{image}\n", encoding="utf-8")
    got = gather([str(lst)], download_dir=downloads, fetcher=fetcher, seller="flag seller", max_images_per_page=1)
    assert [(s.found.page_url, s.found.seller) for s in got.suspects] == [
        (listing_server.url("/item/1.html"), "flag seller"), (None, "flag seller")]


def test_csv_url_table(listing_server: ListingServer, fetcher: Fetcher, downloads: Path, tmp_path: Path) -> None:
    a = listing_server.add_file("/a.jpg", make_jpeg(71), "image/jpeg")
    b = listing_server.add_file("/b.jpg", make_jpeg(72), "image/jpeg")
    table = tmp_path / "found.csv"
    table.write_text(f"URL,Seller,Marketplace,Title\n{a},Row Seller,Temu,Row Title\n{b},,,\n\n", encoding="utf-8-sig")
    got = gather([table], download_dir=downloads, fetcher=fetcher, seller="Flag", marketplace="etsy")
    assert [s.found for s in got.suspects] == [
        Found(image_url=a, marketplace="temu", seller="Row Seller", listing_title="Row Title",
              fetched_at=got.suspects[0].found.fetched_at),
        Found(image_url=b, marketplace="etsy", seller="Flag", fetched_at=got.suspects[1].found.fetched_at)]


def test_bad_url_lists(tmp_path: Path, downloads: Path, listing_server: ListingServer, fetcher: Fetcher) -> None:
    good = tmp_path / "good.txt"
    good.write_text(listing_server.url("/hostile/404") + "\n")
    bad_txt = tmp_path / "bad.txt"
    bad_txt.write_text("https://www.ebay.com/itm/1\n# fine\nfile:///etc/passwd\n")
    no_url = tmp_path / "nourl.csv"
    no_url.write_text("link,seller\nhttps://www.ebay.com/itm/1,x\n")
    bad_row = tmp_path / "badrow.csv"
    bad_row.write_text('url,title\nhttps://www.ebay.com/itm/1,"two\nlines"\nwww.ebay.com/itm/2,x\n')
    cases = [(bad_txt, f"{bad_txt}, line 3: not an http(s) URL: 'file:///etc/passwd'"),
             (no_url, f"{no_url}: no url column"),
             (bad_row, f"{bad_row}, line 4: not an http(s) URL: 'www.ebay.com/itm/2'")]
    for path, message in cases:
        with pytest.raises(ConfigError) as info:
            gather([str(good), str(path)], download_dir=downloads, fetcher=fetcher)
        assert str(info.value).startswith(message)
    assert listing_server.requests == []  # checked before anything was fetched
    assert [t.url for t in read_url_list(good)] == [listing_server.url("/hostile/404")]


def test_bad_local_inputs(tmp_path: Path, downloads: Path) -> None:
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    for item, message in [(str(tmp_path / "missing.jpg"), "no such file or folder"),
                          ("ftp://files.example/a.jpg", "only http and https URLs can be swept"),
                          ("javascript:alert(1)", "only http and https URLs can be swept"),
                          (str(tmp_path / "notes.pdf"), "not an image file, a saved page")]:
        with pytest.raises(ConfigError, match=message):
            gather([item], download_dir=downloads, fetcher=None)


# -- local files and folders ---------------------------------------------------------------------------------------

def test_image_files_and_folders(tmp_path: Path, downloads: Path) -> None:
    one = tmp_path / "one.jpg"
    one.write_bytes(make_jpeg(81))
    folder = tmp_path / "found"
    (folder / "b").mkdir(parents=True)
    (folder / "a.png").write_bytes(make_png(82))
    (folder / "b" / "c.JPG").write_bytes(make_jpeg(83))
    (folder / "notes.txt").write_text("not a URL list inside a folder")
    (folder / ".hidden.jpg").write_bytes(make_jpeg(84))
    (folder / ".cache").mkdir()
    (folder / ".cache" / "d.jpg").write_bytes(make_jpeg(85))
    got = gather([str(one), str(folder)], download_dir=downloads, fetcher=None, seller="S", marketplace="Etsy")
    assert got.suspects == (Suspect(one, Found(seller="S", marketplace="etsy")),
                            Suspect(folder / "a.png", Found(seller="S", marketplace="etsy")),
                            Suspect(folder / "b" / "c.JPG", Found(seller="S", marketplace="etsy")))
    assert gather([str(one)], download_dir=downloads, fetcher=None).suspects == (Suspect(one, Found()),)
    assert not downloads.exists()  # nothing downloaded, nothing copied


def test_a_folder_sweep_skips_the_folders_sweeps_wrote(tmp_path: Path) -> None:
    work = tmp_path / "found"
    (work / "shots").mkdir(parents=True)
    (work / "shots" / "copy.jpg").write_bytes(make_jpeg(86))
    old = work / "sweeps" / "2026-11"  # an earlier sweep's folder: its downloads were traced then
    (old / "downloads").mkdir(parents=True)
    (old / "downloads" / "0123456789abcdef.jpg").write_bytes(make_jpeg(87))
    (old / "report.json").write_text("{}")
    mine = work / "sweeps" / "2026-12" / "downloads"  # this sweep's own, being written
    mine.mkdir(parents=True)
    (mine / "fedcba9876543210.jpg").write_bytes(make_jpeg(88))
    lines: list[str] = []
    got = gather([str(work)], download_dir=mine, fetcher=None, progress=lines.append)
    assert [s.path for s in got.suspects] == [work / "shots" / "copy.jpg"]
    assert any(str(old) in line and "skipping" in line for line in lines), lines


# -- saved pages ---------------------------------------------------------------------------------------------------

@pytest.fixture
def saved_page(tmp_path: Path) -> Path:
    """A browser's "Save page as… complete" of an AliExpress listing: Lamp.html + Lamp_files/, the gallery saved
    (names percent-encoded in the HTML), og:image still the web URL of one saved file, one web image not saved,
    and hostile local references."""
    folder = tmp_path / "saved"
    assets = folder / "Lamp_files"
    assets.mkdir(parents=True)
    (assets / "Smain 1.jpg").write_bytes(make_jpeg(91))
    (assets / "Sa_960.jpg").write_bytes(make_jpeg(92))
    (assets / "logo.png").write_bytes(b"<html>not really a png</html>")
    (tmp_path / "outside.jpg").write_bytes(make_jpeg(93))
    html = aliexpress_page(
        title="LED Desk Lamp", seller="Bright Home Store", og_image="https://ae01.alicdn.com/kf/Smain%201.jpg",
        jsonld_images=["https://ae01.alicdn.com/kf/Smain%201.jpg", "https://ae01.alicdn.com/kf/Snot_saved.jpg"],
        canonical=ALI_CANONICAL,
        gallery=[[("./Lamp_files/Smain%201.jpg", 960)], [("./Lamp_files/Sa_960.jpg", 960)],
                 [("Lamp_files/logo.png", 200)], [("Lamp_files/missing.jpg", 100)],
                 [("../outside.jpg", 100)], [("file:///etc/passwd", 100)]])
    page = folder / "Lamp.html"
    page.write_text("<!-- saved from url=(0055)https://www.aliexpress.com/item/1005006123456789.html -->\n" + html,
                    encoding="utf-8")
    os.utime(page, (1_780_000_000, 1_780_000_000))
    return page


def test_saved_page_offline(saved_page: Path, downloads: Path) -> None:
    got = gather([str(saved_page)], download_dir=downloads, fetcher=None)
    assets = saved_page.parent.resolve() / "Lamp_files"
    common = {"page_url": ALI_CANONICAL, "marketplace": "aliexpress", "seller": "Bright Home Store",
              "listing_title": "LED Desk Lamp", "fetched_at": "2026-05-28T20:26:40Z"}
    assert got.suspects == (
        Suspect(assets / "Smain 1.jpg", Found(image_url="https://ae01.alicdn.com/kf/Smain%201.jpg", **common)),
        Suspect(assets / "Sa_960.jpg", Found(image_url=None, **common)),
    )
    errors = {f.url.rsplit("/", 1)[-1]: f.error for f in got.failures}
    assert errors == {
        "logo.png": "not an image: the saved file is not JPEG, PNG, WebP, GIF, AVIF, HEIC, BMP or TIFF",
        "missing.jpg": "not saved with the page (the file is missing)",
        "outside.jpg": "outside the saved page's folder: not read",
        "passwd": "outside the saved page's folder: not read",
        "Snot_saved.jpg": OFFLINE,  # a web image the page names but did not save; its og:image was saved
    }
    assert {f.page_url for f in got.failures} == {ALI_CANONICAL}
    assert not downloads.exists()


def test_saved_page_symlink_out_of_its_folder(saved_page: Path, downloads: Path) -> None:
    """A link inside the page's folder that points outside it is not followed."""
    (saved_page.parent / "Lamp_files" / "Sa_960.jpg").unlink()
    (saved_page.parent / "Lamp_files" / "Sa_960.jpg").symlink_to(saved_page.parent.parent / "outside.jpg")
    got = gather([saved_page], download_dir=downloads, fetcher=None)
    assert [s.path.name for s in got.suspects] == ["Smain 1.jpg"]
    assert "outside the saved page's folder: not read" in {f.error for f in got.failures if "Sa_960" in f.url}


def test_saved_page_in_a_folder(saved_page: Path, downloads: Path) -> None:
    """A folder holding a saved page: the page's images come with their listing, not again as loose files."""
    loose = saved_page.parent / "loose.png"
    loose.write_bytes(make_png(95))
    got = gather([str(saved_page.parent)], download_dir=downloads, fetcher=None)
    assert [(s.path.name, s.found.page_url) for s in got.suspects] == [
        ("Smain 1.jpg", ALI_CANONICAL), ("Sa_960.jpg", ALI_CANONICAL), ("loose.png", None)]


def test_saved_page_with_a_fetcher(saved_page: Path, downloads: Path, listing_server: ListingServer,
                                   fetcher: Fetcher) -> None:
    """Web candidates not saved with the page are fetched when there is a fetcher (here: served locally)."""
    web = listing_server.add_file("/kf/extra.jpg", make_jpeg(96), "image/jpeg")
    text = saved_page.read_text(encoding="utf-8").replace("https://ae01.alicdn.com/kf/Snot_saved.jpg", web)
    saved_page.write_text(text, encoding="utf-8")
    got = gather([str(saved_page)], download_dir=downloads, fetcher=fetcher)
    # the page says it is www.aliexpress.com: it may not make the sweep fetch from this machine
    assert [s.found.image_url for s in got.suspects] == ["https://ae01.alicdn.com/kf/Smain%201.jpg", None]
    assert any(f.url == web and "local or private network" in f.error for f in got.failures), got.failures
    assert listing_server.requests == []
    local_canonical = listing_server.url("/item/1005006123456789.html")
    saved_page.write_text(text.replace(ALI_CANONICAL, local_canonical), encoding="utf-8")
    got = gather([str(saved_page)], download_dir=downloads, fetcher=fetcher)
    assert [s.found.image_url for s in got.suspects] == ["https://ae01.alicdn.com/kf/Smain%201.jpg", None, web]
    assert got.suspects[2].path.parent == downloads
    assert got.suspects[2].found.page_url == local_canonical
    assert listing_server.requests == ["/kf/extra.jpg"]  # the saved og:image is not fetched again


def test_saved_page_too_big_or_empty(tmp_path: Path, downloads: Path) -> None:
    big = tmp_path / "big.html"
    big.write_bytes(b"<html><body>" + b"x" * (5 * MIB) + b"</body></html>")
    empty = tmp_path / "empty.htm"
    empty.write_text("<html><body><p>no pictures</p></body></html>")
    got = gather([str(big), str(empty)], download_dir=downloads, fetcher=None)
    assert got.failures == (FetchFailure(str(big), "larger than 5 MiB"), FetchFailure(str(empty), NO_IMAGES))
