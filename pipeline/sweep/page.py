"""Read a listing page: its canonical URL, product title, site name, seller and product image candidates.

Pure: HTML in (bytes or text), a :class:`Listing` out; parsed with BeautifulSoup's ``html.parser`` (never with
regular expressions) and never raising on any input. The image candidates come in priority order, each URL
once (resolved against the page, without its fragment): ``og:image`` (and ``og:image:secure_url``),
``twitter:image``, ``<link rel=image_src>``, the JSON-LD ``Product`` images (a string, a list,
``ImageObject``s with ``url`` / ``contentUrl``; ``@graph`` and nested objects; broken JSON-LD is skipped),
then the ``<img>`` elements in document order: the largest rendition each offers (``srcset`` by its ``w`` or
``x`` descriptors, ``<picture><source srcset>``, Amazon's ``data-a-dynamic-image`` / ``data-old-hires``, the
zoom and lazy-loading attributes, then ``src``). Left out: ``data:`` and other non-web URLs (``file:`` is kept
only for a page read from disk, whose base is a ``file:`` URL), tracking pixels (a width or height of at most
2), ``.svg`` and ``.ico`` files.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup, Comment, MarkupResemblesLocatorWarning, Tag

MAX_CANDIDATES = 40
_MAX_TEXT = 500  # titles, seller and site names are cut to this many characters
_JSONLD_DEPTH = 12
_PRODUCT_TYPES = frozenset({"Product", "ProductGroup", "IndividualProduct", "ProductModel", "Car", "Vehicle"})
_SKIP_SUFFIXES = (".svg", ".svgz", ".ico")
#: <img> attributes that hold a larger rendition than ``src`` (zoom views, lazy loading), best first.
_IMG_URL_ATTRS = ("data-old-hires", "data-zoom-image", "data-zoom-src", "data-large-image", "data-large",
                  "data-full", "data-original", "data-hires", "data-src", "data-lazy-src", "data-lazy",
                  "src")
_IMG_SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset")


@dataclass(frozen=True)
class ImageCandidate:
    """One image a listing page shows: its absolute URL, where the page names it, its width if known."""

    url: str
    source: str  # "og:image", "twitter:image", "link:image_src", "json-ld", "img", "picture"
    width: int | None = None  # pixels, from the page (srcset w descriptor, og:image:width, width attribute)


@dataclass(frozen=True)
class Listing:
    """What a listing page says about itself."""

    base_url: str | None  # the URL the page was read from (a saved page: its file: URL)
    canonical_url: str | None  # <link rel=canonical>, og:url, "saved from url", base_url: the first web URL
    title: str | None  # JSON-LD Product name, else og:title, else <title>
    site_name: str | None  # og:site_name
    seller: str | None  # JSON-LD Product offers.seller (name)
    images: tuple[ImageCandidate, ...] = ()
    saved_from: str | None = None  # the "<!-- saved from url=(NNNN)https://... -->" mark of a saved page


# -- text helpers --------------------------------------------------------------------------------------------

def _clean(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    out = " ".join(text.split())
    return out[:_MAX_TEXT] or None


def _attr(tag: Tag, name: str) -> str | None:
    value = tag.get(name)
    if isinstance(value, list):
        value = " ".join(value)
    return value if isinstance(value, str) else None


def _dimension(value: object) -> int | None:
    """A pixel size from an attribute or JSON value: 800, "800", "800px", {"value": 800}; None if not one."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) and 0 <= value < 1e6 else None
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("px").strip()
        if text.isdigit() and len(text) < 7:
            return int(text)
    return None


# -- srcset --------------------------------------------------------------------------------------------------

def parse_srcset(srcset: str) -> list[tuple[str, float | None, float | None]]:
    """The candidates of a ``srcset`` as (url, width descriptor, density descriptor), after the HTML
    standard's algorithm (URLs may contain commas; descriptors may hold parentheses). Never raises."""
    out: list[tuple[str, float | None, float | None]] = []
    s = srcset
    n = len(s)
    i = 0
    while i < n:
        while i < n and (s[i].isspace() or s[i] == ","):
            i += 1
        if i >= n:
            break
        start = i
        while i < n and not s[i].isspace():
            i += 1
        url = s[start:i]
        descriptors: list[str] = []
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            current = ""
            depth = 0
            while i < n:
                ch = s[i]
                if ch == "(":
                    depth += 1
                elif ch == ")" and depth:
                    depth -= 1
                if depth == 0 and ch == ",":
                    i += 1
                    break
                if depth == 0 and ch.isspace():
                    if current:
                        descriptors.append(current)
                        current = ""
                else:
                    current += ch
                i += 1
            if current:
                descriptors.append(current)
        if not url:
            continue
        width: float | None = None
        density: float | None = None
        for d in descriptors:
            unit, number = d[-1:].lower(), d[:-1]
            try:
                value = float(number)
            except ValueError:
                continue
            if not math.isfinite(value) or value <= 0:
                continue
            if unit == "w" and number.isdigit():
                width = value
            elif unit == "x":
                density = value
        out.append((url, width, density))
    return out


def largest_in_srcset(srcset: str) -> tuple[str, int | None] | None:
    """The largest rendition of a ``srcset``: by ``w`` descriptor if any has one, else by ``x`` (none = 1x);
    (url, width or None), or None for an empty srcset."""
    items = parse_srcset(srcset)
    if not items:
        return None
    with_width = [it for it in items if it[1] is not None]
    if with_width:
        url, width, _ = max(with_width, key=lambda it: it[1] or 0.0)
        return url, int(width) if width is not None else None
    url, _, _ = max(items, key=lambda it: it[2] if it[2] is not None else 1.0)
    return url, None


# -- JSON-LD -------------------------------------------------------------------------------------------------

def _jsonld_blocks(soup: BeautifulSoup) -> Iterator[Any]:
    for script in soup.find_all("script"):
        if not isinstance(script, Tag):
            continue
        kind = (_attr(script, "type") or "").split(";")[0].strip().lower()
        if kind != "application/ld+json":
            continue
        text = script.string if script.string is not None else script.get_text()
        text = text.strip()
        for prefix in ("<!--", "//<![CDATA[", "<![CDATA["):
            text = text.removeprefix(prefix).strip()
        for suffix in ("-->", "//]]>", "]]>"):
            text = text.removesuffix(suffix).strip()
        try:
            yield json.loads(text, strict=False)
        except (ValueError, RecursionError):
            continue


def _walk(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every JSON object in a JSON-LD document, outermost first (``@graph``, lists, nested values)."""
    if depth > _JSONLD_DEPTH:
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, depth + 1)
    elif isinstance(node, dict):
        yield node
        for value in node.values():
            if isinstance(value, list | dict):
                yield from _walk(value, depth + 1)


def _types(obj: dict[str, Any]) -> set[str]:
    t = obj.get("@type")
    names = t if isinstance(t, list) else [t]
    return {n.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for n in names if isinstance(n, str)}


def _is_product(obj: dict[str, Any]) -> bool:
    return bool(_types(obj) & _PRODUCT_TYPES)


def _jsonld_images(value: Any, depth: int = 0) -> Iterator[tuple[str, int | None]]:
    """(url, width) of a JSON-LD ``image`` value: a string, an ImageObject, or a list of them."""
    if depth > 4:
        return
    if isinstance(value, str):
        yield value, None
    elif isinstance(value, list):
        for item in value:
            yield from _jsonld_images(item, depth + 1)
    elif isinstance(value, dict):
        for key in ("contentUrl", "url", "@id"):
            url = value.get(key)
            if isinstance(url, str) and url:
                yield url, _dimension(value.get("width"))
                break
            if isinstance(url, list):
                yield from _jsonld_images(url, depth + 1)
                break


def _seller_of(offers: Any, depth: int = 0) -> str | None:
    if depth > 4:
        return None
    if isinstance(offers, list):
        for item in offers:
            found = _seller_of(item, depth + 1)
            if found:
                return found
        return None
    if not isinstance(offers, dict):
        return None
    seller = offers.get("seller")
    if isinstance(seller, list) and seller:
        seller = seller[0]
    if isinstance(seller, dict):
        name = _clean(seller.get("name")) or _clean(seller.get("legalName"))
        if name:
            return name
    elif isinstance(seller, str) and _clean(seller):
        return _clean(seller)
    return _seller_of(offers.get("offers"), depth + 1)  # AggregateOffer → its offers


@dataclass(frozen=True)
class _JsonLd:
    title: str | None
    seller: str | None
    images: tuple[tuple[str, int | None], ...]


def _read_jsonld(soup: BeautifulSoup) -> _JsonLd:
    title: str | None = None
    seller: str | None = None
    product_images: list[tuple[str, int | None]] = []
    other_images: list[tuple[str, int | None]] = []
    for block in _jsonld_blocks(soup):
        for obj in _walk(block):
            if _is_product(obj):
                title = title or _clean(obj.get("name"))
                seller = seller or _seller_of(obj.get("offers"))
                product_images.extend(_jsonld_images(obj.get("image")))
                variants = obj.get("hasVariant")
                for variant in variants if isinstance(variants, list) else []:
                    if isinstance(variant, dict):
                        product_images.extend(_jsonld_images(variant.get("image")))
            elif "image" in obj and not (_types(obj) & {"Organization", "Person", "Brand", "WebSite"}):
                other_images.extend(_jsonld_images(obj.get("image")))
    return _JsonLd(title, seller, tuple(product_images or other_images))


# -- the page ------------------------------------------------------------------------------------------------

def _meta(soup: BeautifulSoup, *names: str) -> list[tuple[str, str]]:
    """(name, content) of every <meta property|name=...> among ``names`` (lowercase), in document order."""
    wanted = set(names)
    out: list[tuple[str, str]] = []
    for tag in soup.find_all("meta"):
        if not isinstance(tag, Tag):
            continue
        key = (_attr(tag, "property") or _attr(tag, "name") or _attr(tag, "itemprop") or "").strip().lower()
        content = _attr(tag, "content")
        if key in wanted and content and content.strip():
            out.append((key, content.strip()))
    return out


def _first_meta(soup: BeautifulSoup, name: str) -> str | None:
    found = _meta(soup, name)
    return found[0][1] if found else None


def _links(soup: BeautifulSoup, rel: str) -> list[str]:
    out: list[str] = []
    for tag in soup.find_all("link"):
        if not isinstance(tag, Tag):
            continue
        rels = tag.get("rel")
        rel_list = rels if isinstance(rels, list) else (rels or "").split()
        href = _attr(tag, "href")
        if href and rel in (r.lower() for r in rel_list):
            out.append(href.strip())
    return out


def _saved_from(soup: BeautifulSoup) -> str | None:
    """The URL of a browser's ``<!-- saved from url=(0042)https://... -->`` mark, if there is one."""
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        text = str(comment).strip()
        if not text.lower().startswith("saved from url="):
            continue
        rest = text[len("saved from url="):].strip()
        if rest.startswith("("):
            rest = rest.partition(")")[2]
        url = rest.split()[0] if rest.split() else ""
        if urlsplit(url).scheme.lower() in ("http", "https"):
            return url
    return None


class _Resolver:
    """Absolute, fragment-free candidate URLs of one page, or None for what is no web image."""

    def __init__(self, base_url: str | None, base_href: str | None) -> None:
        self.base = base_url
        scheme = urlsplit(base_url).scheme.lower() if base_url else ""
        self.schemes = {"http", "https"} | ({"file"} if scheme == "file" else set())
        if base_href and scheme in ("http", "https", ""):
            joined = urljoin(base_url or "", base_href.strip())
            if urlsplit(joined).scheme.lower() in ("http", "https"):
                self.base = joined

    def __call__(self, raw: str | None) -> str | None:
        if not raw:
            return None
        text = raw.strip()
        if not text or len(text) > 4096:
            return None
        try:
            absolute = urljoin(self.base, text) if self.base else text
            url, _ = urldefrag(absolute)
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme.lower() not in self.schemes:
            return None
        if parts.scheme.lower() != "file" and not parts.hostname:
            return None
        if unquote(parts.path).lower().endswith(_SKIP_SUFFIXES):
            return None
        return url


def _tiny(tag: Tag) -> bool:
    for name in ("width", "height"):
        size = _dimension(_attr(tag, name))
        if size is not None and size <= 2:
            return True
    return False


def _dynamic_image(value: str | None) -> tuple[str, int | None] | None:
    """The largest entry of Amazon's ``data-a-dynamic-image`` ({"url": [width, height], ...})."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    best: tuple[str, int | None] | None = None
    best_area = -1
    for url, size in data.items():
        if not isinstance(url, str):
            continue
        w = _dimension(size[0]) if isinstance(size, list) and size else None
        h = _dimension(size[1]) if isinstance(size, list) and len(size) > 1 else None
        area = (w or 0) * (h or 0)
        if area > best_area:
            best, best_area = (url, w), area
    return best


def _img_choice(tag: Tag) -> list[tuple[str, int | None]]:
    """The renditions an <img> offers, best first: dynamic-image JSON, largest srcset entry, larger-rendition
    attributes, then src."""
    out: list[tuple[str, int | None]] = []
    dyn = _dynamic_image(_attr(tag, "data-a-dynamic-image"))
    if dyn:
        out.append(dyn)
    for name in _IMG_SRCSET_ATTRS:
        best = largest_in_srcset(_attr(tag, name) or "")
        if best:
            out.append(best)
    width = _dimension(_attr(tag, "width"))
    for name in _IMG_URL_ATTRS:
        value = _attr(tag, name)
        if value:
            out.append((value, width if name == "src" else None))
    return out


def _soup(html: bytes | str, encoding: str | None) -> BeautifulSoup:
    # a page whose whole body is a word or a path makes Beautiful Soup warn that it "looks like a filename": it is
    # a page we fetched, never a file name, and a sweep must not print that warning on a seller's odd page
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        if isinstance(html, bytes) and encoding:
            try:
                return BeautifulSoup(html, "html.parser", from_encoding=encoding)
            except (LookupError, ValueError):
                pass
        return BeautifulSoup(html, "html.parser")


def read_listing(html: bytes | str, base_url: str | None, *, encoding: str | None = None,
                 max_images: int = MAX_CANDIDATES) -> Listing:
    """What a listing page says: see :class:`Listing` and the module docstring. ``base_url``: where the page
    was read from (relative URLs resolve against it; None: only absolute ones count); ``encoding``: the
    charset the server named, if any. Never raises on any input."""
    try:
        soup = _soup(html, encoding)
    except Exception:  # html.parser is lenient, but a parser bug must not stop a sweep
        return Listing(base_url=base_url, canonical_url=_web(base_url), title=None, site_name=None,
                       seller=None)
    base_tag = soup.find("base")
    resolve = _Resolver(base_url, _attr(base_tag, "href") if isinstance(base_tag, Tag) else None)
    page_resolve = _Resolver(base_url, None)

    jsonld = _read_jsonld(soup)
    saved_from = _saved_from(soup)

    canonical = None
    for href in _links(soup, "canonical"):
        canonical = _web(resolve(href))
        if canonical:
            break
    canonical = (canonical or _web(resolve(_first_meta(soup, "og:url"))) or saved_from
                 or _web(page_resolve(base_url)))

    title_tag = soup.find("title")
    title = (jsonld.title or _clean(_first_meta(soup, "og:title"))
             or (_clean(title_tag.get_text()) if isinstance(title_tag, Tag) else None))
    site_name = _clean(_first_meta(soup, "og:site_name"))

    seen: set[str] = set()
    images: list[ImageCandidate] = []

    def add(raw: str | None, source: str, width: int | None = None) -> bool:
        """Add a candidate; True if ``raw`` is a usable image URL (new, or already a candidate)."""
        url = resolve(raw)
        if url is None:
            return False
        if url not in seen and len(images) < max_images:
            seen.add(url)
            images.append(ImageCandidate(url=url, source=source, width=width))
        return True

    og_width = _dimension(_first_meta(soup, "og:image:width"))
    for key, content in _meta(soup, "og:image", "og:image:url", "og:image:secure_url"):
        add(content, "og:image", og_width if key != "og:image:secure_url" else None)
    for _key, content in _meta(soup, "twitter:image", "twitter:image:src"):
        add(content, "twitter:image")
    for href in _links(soup, "image_src"):
        add(href, "link:image_src")
    for url, width in jsonld.images:
        add(url, "json-ld", width)
    for tag in soup.find_all(["img", "source"]):
        if not isinstance(tag, Tag) or _tiny(tag):
            continue
        if tag.name == "source":
            parent = tag.parent
            if not (isinstance(parent, Tag) and parent.name == "picture"):
                continue
            kind = (_attr(tag, "type") or "").lower()
            if (kind and not kind.startswith("image/")) or kind == "image/svg+xml":
                continue
            best = largest_in_srcset(_attr(tag, "srcset") or _attr(tag, "data-srcset") or "")
            if best:
                add(best[0], "picture", best[1])
            continue
        for raw, width in _img_choice(tag):
            if add(raw, "img", width):
                break  # one rendition per <img>: the largest that resolves
        if len(images) >= max_images:
            break

    return Listing(base_url=base_url, canonical_url=canonical, title=title, site_name=site_name,
                   seller=jsonld.seller, images=tuple(images), saved_from=saved_from)


def _web(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL with a host, else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None
