"""The sweep's HTTP client: fetch one listing page or one image under hard limits, or say in one line why not.

The only network code of catalogmark besides ``pipeline/timestamp.py``. One :class:`Fetcher` wraps one
``httpx.Client`` (a context manager). Every answer is streamed and cut off at its cap (``max_image_bytes``,
``max_page_bytes``: checked on ``Content-Length`` up front and on the decoded bytes while streaming, so
neither a huge answer nor a compression bomb sits in memory), within a wall-clock ``deadline`` per URL
(redirects included: a server that trickles bytes is cut off), and redirects are followed by hand (at most
``max_redirects``, each hop checked: only http and https, never ``file:`` and friends). An image answer must
be an image twice over: its ``Content-Type`` (``image/*``, or the generic ``application/octet-stream`` / none)
and its first bytes (JPEG, PNG, WebP, GIF, AVIF, HEIC, BMP or TIFF signature). A page answer must be HTML
(``text/html`` or ``application/xhtml+xml``). A URL a listing page named, and any redirect, may not lead from the
web to a local or private network address (``addresses.is_local_address``; the owner's own URLs are exempt).
That rule is checked twice: on the URL before asking (a clear message, nothing sent), and again when
connecting, on the very address connected to (``addresses.PublicOnlyTransport``), so a host name whose DNS
answer changes between the two lookups (DNS rebinding) cannot lead the request into the owner's network. Any problem raises
:class:`FetchError` with the URL and a one-line message; ``sources.py`` turns it into a ``models.FetchFailure``.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx

from pipeline import __version__
from pipeline.sweep.addresses import LocalAddressError, PublicOnlyTransport, is_local_address, peer_is_global
from pipeline.timefmt import now_iso

MIB = 1 << 20
USER_AGENT = f"catalogmark/{__version__} (product photo copy check; +https://pypi.org/project/catalogmark/)"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: Content types an image may come with besides ``image/*``: generic binary, or none at all.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/binary"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Image kind → the file name extension catalogmark gives it.
EXTENSIONS: dict[str, str] = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif", "avif": ".avif",
                              "heic": ".heic", "bmp": ".bmp", "tiff": ".tif"}
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
                          b"msf1"})
_SNIFF_BYTES = 512  # what the signature checks look at


class FetchError(Exception):
    """A URL that gave nothing usable: ``url`` (as asked) and ``message``, one line ("HTTP 404 Not Found")."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message


@dataclass(frozen=True)
class FetchedImage:
    """An image answer: its bytes (whose signature says ``kind``) and where they finally came from."""

    url: str  # as asked
    final_url: str  # after redirects
    content_type: str  # the media type the server sent, lowercase, without parameters ("" if none)
    data: bytes
    kind: str  # "jpeg", "png", "webp", "gif", "avif", "heic", "bmp", "tiff": from the bytes, not the header
    fetched_at: str  # ISO 8601 UTC (timefmt.ISO_UTC)

    @property
    def extension(self) -> str:
        """The file name extension of ``kind`` (".jpg", ".png", ...)."""
        return EXTENSIONS[self.kind]


@dataclass(frozen=True)
class FetchedPage:
    """An HTML answer: its bytes (undecoded; the page reader decodes) and where they finally came from."""

    url: str  # as asked
    final_url: str  # after redirects: the base relative links resolve against
    content_type: str  # "text/html" or "application/xhtml+xml"
    data: bytes
    charset: str | None  # from the Content-Type header, if it named one
    fetched_at: str  # ISO 8601 UTC


def size_text(n: int) -> str:
    """A byte count as a person reads it: "25 MiB", "1.5 MiB", "300 KiB", "512 bytes"."""
    if n >= MIB:
        return f"{n // MIB} MiB" if n % MIB == 0 else f"{n / MIB:.1f} MiB"
    if n >= 1024:
        return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def _seconds_text(s: float) -> str:
    return f"{s:g} s"


def image_kind(head: bytes) -> str | None:
    """The image format the first bytes of a file announce (see :data:`EXTENSIONS`), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"BM") and len(head) >= 14 and int.from_bytes(head[10:14], "little") < 1 << 16:
        return "bmp"
    if head[4:8] == b"ftyp":
        box = int.from_bytes(head[:4], "big")
        brands = [head[8:12]] + [head[i:i + 4] for i in range(16, min(box, len(head), 64), 4)]
        if any(b in _AVIF_BRANDS for b in brands):
            return "avif"
        if any(b in _HEIC_BRANDS for b in brands):
            return "heic"
    return None


def looks_like_html(head: bytes) -> bool:
    """Whether the first bytes of an answer are an HTML (or XML) document rather than binary data."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    if text.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<!--", b"<?xml", b"<script", b"<meta",
                        b"<title", b"<div", b"<p>", b"<p ", b"<a ", b"<table", b"<link", b"<style")):
        return True
    return b"<html" in text[:_SNIFF_BYTES] or b"<body" in text[:_SNIFF_BYTES]


def _media_type(value: str | None) -> tuple[str, str | None]:
    """(media type lowercase without parameters, charset or None) of a Content-Type header."""
    if not value:
        return "", None
    main, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip().strip("\"'"):
            charset = val.strip().strip("\"'")
    return main.strip().lower(), charset


def _check_scheme(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise FetchError(url, f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(url, "only http and https URLs can be fetched")
    if not parts.hostname:
        raise FetchError(url, "the URL names no host")
    try:
        parts.hostname.rstrip(".").encode("idna")  # an empty or over-long label: no lookup is even tried
    except UnicodeError as exc:
        raise FetchError(url, f"not a valid URL (host {parts.hostname[:80]!r}: {_one_line(exc)})") from None


def _local_refusal(url: str) -> str:
    return (f"{_short(url)} is on a local or private network address: not fetched (a listing page named it; "
            "a page may not make catalogmark reach your own network)")


def _connect_message(exc: httpx.HTTPError) -> str:
    """One line for a failed connection: "connection refused", "cannot resolve host ...", ..."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low or "getaddrinfo" in low \
            or "name resolution" in low:
        return "cannot resolve the host name"
    return "cannot connect: " + " ".join(text.split())[:200]


Want = Literal["image", "page", "any"]


class Fetcher:
    """``with Fetcher() as f: f.get_image(url)`` / ``f.get_page(url)`` / ``f.get(url)``: one HTTP client,
    limits per URL (see the module docstring). No state is kept between calls but the connection pool.

    ``timeout``: connect and per-read timeout (seconds); ``deadline``: wall-clock limit per URL, redirects and
    the whole body included; ``trust_env``: honour HTTP(S)_PROXY / NO_PROXY and SSL_CERT_FILE from the
    environment (tests pass False so nothing can leave 127.0.0.1 through a proxy).

    Two clients: one for the owner's own URLs (and what a local page names), one that connects only to public
    addresses (``addresses.PublicOnlyTransport``) for URLs a public page named and for redirects out of a public
    host; each keeps its own connections, so a connection made for the owner is never reused for a page's URL."""

    def __init__(self, *, timeout: float = 15.0, deadline: float = 60.0, max_image_bytes: int = 25 * MIB,
                 max_page_bytes: int = 5 * MIB, max_redirects: int = 5, user_agent: str = USER_AGENT,
                 trust_env: bool = True) -> None:
        if timeout <= 0 or deadline <= 0:
            raise ValueError("timeout and deadline must be positive")
        self.timeout = timeout
        self.deadline = deadline
        self.max_image_bytes = max_image_bytes
        self.max_page_bytes = max_page_bytes
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        headers = {"User-Agent": user_agent, "Accept-Language": "en;q=0.9, *;q=0.5"}
        tls = httpx.create_ssl_context(trust_env=trust_env)  # one for both clients (~35 ms to build: CA bundle)
        self._client = httpx.Client(follow_redirects=False, timeout=httpx.Timeout(timeout), trust_env=trust_env,
                                    verify=tls, headers=headers)
        self._public_client = httpx.Client(follow_redirects=False, timeout=httpx.Timeout(timeout),
                                           trust_env=trust_env, verify=tls, headers=headers,
                                           transport=PublicOnlyTransport(tls))

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        self._public_client.close()

    # -- public ----------------------------------------------------------------------------------------------

    def get_image(self, url: str, *, referer: str | None = None, page_local: bool = False) -> FetchedImage:
        """The image at ``url``; FetchError if the answer is no image (header or bytes), too large, ...
        (``referer``, ``page_local``: see :meth:`get`)."""
        result = self.get(url, want="image", referer=referer, page_local=page_local)
        assert isinstance(result, FetchedImage)
        return result

    def get_page(self, url: str) -> FetchedPage:
        """The HTML page at ``url``; FetchError if the answer is not HTML, too large, slow, ..."""
        result = self.get(url, want="page")
        assert isinstance(result, FetchedPage)
        return result

    def get(self, url: str, *, want: Want = "any", referer: str | None = None,
            page_local: bool = False) -> FetchedImage | FetchedPage:
        """What ``url`` answers: an image or an HTML page (``want="any"``: whichever it is; a URL the owner
        gives may be either), or only one of them.

        Local addresses: a URL a listing page named (``referer`` given) is refused when its host is on a local or
        private network (``is_local_address``) unless the page itself was (``page_local``: the owner's own test
        shop, say); a redirect is refused when it leads from a public host to a local one. A URL the owner gives
        (no ``referer``) is fetched wherever it points: the owner chose it."""
        _check_scheme(url)
        if referer is not None and not page_local and is_local_address(url, resolve=True):
            raise FetchError(url, _local_refusal(url))
        origin_local: bool | None = page_local if referer is not None else None  # looked up at a first redirect
        start = time.monotonic()
        current = url
        headers = {"Accept": self._accept(want)}
        if referer:
            headers["Referer"] = referer
        for hop in range(self.max_redirects + 1):
            left = self.deadline - (time.monotonic() - start)
            if left <= 0:
                raise FetchError(url, self._deadline_message())
            per_try = min(self.timeout, left)
            # Public addresses only from a public origin: a public page that named the URL (origin_local is False
            # from the start), or a host that redirected (looked up at its redirect)
            client = self._public_client if origin_local is False else self._client
            try:
                with client.stream("GET", current, headers=headers, timeout=httpx.Timeout(per_try)) as resp:
                    if resp.status_code in _REDIRECTS:
                        location = resp.headers.get("location")
                        if not location:
                            raise FetchError(url, f"HTTP {resp.status_code} redirect without a Location")
                        target = urljoin(str(resp.url), location.strip())
                        try:
                            _check_scheme(target)
                        except FetchError as exc:
                            raise FetchError(url, f"redirected to {_short(target)}: {exc.message}") from None
                        if origin_local is None:  # a public peer is a public origin, whatever a new lookup says
                            origin_local = not peer_is_global(resp) and bool(is_local_address(url, resolve=True))
                        if not origin_local and is_local_address(target, resolve=True):
                            raise FetchError(url, f"redirected to {_local_refusal(target)}".replace(
                                "(a listing page named it; ", "(")) from None
                        if hop == self.max_redirects:
                            break
                        current = target
                        continue
                    if resp.status_code >= 400:
                        reason = resp.reason_phrase or ""
                        raise FetchError(url, f"HTTP {resp.status_code} {reason}".rstrip())
                    if resp.status_code != 200 and resp.status_code != 203:
                        raise FetchError(url, f"HTTP {resp.status_code} {resp.reason_phrase}".rstrip()
                                         + " (expected 200 OK)")
                    return self._read(url, resp, want, start)
            except LocalAddressError as exc:  # the name answered differently when connecting (DNS rebinding)
                raise FetchError(url, f"{_local_refusal(current)} ({exc.host} answered {exc.address} when "
                                      "connecting)") from None
            except httpx.TimeoutException:
                if per_try < self.timeout:  # the time left of the deadline ran out, not the timeout
                    raise FetchError(url, self._deadline_message()) from None
                raise FetchError(url, f"timed out after {_seconds_text(per_try)}") from None
            except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
                raise FetchError(url, _connect_message(exc)) from None
            except httpx.TooManyRedirects:  # pragma: no cover - redirects are followed by hand
                break
            except httpx.DecodingError as exc:
                raise FetchError(url, f"the answer cannot be decoded ({_one_line(exc)})") from None
            except httpx.HTTPError as exc:
                raise FetchError(url, f"{type(exc).__name__}: {_one_line(exc)}") from None
            except (httpx.InvalidURL, ValueError) as exc:  # a host name IDNA cannot encode, ...
                raise FetchError(url, f"not a valid URL ({_one_line(exc)})") from None
        raise FetchError(url, f"too many redirects (more than {self.max_redirects})")

    # -- internals -------------------------------------------------------------------------------------------

    @staticmethod
    def _accept(want: Want) -> str:
        if want == "image":
            return "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5"
        if want == "page":
            return "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
        return "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.5"

    def _deadline_message(self) -> str:
        return f"timed out after {_seconds_text(self.deadline)} (the whole answer took too long)"

    def _read(self, url: str, resp: httpx.Response, want: Want, start: float) -> FetchedImage | FetchedPage:
        ctype, charset = _media_type(resp.headers.get("content-type"))
        is_html_type = ctype in HTML_TYPES
        is_image_type = ctype.startswith("image/") and ctype != "image/svg+xml"
        if ctype == "image/svg+xml" and want != "page":
            raise FetchError(url, "not an image: the server sent image/svg+xml (a drawing, not a photo)")
        if want == "image" and not (is_image_type or ctype in _GENERIC_TYPES):
            raise FetchError(url, f"not an image: the server sent {ctype}")
        if want == "page" and not (is_html_type or ctype == ""):
            what = "an image" if is_image_type else ctype
            raise FetchError(url, f"not an HTML page: the server sent {what}")
        if want == "any" and not (is_html_type or is_image_type or ctype in _GENERIC_TYPES):
            raise FetchError(url, f"neither an image nor an HTML page: the server sent {ctype}")
        # the cap: an image may be as large as an image may be; a page (or an unknown answer that may be one)
        # as large as a page, unless its type says image
        as_image = want == "image" or (want == "any" and not is_html_type)
        cap = self.max_image_bytes if as_image else self.max_page_bytes
        if want == "any" and not is_html_type and not is_image_type:
            cap = max(self.max_image_bytes, self.max_page_bytes)
        length = resp.headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > cap:
            raise FetchError(url, f"larger than {size_text(cap)} ({size_text(int(length))} announced)")
        chunks: list[bytes] = []
        got = 0
        sniffed = False
        for chunk in resp.iter_bytes():
            got += len(chunk)
            if got > cap:
                raise FetchError(url, f"larger than {size_text(cap)}")
            chunks.append(chunk)
            if time.monotonic() - start > self.deadline:
                raise FetchError(url, self._deadline_message())
            if not sniffed and got >= _SNIFF_BYTES:
                sniffed = True
                head = b"".join(chunks)[:_SNIFF_BYTES]
                self._check_bytes(url, head, ctype, want, is_html_type, done=False)
        data = b"".join(chunks)
        head = data[:_SNIFF_BYTES]
        kind = self._check_bytes(url, head, ctype, want, is_html_type, done=True)
        final_url = str(resp.url)
        if kind is not None:
            if len(data) > self.max_image_bytes:
                raise FetchError(url, f"larger than {size_text(self.max_image_bytes)}")
            return FetchedImage(url=url, final_url=final_url, content_type=ctype, data=data, kind=kind,
                                fetched_at=now_iso())
        if len(data) > self.max_page_bytes:
            raise FetchError(url, f"larger than {size_text(self.max_page_bytes)}")
        return FetchedPage(url=url, final_url=final_url, content_type=ctype or "text/html", data=data,
                           charset=charset, fetched_at=now_iso())

    @staticmethod
    def _check_bytes(url: str, head: bytes, ctype: str, want: Want, is_html_type: bool, *,
                     done: bool) -> str | None:
        """The image kind of ``head`` (None: it is a page), or FetchError if the bytes are not what is wanted.
        ``done=False``: only a verdict the first 512 bytes settle (so a wrong answer is not read on)."""
        kind = image_kind(head)
        said = ctype or "no content type"
        if want == "image" or (want == "any" and not is_html_type and ctype != ""):
            if kind is not None:
                return kind
            if want == "any" and ctype in _GENERIC_TYPES and looks_like_html(head):
                return None  # octet-stream that is a page after all
            if looks_like_html(head):
                raise FetchError(url, f"not an image: the bytes are HTML although the server says {said}")
            if not head:
                raise FetchError(url, "not an image: the answer is empty")
            raise FetchError(url, "not an image: the bytes are not JPEG, PNG, WebP, GIF, AVIF, HEIC, BMP or "
                             f"TIFF although the server says {said}")
        if want == "page":
            if kind is not None:
                raise FetchError(url, f"not an HTML page: the bytes are a {kind.upper()} image")
            return None
        # want == "any" with an HTML type, or no type at all: an image by its bytes, else a page
        if kind is not None and not is_html_type:
            return kind
        if not is_html_type and done and not looks_like_html(head):
            raise FetchError(url, "neither an image nor an HTML page: the server sent no content type and "
                             "the bytes are neither")
        return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."
