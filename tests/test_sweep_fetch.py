"""Tests of pipeline/sweep/fetch.py against a real HTTP server on 127.0.0.1: answers, limits, hostile routes."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pipeline.sweep.fetch import (
    MIB,
    FetchedImage,
    FetchedPage,
    Fetcher,
    FetchError,
    image_kind,
    looks_like_html,
    size_text,
)
from pipeline.timefmt import ISO_UTC
from tests.listing_server import ListingServer, make_image, make_jpeg, make_png, make_webp


@pytest.fixture(autouse=True)
def _guard(only_loopback: list[str]) -> None:
    """Every test here runs under conftest's only_loopback guard."""


@pytest.fixture
def listing_server() -> Iterator[ListingServer]:
    with ListingServer(huge_page_bytes=MIB + MIB // 2, huge_image_bytes=3 * MIB, stall_seconds=3) as srv:
        yield srv


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(trust_env=False, timeout=2, deadline=3, max_image_bytes=2 * MIB, max_page_bytes=MIB) as f:
        yield f


def _error(fetch, *args, **kwargs) -> str:
    with pytest.raises(FetchError) as info:
        fetch(*args, **kwargs)
    return info.value.message


def _encoded(fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    make_image(3, (16, 12)).save(buf, fmt, **params)
    return buf.getvalue()


# -- signatures ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "kind"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"),
                                           ("BMP", "bmp"), ("TIFF", "tiff")])
def test_image_kind_of_real_files(fmt: str, kind: str) -> None:
    assert image_kind(_encoded(fmt)[:512]) == kind


def test_image_kind_of_heic_and_avif_boxes() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"
    mif1_avif = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf"  # brand mif1, avif compatible
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    assert image_kind(heic) == "heic"
    assert image_kind(avif) == "avif"
    assert image_kind(mif1_avif) == "avif"
    assert image_kind(mp4) is None


def test_image_kind_of_real_heic() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    assert image_kind(_encoded("HEIF")[:512]) == "heic"


@pytest.mark.parametrize("head", [b"<!DOCTYPE html><html>", b"\xef\xbb\xbf  <html lang=en>", b"<?xml version='1.0'?>",
                                  b"\n\n<!-- c -->", b"garbage first then <html> later"])
def test_html_sniffing(head: bytes) -> None:
    assert looks_like_html(head)
    assert image_kind(head) is None


def test_binary_is_not_html() -> None:
    assert not looks_like_html(make_jpeg(1)[:512])
    assert not looks_like_html(b"hello world")


@given(st.binary(max_size=600))
def test_sniffers_never_raise(data: bytes) -> None:
    kind = image_kind(data)
    assert kind is None or kind in {"jpeg", "png", "webp", "gif", "avif", "heic", "bmp", "tiff"}
    looks_like_html(data)


def test_size_text() -> None:
    assert size_text(25 * MIB) == "25 MiB"
    assert size_text(5 * MIB) == "5 MiB"
    assert size_text(MIB + MIB // 2) == "1.5 MiB"
    assert size_text(300 * 1024) == "300 KiB"
    assert size_text(512) == "512 bytes"


# -- good answers ------------------------------------------------------------------------------------------------

def test_get_image(listing_server: ListingServer, fetcher: Fetcher) -> None:
    data = make_jpeg(7)
    url = listing_server.add_file("/kf/photo.jpg", data, "image/jpeg")
    got = fetcher.get_image(url, referer="https://www.aliexpress.com/item/1.html", page_local=True)
    assert isinstance(got, FetchedImage)
    assert (got.url, got.final_url, got.content_type, got.kind, got.extension) == (url, url, "image/jpeg", "jpeg",
                                                                                    ".jpg")
    assert got.data == data
    time.strptime(got.fetched_at, ISO_UTC)
    headers = listing_server.headers_seen[-1]
    assert headers["referer"] == "https://www.aliexpress.com/item/1.html"
    assert headers["user-agent"].startswith("catalogmark/")


def test_a_page_on_the_web_cannot_make_the_sweep_reach_a_local_address(listing_server: ListingServer,
                                                                      fetcher: Fetcher) -> None:
    url = listing_server.add_file("/kf/router.jpg", make_jpeg(8), "image/jpeg")
    for named in (url, "http://localhost:9/x.jpg", "http://[::1]:9/x.jpg", "http://192.168.1.1/admin.jpg",
                  "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x.jpg"):
        with pytest.raises(FetchError, match="local or private network address: not fetched"):
            fetcher.get_image(named, referer="https://www.aliexpress.com/item/1.html")
    assert "/kf/router.jpg" not in listing_server.requests  # refused before connecting
    assert isinstance(fetcher.get_image(url), FetchedImage)  # a URL the owner gives is fetched wherever it is


class _Rebinding:
    """A DNS answer that changes: ``rebind.test`` is ``public`` for the first ``public_answers`` lookups, then
    127.0.0.1 (a name a hostile page controls, with a zero TTL). 233.252.0.1 is a documentation address
    (MCAST-TEST-NET, RFC 6676), globally routable by ``ipaddress``; a connection to it by number is recorded in
    ``dialled`` and fails here ("network unreachable") before any socket is opened. Other names go to the
    loopback-only guard."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, public_answers: int) -> None:
        self.inner = socket.getaddrinfo
        self.left = public_answers
        self.lookups = 0
        self.dialled: list[str] = []
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, port=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "233.252.0.1":
            self.dialled.append(host)
            raise OSError(101, "Network is unreachable")
        if host != "rebind.test":
            return self.inner(host, port, *args, **kwargs)
        self.lookups += 1
        address = "233.252.0.1" if self.left > 0 else "127.0.0.1"
        self.left -= 1
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]


def test_a_name_that_turns_local_when_connecting_is_refused(listing_server: ListingServer, fetcher: Fetcher,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    listing_server.add_file("/kf/router.jpg", make_jpeg(8), "image/jpeg")
    dns = _Rebinding(monkeypatch, public_answers=1)  # public to the check before asking, local when connecting
    message = _error(fetcher.get_image, f"http://rebind.test:{listing_server.port}/kf/router.jpg",
                     referer="https://www.aliexpress.com/item/1.html")
    assert "is on a local or private network address: not fetched" in message
    assert "rebind.test answered 127.0.0.1 when connecting" in message
    assert dns.lookups == 2
    assert listing_server.hits("/kf/router.jpg") == 0


def test_the_connection_goes_to_the_address_that_was_checked(listing_server: ListingServer, fetcher: Fetcher,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    listing_server.add_file("/kf/router.jpg", make_jpeg(8), "image/jpeg")
    dns = _Rebinding(monkeypatch, public_answers=2)  # public to both lookups; a third would say 127.0.0.1
    message = _error(fetcher.get_image, f"http://rebind.test:{listing_server.port}/kf/router.jpg",
                     referer="https://www.aliexpress.com/item/1.html")
    assert message.startswith("cannot connect")
    assert (dns.lookups, dns.dialled) == (2, ["233.252.0.1"])  # by number, to the address checked: no new lookup
    assert listing_server.hits("/kf/router.jpg") == 0


def test_a_local_page_may_still_name_local_urls_and_the_owner_any(listing_server: ListingServer,
                                                                  fetcher: Fetcher) -> None:
    url = listing_server.add_file("/kf/own.jpg", make_jpeg(9), "image/jpeg")
    assert isinstance(fetcher.get_image(url, referer=listing_server.url("/shop"), page_local=True), FetchedImage)
    assert isinstance(fetcher.get_image(url), FetchedImage)
    assert listing_server.hits("/kf/own.jpg") == 2


def test_redirects_are_followed_and_the_final_url_kept(listing_server: ListingServer, fetcher: Fetcher) -> None:
    target = listing_server.add_file("/cdn/real.png", make_png(1), "image/png")
    listing_server.add_redirect("/cdn/hop2", "/cdn/real.png", status=301)
    url = listing_server.add_redirect("/img/short", "/cdn/hop2", status=307)
    got = fetcher.get_image(url)
    assert (got.url, got.final_url, got.kind) == (url, target, "png")


def test_the_bytes_decide_the_kind(listing_server: ListingServer, fetcher: Fetcher) -> None:
    """A WebP labelled image/jpeg is a WebP; generic or missing content types are fine for an image."""
    webp = listing_server.add_file("/a.jpg", make_webp(2), "image/jpeg")
    octet = listing_server.add_file("/b", make_png(2), "application/octet-stream")
    untyped = listing_server.add_file("/c", make_jpeg(2), None)
    assert fetcher.get_image(webp).kind == "webp"
    assert fetcher.get_image(octet).kind == "png"
    assert fetcher.get_image(untyped).kind == "jpeg"
    assert isinstance(fetcher.get(untyped), FetchedImage)


def test_get_page_and_get_any(listing_server: ListingServer, fetcher: Fetcher) -> None:
    html = "<html><head><title>Lampe à poser</title></head><body></body></html>".encode("latin-1")
    url = listing_server.add_file("/item/1.html", html, "text/html; charset=ISO-8859-1")
    page = fetcher.get_page(url)
    assert isinstance(page, FetchedPage)
    assert (page.content_type, page.charset, page.data) == ("text/html", "ISO-8859-1", html)
    assert isinstance(fetcher.get(url), FetchedPage)
    image = listing_server.add_file("/x.jpg", make_jpeg(3), "image/jpeg")
    assert isinstance(fetcher.get(image), FetchedImage)
    assert _error(fetcher.get_page, image) == "not an HTML page: the server sent an image"


# -- refusals ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x.jpg", "javascript:alert(1)",
                                 "data:image/png;base64,iVBORw0KGgo=", "gopher://127.0.0.1/", "/relative/x.jpg"])
def test_only_http_and_https(listing_server: ListingServer, fetcher: Fetcher, url: str) -> None:
    assert _error(fetcher.get_image, url) == "only http and https URLs can be fetched"
    assert listing_server.requests == []


@pytest.mark.parametrize("url", ["http://xn--/x.jpg", "http://a..b/x.jpg", "http://[::1/x.jpg", "http:///x.jpg"])
def test_invalid_urls_fail_without_traffic(fetcher: Fetcher, url: str) -> None:
    """Host names that cannot be encoded fail before any lookup."""
    message = _error(fetcher.get_image, url)
    assert message.startswith(("not a valid URL", "the URL names no host")), message


def test_http_errors(listing_server: ListingServer, fetcher: Fetcher) -> None:
    assert _error(fetcher.get_image, listing_server.url("/hostile/404")) == "HTTP 404 Not Found"
    assert _error(fetcher.get_page, listing_server.url("/hostile/500")) == "HTTP 500 Internal Server Error"
    assert _error(fetcher.get, listing_server.url("/no/such/thing.jpg")) == "HTTP 404 Not Found"


def test_endless_redirects_stop_after_the_limit(listing_server: ListingServer, fetcher: Fetcher) -> None:
    assert _error(fetcher.get_image, listing_server.url("/hostile/loop")) == "too many redirects (more than 5)"
    assert listing_server.hits("/hostile/loop") == 6  # the URL and five redirects followed, no more


def test_redirect_limit_is_a_setting(listing_server: ListingServer) -> None:
    listing_server.add_file("/end.jpg", make_jpeg(1), "image/jpeg")
    listing_server.add_redirect("/r2", "/end.jpg")
    listing_server.add_redirect("/r1", "/r2")
    with Fetcher(trust_env=False, max_redirects=1) as strict, Fetcher(trust_env=False, max_redirects=2) as ok:
        assert _error(strict.get_image, listing_server.url("/r1")) == "too many redirects (more than 1)"
        assert ok.get_image(listing_server.url("/r1")).kind == "jpeg"


def test_redirect_to_a_file_url_is_refused(listing_server: ListingServer, fetcher: Fetcher) -> None:
    message = _error(fetcher.get, listing_server.url("/hostile/redirect-to-file"))
    assert message == "redirected to file:///etc/passwd: only http and https URLs can be fetched"


def test_image_url_redirected_to_a_page(listing_server: ListingServer, fetcher: Fetcher) -> None:
    url = listing_server.url("/hostile/redirect-to-page")
    assert _error(fetcher.get_image, url) == "not an image: the server sent text/html"
    assert fetcher.get_page(url).final_url == listing_server.url("/hostile/page.html")


def test_html_served_as_an_image(listing_server: ListingServer, fetcher: Fetcher) -> None:
    url = listing_server.url("/hostile/html-as-jpeg")
    expected = "not an image: the bytes are HTML although the server says image/jpeg"
    assert _error(fetcher.get_image, url) == expected
    assert _error(fetcher.get, url) == expected
    text = _error(fetcher.get_image, listing_server.url("/hostile/text-as-jpeg"))
    assert text == ("not an image: the bytes are not JPEG, PNG, WebP, GIF, AVIF, HEIC, BMP or TIFF although the "
                    "server says image/jpeg")


@pytest.mark.parametrize(("path", "expected"), [
    ("/", "not an image: the server sent text/html"),  # the server's own pages as image URLs
    ("/robots.txt", "not an image: the server sent text/plain"),
])
def test_non_images_of_the_server(listing_server: ListingServer, fetcher: Fetcher, path: str, expected: str) -> None:
    listing_server.add_page("/", "<html><body>home</body></html>")
    assert _error(fetcher.get_image, listing_server.url(path)) == expected


def test_svg_and_other_types(listing_server: ListingServer, fetcher: Fetcher) -> None:
    svg = listing_server.add_file("/logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")
    json_url = listing_server.add_file("/api", b"{}", "application/json")
    empty = listing_server.add_file("/empty.jpg", b"", "image/jpeg")
    assert _error(fetcher.get_image, svg) == "not an image: the server sent image/svg+xml (a drawing, not a photo)"
    assert _error(fetcher.get_image, json_url) == "not an image: the server sent application/json"
    assert _error(fetcher.get, json_url) == "neither an image nor an HTML page: the server sent application/json"
    assert _error(fetcher.get_image, empty) == "not an image: the answer is empty"


def test_huge_page_with_and_without_content_length(listing_server: ListingServer, fetcher: Fetcher) -> None:
    announced = _error(fetcher.get_page, listing_server.url("/hostile/huge-page"))
    assert announced == "larger than 1 MiB (1.5 MiB announced)"
    assert _error(fetcher.get_page, listing_server.url("/hostile/huge-page-chunked")) == "larger than 1 MiB"
    assert _error(fetcher.get, listing_server.url("/hostile/huge-page-chunked")) == "larger than 1 MiB"


def test_oversize_images(listing_server: ListingServer, fetcher: Fetcher) -> None:
    assert _error(fetcher.get_image, listing_server.url("/hostile/oversize.jpg")) == \
        "larger than 2 MiB (3 MiB announced)"
    assert _error(fetcher.get_image, listing_server.url("/hostile/oversize-chunked.jpg")) == "larger than 2 MiB"
    # 3 MiB of zeros gzip-encoded into a few KiB: the cap counts the decoded bytes
    assert _error(fetcher.get_image, listing_server.url("/hostile/gzip-bomb.jpg")) == "larger than 2 MiB"


def test_default_limits() -> None:
    with Fetcher() as f:
        assert (f.max_image_bytes, f.max_page_bytes, f.max_redirects, f.timeout) == (25 * MIB, 5 * MIB, 5, 15.0)
        assert "catalogmark" in f.user_agent


def test_a_trickling_answer_is_cut_off_at_the_deadline(listing_server: ListingServer) -> None:
    with Fetcher(trust_env=False, timeout=2, deadline=0.6) as f:
        t = time.monotonic()
        message = _error(f.get_image, listing_server.url("/hostile/slow.jpg"))
        elapsed = time.monotonic() - t
    assert message == "timed out after 0.6 s (the whole answer took too long)"
    assert 0.5 < elapsed < 2.0


def test_a_stalled_answer_times_out(listing_server: ListingServer) -> None:
    with Fetcher(trust_env=False, timeout=0.4, deadline=5) as f:
        t = time.monotonic()
        assert _error(f.get_image, listing_server.url("/hostile/stall.jpg")) == "timed out after 0.4 s"
        assert time.monotonic() - t < 2.0


def test_connection_refused(fetcher: Fetcher) -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert _error(fetcher.get_image, f"http://127.0.0.1:{port}/x.jpg") == "connection refused"


def test_fetch_error_carries_the_url(listing_server: ListingServer, fetcher: Fetcher) -> None:
    url = listing_server.url("/hostile/404")
    with pytest.raises(FetchError) as info:
        fetcher.get_image(url)
    assert info.value.url == url
    assert str(info.value) == f"{url}: HTTP 404 Not Found"


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        Fetcher(timeout=0)


def test_pillow_can_open_what_was_fetched(listing_server: ListingServer, fetcher: Fetcher) -> None:
    url = listing_server.add_file("/p.png", make_png(9, (20, 10)), "image/png")
    with Image.open(io.BytesIO(fetcher.get_image(url).data)) as im:
        assert im.size == (20, 10)
