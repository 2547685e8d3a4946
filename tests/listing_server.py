"""A real HTTP server on 127.0.0.1 for sweep tests: listing pages and images made in code, hostile routes.

Usage::

    with ListingServer() as srv:
        srv.add_page("/item/1.html", html)                  # text/html; charset=utf-8
        srv.add_file("/img/a.jpg", jpeg_bytes, "image/jpeg")
        srv.add_redirect("/go", "/item/1.html")             # 302 (``status=`` for another)
        url = srv.url("/item/1.html")                       # http://127.0.0.1:<port>/item/1.html
        srv.hits("/img/a.jpg")                              # how many GETs that path got

``http.server.ThreadingHTTPServer`` in a daemon thread, port 0 (a free port), HTTP/1.1 with keep-alive; every
request is logged in ``srv.requests`` (path with query, in order). The ``listing_server`` fixture of a test module
is a one-liner: ``with ListingServer() as srv: yield srv``.

Built-in routes (``HOSTILE`` names them; sizes are constructor arguments):

====================================  ================================================================================
``/robots.txt``                       text/plain
``/hostile/loop``                     302 to itself (``?n=1``, ``?n=2``, ...) for ever
``/hostile/redirect-to-page``         302 to ``/hostile/page.html``, an ordinary HTML page
``/hostile/redirect-to-file``         302 to ``file:///etc/passwd``
``/hostile/page.html``                an HTML page without images
``/hostile/html-as-jpeg``             an HTML document with ``Content-Type: image/jpeg``
``/hostile/text-as-jpeg``             plain text with ``Content-Type: image/jpeg``
``/hostile/huge-page``                ``huge_page_bytes`` of HTML with Content-Length
``/hostile/huge-page-chunked``        the same, chunked (no Content-Length)
``/hostile/oversize.jpg``             a JPEG signature + ``huge_image_bytes`` with Content-Length
``/hostile/oversize-chunked.jpg``     the same, chunked
``/hostile/gzip-bomb.jpg``            a JPEG signature + ``huge_image_bytes`` of zeros, gzip-encoded (a few KiB)
``/hostile/slow.jpg``                 a JPEG signature, then one byte every ``trickle_interval`` s for ever
``/hostile/stall.jpg``                headers, then nothing for ``stall_seconds``
``/hostile/404``, ``/hostile/500``    those statuses (any unknown path is a 404 too)
====================================  ================================================================================

Also here: tiny images made in code (:func:`make_jpeg`, :func:`make_png`) and realistic listing pages
(:func:`aliexpress_page`, :func:`amazon_page`, :func:`ebay_page`, :func:`plain_shop_page`).
"""

from __future__ import annotations

import gzip
import html as html_lib
import http.server
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

MIB = 1 << 20
JPEG_MAGIC = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
HOSTILE = ("/robots.txt", "/hostile/loop", "/hostile/redirect-to-page", "/hostile/redirect-to-file",
           "/hostile/page.html", "/hostile/html-as-jpeg", "/hostile/text-as-jpeg", "/hostile/huge-page",
           "/hostile/huge-page-chunked", "/hostile/oversize.jpg", "/hostile/oversize-chunked.jpg",
           "/hostile/gzip-bomb.jpg", "/hostile/slow.jpg", "/hostile/stall.jpg", "/hostile/404", "/hostile/500")

_PLAIN_PAGE = (b"<!DOCTYPE html><html><head><title>Just a page</title></head>"
               b"<body><p>Nothing to see here.</p></body></html>")


def make_image(seed: int = 0, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A small RGB picture that differs by ``seed`` (smooth gradients + noise: a JPEG of it is a real photo-ish
    file, and two seeds never give the same bytes)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * (3 + seed % 5)) % 256, (yy * (2 + seed % 7)) % 256, ((xx + yy) * 4 + seed * 37) % 256],
                    axis=-1).astype(np.float32)
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy, "RGB")


def make_jpeg(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    make_image(seed, size).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def make_png(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    make_image(seed, size).save(buf, "PNG")
    return buf.getvalue()


def make_webp(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    make_image(seed, size).save(buf, "WEBP", quality=80)
    return buf.getvalue()


@dataclass
class _Route:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


class ListingServer:
    """``with ListingServer() as srv:`` a web server at ``srv.base_url`` (see the module docstring)."""

    def __init__(self, *, huge_page_bytes: int = 6 * MIB, huge_image_bytes: int = 26 * MIB,
                 trickle_interval: float = 0.05, stall_seconds: float = 5.0) -> None:
        self.huge_page_bytes = huge_page_bytes
        self.huge_image_bytes = huge_image_bytes
        self.trickle_interval = trickle_interval
        self.stall_seconds = stall_seconds
        self.requests: list[str] = []
        self.headers_seen: list[dict[str, str]] = []
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- content -----------------------------------------------------------------------------------------------

    def add_page(self, path: str, html: str | bytes, *, status: int = 200,
                 content_type: str = "text/html; charset=utf-8") -> str:
        """Serve ``html`` at ``path``; returns its URL."""
        body = html.encode("utf-8") if isinstance(html, str) else html
        return self.add_file(path, body, content_type, status=status)

    def add_file(self, path: str, data: bytes, content_type: str | None, *, status: int = 200,
                 headers: Sequence[tuple[str, str]] = ()) -> str:
        """Serve ``data`` at ``path`` with that Content-Type (None: no Content-Type header); returns its URL."""
        hdrs = ((("Content-Type", content_type),) if content_type is not None else ()) + tuple(headers)
        with self._lock:
            self._routes[path] = _Route(status, data, hdrs)
        return self.url(path)

    def add_redirect(self, path: str, location: str, *, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``location`` (a path or any URL, sent as given); returns its URL."""
        with self._lock:
            self._routes[path] = _Route(status, b"", (("Location", location),))
        return self.url(path)

    # -- addresses and bookkeeping -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def hits(self, path: str) -> int:
        """How many requests named ``path`` (query ignored)."""
        with self._lock:
            return Counter(urlsplit(p).path for p in self.requests)[path]

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> ListingServer:
        server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- request handling (called from the handler's threads) -------------------------------------------------

    def _log(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(path)
            self.headers_seen.append(headers)

    def _route(self, path: str) -> _Route | None:
        with self._lock:
            return self._routes.get(path)


class _QuietServer(http.server.ThreadingHTTPServer):
    """A client that hangs up mid-answer (as the fetcher does on purpose) is no server error."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _make_handler(srv: ListingServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
            pass

        def _send(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = (),
                  *, length: int | None = None) -> None:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)

        def _chunked(self, status: int, headers: Sequence[tuple[str, str]], pieces: object) -> None:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            assert hasattr(pieces, "__iter__")
            for piece in pieces:
                if srv._stop.is_set():
                    return
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

        def _stream(self, status: int, headers: Sequence[tuple[str, str]], head: bytes, total: int) -> None:
            """``head`` then zeros up to ``total`` bytes, with Content-Length, written in 64 KiB pieces."""
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(total))
            self.end_headers()
            self.wfile.write(head)
            left = total - len(head)
            block = b"\0" * 65536
            while left > 0 and not srv._stop.is_set():
                n = min(left, len(block))
                self.wfile.write(block[:n])
                left -= n

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            srv._log(self.path, {k.lower(): v for k, v in self.headers.items()})
            path = urlsplit(self.path).path
            try:
                self._answer(path)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                self.close_connection = True

        def _answer(self, path: str) -> None:
            route = srv._route(path)
            if route is not None:
                self._send(route.status, route.body, route.headers)
                return
            html_type = (("Content-Type", "text/html; charset=utf-8"),)
            jpeg_type = (("Content-Type", "image/jpeg"),)
            if path == "/robots.txt":
                self._send(200, b"User-agent: *\nDisallow:\n", (("Content-Type", "text/plain"),))
            elif path == "/hostile/loop":
                query = urlsplit(self.path).query
                n = int(query[2:]) + 1 if query.startswith("n=") and query[2:].isdigit() else 1
                self._send(302, b"", (("Location", f"/hostile/loop?n={n}"),))
            elif path == "/hostile/redirect-to-page":
                self._send(302, b"", (("Location", "/hostile/page.html"),))
            elif path == "/hostile/redirect-to-file":
                self._send(302, b"", (("Location", "file:///etc/passwd"),))
            elif path == "/hostile/page.html":
                self._send(200, _PLAIN_PAGE, html_type)
            elif path == "/hostile/html-as-jpeg":
                self._send(200, _PLAIN_PAGE, jpeg_type)
            elif path == "/hostile/text-as-jpeg":
                self._send(200, b"this is not a picture\n" * 40, jpeg_type)
            elif path == "/hostile/huge-page":
                self._stream(200, html_type, b"<!DOCTYPE html><html><body>", srv.huge_page_bytes)
            elif path == "/hostile/huge-page-chunked":
                piece = b"<p>" + b"x" * 65530 + b"</p>"
                count = srv.huge_page_bytes // len(piece) + 1
                self._chunked(200, html_type, [b"<!DOCTYPE html><html><body>"] + [piece] * count)
            elif path == "/hostile/oversize.jpg":
                self._stream(200, jpeg_type, JPEG_MAGIC, srv.huge_image_bytes)
            elif path == "/hostile/oversize-chunked.jpg":
                block = b"\0" * 65536
                self._chunked(200, jpeg_type, [JPEG_MAGIC] + [block] * (srv.huge_image_bytes // len(block) + 1))
            elif path == "/hostile/gzip-bomb.jpg":
                body = gzip.compress(JPEG_MAGIC + b"\0" * srv.huge_image_bytes, compresslevel=9)
                self._send(200, body, (*jpeg_type, ("Content-Encoding", "gzip")))
            elif path == "/hostile/slow.jpg":
                self._trickle(jpeg_type)
            elif path == "/hostile/stall.jpg":
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.flush()
                srv._stop.wait(srv.stall_seconds)
                self.close_connection = True
            elif path == "/hostile/500":
                self._send(500, b"<html><body>oops</body></html>", html_type)
            else:
                self._send(404, b"<html><body>not found</body></html>", html_type)

        def _trickle(self, headers: Sequence[tuple[str, str]]) -> None:
            self.send_response(200)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Connection", "close")  # no length: the body ends when the connection does
            self.end_headers()
            self.wfile.write(JPEG_MAGIC)
            self.wfile.flush()
            deadline = time.monotonic() + 60
            while not srv._stop.is_set() and time.monotonic() < deadline:
                self.wfile.write(b"\0")
                self.wfile.flush()
                srv._stop.wait(srv.trickle_interval)
            self.close_connection = True

    return Handler


# -- realistic listing pages -------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    return html_lib.escape(text, quote=True)


def aliexpress_page(*, title: str, seller: str, og_image: str, gallery: Sequence[Sequence[tuple[str, int]]],
                    canonical: str = "https://www.aliexpress.com/item/1005006123456789.html",
                    jsonld_images: Sequence[str] = ()) -> str:
    """An AliExpress-like item page: og tags, a JSON-LD Product with offers.seller.name, a srcset gallery
    (each gallery entry: its renditions as (url, width)), a logo, a tracking pixel and an SVG icon."""
    product = {
        "@context": "https://schema.org", "@type": "Product", "name": title,
        "image": list(jsonld_images) or [og_image],
        "offers": {"@type": "Offer", "price": "12.99", "priceCurrency": "USD",
                   "seller": {"@type": "Organization", "name": seller}},
    }
    thumbs = "\n".join(
        f'<div class="slider--item"><img class="magnifier--image" src="{_esc(r[0][0])}" '
        f'srcset="{_esc(", ".join(f"{u} {w}w" for u, w in r))}" sizes="(max-width: 600px) 100vw, 600px" alt=""></div>'
        for r in gallery)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{_esc(title)} - AliExpress 44</title>
<meta property="og:site_name" content="AliExpress">
<meta property="og:type" content="product">
<meta property="og:title" content="{_esc(title)} - AliExpress">
<meta property="og:url" content="{_esc(canonical)}">
<meta property="og:image" content="{_esc(og_image)}">
<meta property="og:image:width" content="800">
<link rel="canonical" href="{_esc(canonical)}">
<link rel="icon" href="/favicon.ico">
<script type="application/ld+json">{json.dumps(product)}</script>
<script type="application/ld+json">{{ "broken": [1, 2,, }}</script>
</head><body>
<header><img src="/static/logo.svg" alt="AliExpress"><img src="/track/pixel.gif" width="1" height="1"></header>
<div class="pdp-info"><h1 data-pl="product-title">{_esc(title)}</h1>
<div class="store-header"><a href="/store/1101">{_esc(seller)}</a></div></div>
<div class="image-view--wrap">{thumbs}</div>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">
</body></html>"""


def amazon_page(*, title: str, images: dict[str, tuple[int, int]], hires: str | None = None,
                canonical: str = "https://www.amazon.com/dp/B0C1234567") -> str:
    """An Amazon-like product page: no og tags, the main image in ``data-a-dynamic-image`` JSON (url → [w, h])
    and ``data-old-hires``; the site name only in the title."""
    dynamic = json.dumps({u: list(wh) for u, wh in images.items()})
    first = next(iter(images))
    return f"""<!doctype html><html><head><title>Amazon.com: {_esc(title)}</title>
<link rel="canonical" href="{_esc(canonical)}"></head><body>
<span id="productTitle" class="a-size-large product-title-word-break">  {_esc(title)}  </span>
<div id="imgTagWrapperId" class="imgTagWrapper">
<img alt="{_esc(title)}" src="{_esc(first)}" data-old-hires="{_esc(hires or '')}"
 data-a-dynamic-image="{_esc(dynamic)}" id="landingImage"></div>
<img src="https://fls-na.amazon.com/1/batch/1/OP/ATVPDKIKX0DER:0000:0:" width="1" height="1">
</body></html>"""


def ebay_page(*, title: str, seller: str, images: Sequence[str], zoom: Sequence[str] = ()) -> str:
    """An eBay-like item page: og:image, a carousel with ``data-zoom-src``, a JSON-LD Product whose seller is a
    plain string inside an AggregateOffer's offers list."""
    product = {"@context": "https://schema.org/", "@graph": [
        {"@type": "BreadcrumbList", "itemListElement": []},
        {"@type": "Product", "name": title,
         "image": [{"@type": "ImageObject", "contentUrl": images[0], "width": {"@type": "QuantitativeValue",
                                                                              "value": 1600}}],
         "offers": {"@type": "AggregateOffer", "offers": [{"@type": "Offer", "seller": seller}]}}]}
    slides = "\n".join(
        f'<div class="ux-image-carousel-item"><img src="{_esc(u)}" '
        f'data-zoom-src="{_esc(zoom[i]) if i < len(zoom) else ""}" loading="lazy"></div>'
        for i, u in enumerate(images))
    return f"""<!DOCTYPE html><html><head><title>{_esc(title)} | eBay</title>
<meta property="og:site_name" content="eBay">
<meta property="og:image" content="{_esc(images[0])}">
<meta name="twitter:image" content="{_esc(images[-1])}">
<script type="application/ld+json">{json.dumps(product)}</script></head><body>
<h1 class="x-item-title__mainTitle"><span>{_esc(title)}</span></h1>
<div class="ux-image-carousel">{slides}</div></body></html>"""


def plain_shop_page(*, title: str, images: Sequence[str], site_name: str | None = None) -> str:
    """An ordinary shop page: a <title>, plain <img> tags, maybe an og:site_name."""
    site = f'<meta property="og:site_name" content="{_esc(site_name)}">' if site_name else ""
    imgs = "".join(f'<img src="{_esc(u)}" alt="">' for u in images)
    return f"<html><head><title>{_esc(title)}</title>{site}</head><body><h1>{_esc(title)}</h1>{imgs}</body></html>"
