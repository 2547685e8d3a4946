"""Turn a sweep's inputs (image files, folders, saved pages, URL lists, URLs) into suspects and failures.

:func:`gather` takes what the owner found where they found it:

- an image file: a :class:`~pipeline.sweep.models.Suspect` as it is (no URL: the owner gave none);
- a folder: every image file in it, recursively and sorted (``catalog.is_image_file``), and every ``.html`` /
  ``.htm`` file in it as a saved page; the files of a saved page's ``<name>_files/`` folder belong to the page
  and are not suspects by themselves, and a sweep's own output folders (an earlier one, or this one's when
  ``--out`` is inside the folder) are skipped, with a note;
- a saved page (``.html`` / ``.htm``, a browser's "Save page as… complete": the HTML plus ``<name>_files/``):
  read offline (:func:`pipeline.sweep.page.read_listing` against the file's own ``file:`` URL); a candidate
  that resolves to a file inside the page's folder is a suspect with ``page_url`` = the page's canonical URL,
  ``image_url`` = the web URL it was saved from when the page still names one with the same file name (e.g.
  its ``og:image``), else None, and ``fetched_at`` = the HTML file's modification time. A ``file:`` candidate
  outside the page's folder is never read. Web candidates not saved with the page are fetched when there is a
  fetcher, else each is a failure "not saved with the page (offline)";
- a URL list: ``.txt`` (one http(s) URL a line; blank lines and ``#`` comments ignored) or ``.csv`` (a header
  with ``url`` and optional ``seller``, ``marketplace``, ``title`` columns, whose values override the flags);
- an http(s) URL: fetched; an image answer is a suspect, an HTML answer a listing page whose image candidates
  (largest renditions first, :mod:`pipeline.sweep.page`) are downloaded, at most ``max_images_per_page``.

Downloads are written atomically into ``download_dir`` named by content (``<sha256[:16]><ext>``, the extension
of the real format), each image URL fetched once per gather, the same bytes once per page. ``Found.image_url``
is the URL as the page lists it (or as given): that is what a takedown names, and the place a CDN redirects to
is often a short-lived signed address. ``Found.page_url`` of a fetched page is the URL as given (where the
owner saw the copy; the next sweep of the same list meets the same URL), of a saved page its canonical URL.
The marketplace is the explicit one, else :func:`~pipeline.sweep.marketplace.marketplace_of` of the page URL
(then the final URL after redirects, the canonical URL, the image URL), else the page's ``og:site_name``.

A page or image that fails is data (:class:`~pipeline.sweep.models.FetchFailure`), never an exception; bad
local input (a path that does not exist, a ``.csv`` without a ``url`` column, a URL list line that is not an
http(s) URL, a file that is none of the above) is a :class:`~pipeline.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from pipeline import files
from pipeline.catalog import is_image_file
from pipeline.errors import ConfigError
from pipeline.sweep.addresses import is_local_address
from pipeline.sweep.fetch import (
    MIB,
    FetchedImage,
    Fetcher,
    FetchError,
    image_kind,
    size_text,
)
from pipeline.sweep.marketplace import marketplace_of
from pipeline.sweep.models import FetchFailure, Found, Gathered, Suspect
from pipeline.sweep.page import Listing, read_listing
from pipeline.timefmt import iso_utc

PAGE_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
URL_LIST_SUFFIXES = frozenset({".txt", ".csv"})
#: Limits for saved pages read without a fetcher (a fetcher's own limits apply when there is one).
DEFAULT_MAX_PAGE_BYTES = 5 * MIB
DEFAULT_MAX_IMAGE_BYTES = 25 * MIB
OFFLINE = "not saved with the page (offline)"
NO_IMAGES = "no product images found on the page"

#: ``progress(line)``: one line per page or URL being read ("page https://...", "image https://...").
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """One URL to sweep, with what the owner said about it (flags or URL-list columns)."""

    url: str
    seller: str | None = None
    marketplace: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class _Downloaded:
    path: Path
    sha256: str
    fetched_at: str
    final_url: str


def _is_web_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _looks_like_url(text: str) -> bool:
    """Whether an input is meant as a URL (has a scheme of two letters or more), not a path."""
    scheme, sep, _ = text.partition(":")
    plain = scheme.replace("+", "").replace("-", "").replace(".", "")
    return bool(sep) and len(scheme) > 1 and plain.isalnum() and scheme[0].isalpha() \
        and not Path(text).exists()


def _clean_field(value: str | None) -> str | None:
    if value is None:
        return None
    out = " ".join(value.split())
    return out or None


def read_url_list(path: Path, *, seller: str | None = None, marketplace: str | None = None) -> list[Target]:
    """The URLs of a ``.txt`` list (one a line) or ``.csv`` table (``url``, optional ``seller``,
    ``marketplace``, ``title``); ConfigError naming the file and line for anything that is no http(s) URL."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    out: list[Target] = []
    if path.suffix.lower() == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            raise ConfigError(f"{path}: empty; expected a header with a url column") from None
        columns = [h.strip().lower() for h in header]
        if "url" not in columns:
            raise ConfigError(f"{path}: no url column in the header ({', '.join(header) or 'empty'}); "
                              "expected "
                              "url[,seller,marketplace,title]")

        def col(row: list[str], name: str) -> str | None:
            if name not in columns:
                return None
            i = columns.index(name)
            return _clean_field(row[i]) if i < len(row) else None

        for row in reader:
            line = reader.line_num  # where the row ends (a quoted cell may span lines)
            if not any(cell.strip() for cell in row):
                continue
            url = (col(row, "url") or "").strip()
            if url.startswith("#") and len([c for c in row if c.strip()]) == 1:
                continue
            if not _is_web_url(url):
                raise ConfigError(f"{path}, line {line}: not an http(s) URL: {url[:200]!r}")
            out.append(Target(url=url, seller=col(row, "seller") or seller,
                              marketplace=(col(row, "marketplace") or marketplace or "").lower() or None,
                              title=col(row, "title")))
        return out
    for line, raw in enumerate(text.splitlines(), start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if not _is_web_url(entry):
            raise ConfigError(f"{path}, line {line}: not an http(s) URL: {entry[:200]!r}")
        out.append(Target(url=entry, seller=seller, marketplace=marketplace))
    return out


def _saved_page_assets(folder: Path) -> set[Path]:
    """The ``<name>_files`` folders of the saved pages in ``folder``'s tree: their images are the page's."""
    out: set[Path] = set()
    for page in folder.rglob("*"):
        if page.suffix.lower() in PAGE_SUFFIXES and page.is_file():
            assets = page.with_name(page.stem + "_files")
            if assets.is_dir():
                out.add(assets)
    return out


def _sweep_folders(folder: Path, downloads: Path) -> set[Path]:
    """The folders in ``folder``'s tree that a sweep wrote (``report.json`` beside ``downloads/`` or
    ``complaints/``), and this sweep's own ``downloads`` and ``kits`` folders when they are inside the tree:
    a sweep's downloads and kits are not new suspects."""
    out: set[Path] = set()
    for report in folder.rglob("report.json"):
        d = report.parent
        if (d / "downloads").is_dir() or (d / "complaints").is_dir():
            out.add(d)
    base = folder.resolve()
    for own in (downloads, downloads.with_name("kits")):
        if own.resolve().is_relative_to(base):
            out.add(folder / own.resolve().relative_to(base))
    return out


class _Gatherer:
    def __init__(self, *, download_dir: Path, fetcher: Fetcher | None, seller: str | None,
                 marketplace: str | None, max_images_per_page: int, progress: ProgressFn | None) -> None:
        self.download_dir = download_dir
        self.fetcher = fetcher
        self.seller = seller
        self.marketplace = marketplace.lower() if marketplace else None
        self.max_images = max_images_per_page
        self.progress = progress
        self.suspects: list[Suspect] = []
        self._seen_suspects: set[Suspect] = set()
        self.failures: list[FetchFailure] = []
        self._images: dict[str, _Downloaded | str] = {}  # image URL -> download, or the error message

    # -- results ---------------------------------------------------------------------------------------------

    def _suspect(self, path: Path, found: Found) -> None:
        s = Suspect(path=path, found=found)
        if s not in self._seen_suspects:
            self._seen_suspects.add(s)
            self.suspects.append(s)

    def _fail(self, url: str, error: str, page_url: str | None = None) -> None:
        self.failures.append(FetchFailure(url=url, error=error, page_url=page_url))

    def _note(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def _marketplace(self, explicit: str | None, site_name: str | None, *urls: str | None) -> str | None:
        if explicit:
            return explicit.lower()
        for url in urls:
            found = marketplace_of(url) if url else None
            if found is not None:
                return found
        return marketplace_of(None, site_name)

    # -- inputs ----------------------------------------------------------------------------------------------

    def plan(self, item: str) -> list[Target | _LocalImage | _SavedFile]:
        """What one input names, checked (ConfigError) without fetching or reading any page."""
        text = item.strip() if _is_web_url(item.strip()) else item
        if _is_web_url(text):
            return [Target(url=text, seller=self.seller, marketplace=self.marketplace)]
        if _looks_like_url(text):
            raise ConfigError(f"{text[:200]}: only http and https URLs can be swept")
        path = Path(text)
        if path.is_dir():
            out: list[Target | _LocalImage | _SavedFile] = []
            assets = _saved_page_assets(path)
            sweeps = _sweep_folders(path, self.download_dir)
            for folder in sorted(sweeps):
                if folder.exists():
                    self._note(f"skipping {folder}: a sweep's own folder (what it downloaded was traced then)")
            for p in sorted(path.rglob("*")):
                if any(part.startswith(".") for part in p.relative_to(path).parts):
                    continue
                if any(p.is_relative_to(a) for a in assets) or any(p.is_relative_to(s) for s in sweeps):
                    continue
                if p.suffix.lower() in PAGE_SUFFIXES and p.is_file():
                    out.append(_SavedFile(p))
                elif is_image_file(p):
                    out.append(_LocalImage(p))
            return out
        if not path.exists():
            raise ConfigError(f"{path}: no such file or folder")
        if not path.is_file():
            raise ConfigError(f"{path}: not a regular file or folder")
        suffix = path.suffix.lower()
        if suffix in PAGE_SUFFIXES:
            return [_SavedFile(path)]
        if suffix in URL_LIST_SUFFIXES:
            return list(read_url_list(path, seller=self.seller, marketplace=self.marketplace))
        if is_image_file(path):
            return [_LocalImage(path)]
        raise ConfigError(f"{path}: not an image file, a saved page (.html), a URL list (.txt) or a URL "
                          "table (.csv)")

    def run(self, item: Target | _LocalImage | _SavedFile) -> None:
        if isinstance(item, Target):
            self.add_url(item)
        elif isinstance(item, _SavedFile):
            self.add_saved_page(item.path)
        else:
            self._suspect(item.path, Found(seller=self.seller, marketplace=self.marketplace))

    def add_url(self, target: Target) -> None:
        if self.fetcher is None:
            self._fail(target.url, "not fetched (offline: no fetcher)")
            return
        self._note(f"fetching {target.url}")
        try:
            answer = self.fetcher.get(target.url, want="any")
        except FetchError as exc:
            self._fail(target.url, exc.message)
            return
        if isinstance(answer, FetchedImage):
            got = self._store(answer)
            self._images.setdefault(target.url, got)
            found = Found(page_url=None, image_url=target.url,
                          marketplace=self._marketplace(target.marketplace, None, target.url,
                                                        answer.final_url),
                          seller=target.seller, listing_title=target.title, fetched_at=got.fetched_at)
            self._suspect(got.path, found)
            return
        listing = read_listing(answer.data, answer.final_url, encoding=answer.charset)
        market = self._marketplace(target.marketplace, listing.site_name, target.url, answer.final_url,
                                   listing.canonical_url)
        # a page served from the owner's own machine or network may name images there too; one on the web may not
        local = bool(is_local_address(target.url, resolve=True) or is_local_address(answer.final_url, resolve=True))
        self._page_images(listing, page_url=target.url, marketplace=market, page_local=local,
                          seller=target.seller or listing.seller, title=target.title or listing.title,
                          saved=None)

    def add_saved_page(self, path: Path) -> None:
        page_cap = self.fetcher.max_page_bytes if self.fetcher is not None else DEFAULT_MAX_PAGE_BYTES
        self._note(f"reading saved page {path}")
        try:
            data = files.read_limited(path, page_cap)
            mtime = path.stat().st_mtime
        except files.FileTooLarge:
            self._fail(str(path), f"larger than {size_text(page_cap)}")
            return
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        listing = read_listing(data, path.resolve().as_uri())
        market = self._marketplace(self.marketplace, listing.site_name, listing.canonical_url)
        saved = _SavedPage(folder=path.resolve().parent,
                           fetched_at=iso_utc(datetime.fromtimestamp(mtime, UTC)), label=str(path))
        # a saved page cannot vouch for local addresses unless its canonical URL is one (not looked up: no traffic)
        local = bool(listing.canonical_url and is_local_address(listing.canonical_url, resolve=False))
        self._page_images(listing, page_url=listing.canonical_url, marketplace=market, page_local=local,
                          seller=self.seller or listing.seller, title=listing.title, saved=saved)

    # -- one page's images -----------------------------------------------------------------------------------

    def _page_images(self, listing: Listing, *, page_url: str | None, marketplace: str | None, page_local: bool,
                     seller: str | None, title: str | None, saved: _SavedPage | None) -> None:
        label = page_url or (saved.label if saved else listing.base_url or "")
        if not listing.images:
            self._fail(label, NO_IMAGES)
            return
        local_names: dict[str, str] = {}  # file name -> the web candidate of that name (its origin)
        if saved is not None:
            for cand in listing.images:
                if _is_web_url(cand.url):
                    local_names.setdefault(_file_name(cand.url), cand.url)
        covered: set[str] = set()  # web URLs whose image came with the saved page
        shas: set[str] = set()
        done = attempts = 0
        plan = list(listing.images)
        if saved is not None:  # the saved files first: they are what the page showed, and cost nothing
            plan.sort(key=lambda c: 0 if urlsplit(c.url).scheme.lower() == "file" else 1)
        for cand in plan:
            if done >= self.max_images or attempts >= 2 * self.max_images:
                break
            scheme = urlsplit(cand.url).scheme.lower()
            if scheme == "file":
                assert saved is not None  # page.read_listing keeps file: URLs only for a file: base
                origin = local_names.get(_file_name(cand.url))
                got = self._local_image(cand.url, saved, page_url=label)
                if got is None:
                    attempts += 1
                    continue
                path, sha = got
                if origin is not None:
                    covered.add(origin)
                if sha in shas:
                    continue
                shas.add(sha)
                attempts += 1
                done += 1
                self._suspect(path, Found(page_url=page_url, image_url=origin, marketplace=marketplace,
                                          seller=seller, listing_title=title, fetched_at=saved.fetched_at))
                continue
            if cand.url in covered:
                continue
            attempts += 1
            if self.fetcher is None:
                self._fail(cand.url, OFFLINE, page_url=label)
                continue
            referer = page_url if page_url and _is_web_url(page_url) else None
            result = self._download(cand.url, referer=referer or listing.base_url or label,
                                    page_local=page_local, send_referer=referer is not None)
            if isinstance(result, str):
                self._fail(cand.url, result, page_url=label)
                continue
            if result.sha256 in shas:
                continue
            shas.add(result.sha256)
            done += 1
            market = marketplace or self._marketplace(None, None, cand.url)
            self._suspect(result.path, Found(page_url=page_url, image_url=cand.url, marketplace=market,
                                             seller=seller, listing_title=title,
                                             fetched_at=result.fetched_at))

    def _local_image(self, url: str, saved: _SavedPage, *, page_url: str) -> tuple[Path, str] | None:
        """A saved page's local image (path, sha256), or None after recording why it cannot be one."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            self._fail(url, "a file on another machine: not read", page_url=page_url)
            return None
        try:
            local = Path(url2pathname(unquote(parts.path))).resolve()
        except (OSError, ValueError):
            self._fail(url, "not a usable file path", page_url=page_url)
            return None
        if not local.is_relative_to(saved.folder):
            self._fail(url, "outside the saved page's folder: not read", page_url=page_url)
            return None
        if not local.is_file():
            self._fail(url, "not saved with the page (the file is missing)", page_url=page_url)
            return None
        cap = self.fetcher.max_image_bytes if self.fetcher is not None else DEFAULT_MAX_IMAGE_BYTES
        try:
            data = files.read_limited(local, cap)
        except files.FileTooLarge:
            self._fail(url, f"larger than {size_text(cap)}", page_url=page_url)
            return None
        except OSError as exc:
            self._fail(url, f"cannot be read ({exc.strerror or exc})", page_url=page_url)
            return None
        if image_kind(data[:512]) is None:
            self._fail(url, "not an image: the saved file is not JPEG, PNG, WebP, GIF, AVIF, HEIC, BMP or "
                       "TIFF", page_url=page_url)
            return None
        return local, hashlib.sha256(data).hexdigest()

    # -- downloads -------------------------------------------------------------------------------------------

    def _download(self, url: str, *, referer: str, page_local: bool, send_referer: bool) -> _Downloaded | str:
        """The image at ``url`` that the page ``referer`` named, saved into the download folder (once per
        gather), or the error message. ``page_local``: the page came from a local address (see Fetcher.get)."""
        if url in self._images:
            return self._images[url]
        assert self.fetcher is not None
        self._note(f"image {url}")
        try:
            got: _Downloaded | str = self._store(self.fetcher.get_image(
                url, referer=referer if send_referer else "", page_local=page_local))
        except FetchError as exc:
            got = exc.message
        self._images[url] = got
        return got

    def _store(self, image: FetchedImage) -> _Downloaded:
        sha = hashlib.sha256(image.data).hexdigest()
        path = self.download_dir / f"{sha[:16]}{image.extension}"
        if files.file_sha256(path) != sha:
            files.write_atomic(path, image.data)
        return _Downloaded(path=path, sha256=sha, fetched_at=image.fetched_at, final_url=image.final_url)


@dataclass(frozen=True)
class _LocalImage:
    path: Path


@dataclass(frozen=True)
class _SavedFile:
    path: Path


@dataclass(frozen=True)
class _SavedPage:
    folder: Path  # the HTML file's folder, resolved: local candidates must be inside it
    fetched_at: str  # the HTML file's mtime
    label: str  # the path as given (failures of a page without a canonical URL name it)


def _file_name(url: str) -> str:
    """The unquoted last path segment of a URL (how a browser names a page's saved asset)."""
    try:
        return unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    except ValueError:
        return ""


def iter_inputs(inputs: Sequence[str | Path]) -> Iterator[str]:
    """The inputs as text, without empty ones."""
    for item in inputs:
        text = os.fspath(item)
        if text.strip():
            yield text


def gather(inputs: Sequence[str | Path], *, download_dir: Path, fetcher: Fetcher | None,
           seller: str | None = None, marketplace: str | None = None, max_images_per_page: int = 12,
           progress: ProgressFn | None = None) -> Gathered:
    """Every suspect the inputs name (see the module docstring), in input order, and every URL that failed.

    ``fetcher`` None: offline (saved pages and local files only; a URL input is a failure). ``seller`` and
    ``marketplace``: what the owner says about all inputs (a URL table's columns override them per row).
    Raises ConfigError for bad local input before anything is fetched or read."""
    if max_images_per_page < 1:
        raise ConfigError(f"max_images_per_page must be at least 1, got {max_images_per_page}")
    g = _Gatherer(download_dir=Path(download_dir), fetcher=fetcher, seller=_clean_field(seller),
                  marketplace=_clean_field(marketplace), max_images_per_page=max_images_per_page,
                  progress=progress)
    planned = [entry for item in iter_inputs(inputs) for entry in g.plan(item)]  # every ConfigError up front
    for entry in planned:
        g.run(entry)
    return Gathered(suspects=tuple(g.suspects), failures=tuple(g.failures))
