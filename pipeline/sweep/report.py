"""The sweep report a seller reads to decide what to file: one self-contained HTML page per sweep, and its JSON twin.

The page opens with the counts and what to do next, then the copies to act on (new, relisted, still up), each
grouped by seller and listing with the suspect beside our export, the verdict, the matched record, the links
and the complaint drafts; then the suspects that matched nothing and what could not be read or fetched.
Everything a page gave (seller names, titles, URLs) is untrusted: every value is HTML-escaped, only http(s)
URLs become links, and the page carries a Content-Security-Policy that allows no script and no fetch.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import files
from pipeline.priority import parse_time, pretty_time
from pipeline.sweep.marketplace import display_name
from pipeline.sweep.models import Case, CaseEvent, DraftFile, FetchFailure, SweepItem, SweepResult
from pipeline.trace.report import escape, side_by_side, suspect_json

VIEW_SIDE = 320  # px, long side of the images on the sweep page (the evidence report has the larger ones)

#: The sections of the page, in order: (id, heading, the change of the items it lists).
SECTIONS = (("new", "New copies", "new"), ("relisted", "Relisted", "relisted"), ("still-up", "Still up", "still-up"),
            ("no-match", "No match", "no-match"), ("errors", "Could not read / could not fetch", "error"))

_WEB_URL = re.compile(r"https?://[^\s/?#\\]+", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def marketplace_name(key: str | None) -> str:
    """The display name of a marketplace key ("aliexpress" -> "AliExpress"); "unknown marketplace" for None."""
    return display_name(key) or "unknown marketplace"


def web_url(url: str | None) -> str | None:
    """``url`` if it is safe to make a link of: an absolute http(s) URL with a host and no whitespace or control
    characters (a ``javascript:`` or ``data:`` URL, or one a browser would rewrite, is None: shown as text)."""
    if not url or _CONTROL.search(url) or not _WEB_URL.match(url):
        return None
    return url


def _link(url: str | None, text: str | None = None, cls: str = "url") -> str:
    """An escaped link to an http(s) URL, else the escaped text alone (``—`` for nothing)."""
    if not url:
        return '<span class="none">—</span>'
    shown = escape(text if text is not None else url)
    safe = web_url(url)
    if safe is None:
        return f'<span class="{cls} unlinked" title="not a web link: shown as text">{shown}</span>'
    return f'<a class="{cls}" href="{escape(safe)}" rel="noopener noreferrer nofollow">{shown}</a>'


def _file_href(path: Path, base: Path) -> str:
    """A link target for a local file: relative to ``base`` (the report's folder) when it is inside it, else an
    absolute file: URI."""
    p = Path(path).expanduser()
    p = p if p.is_absolute() else Path.cwd() / p
    b = Path(base).expanduser()
    b = b if b.is_absolute() else Path.cwd() / b
    for pp, bb in ((p, b), (p.resolve(), b.resolve())):
        try:
            rel = pp.relative_to(bb)
        except ValueError:
            continue
        return urllib.parse.quote(rel.as_posix() or ".")
    return p.resolve().as_uri()


def _file_link(path: Path | None, base: Path, text: str | None = None) -> str:
    if path is None:
        return '<span class="none">—</span>'
    href = _file_href(path, base)
    return f'<a class="url" href="{escape(href)}">{escape(text if text is not None else href)}</a>'


def _days(first: str | None, last: str | None) -> str:
    """How long from ``first`` to ``last`` (ISO times) in words: "3 days", "5 hours", "less than an hour"."""
    a, b = parse_time(first), parse_time(last)
    if a is None or b is None:
        return "unknown"
    secs = max(0.0, (b - a).total_seconds())
    if secs >= 86400:
        n = int(secs // 86400)
        return f"{n} day{'' if n == 1 else 's'}"
    if secs >= 3600:
        n = int(secs // 3600)
        return f"{n} hour{'' if n == 1 else 's'}"
    return "less than an hour"


def _time(text: str | None) -> str:
    return pretty_time(text) if text else "unknown"


@dataclass(frozen=True)
class Counts:
    """The header's numbers."""

    suspects: int
    new: int
    relisted: int
    still_up: int
    no_match: int
    errors: int
    fetch_failures: int
    drafts: int
    warnings: int

    @classmethod
    def of(cls, result: SweepResult) -> Counts:
        return cls(suspects=len(result.items), new=result.count("new"), relisted=result.count("relisted"),
                   still_up=result.count("still-up"), no_match=result.count("no-match"),
                   errors=result.count("error"), fetch_failures=len(result.failures),
                   drafts=sum(len(i.drafts) for i in result.items if i.change in ("new", "relisted")),
                   warnings=len(result.warnings))

    def as_json(self) -> dict[str, int]:
        return {"suspects": self.suspects, "new": self.new, "relisted": self.relisted, "still_up": self.still_up,
                "no_match": self.no_match, "errors": self.errors, "fetch_failures": self.fetch_failures,
                "drafts": self.drafts, "warnings": self.warnings}


@dataclass
class Listing:
    """The items of one seller found on one listing page (``page_url`` None: an image URL or a local file)."""

    page_url: str | None
    title: str | None
    items: list[SweepItem] = field(default_factory=list)


@dataclass
class SellerGroup:
    """One seller on one marketplace and their listings."""

    seller: str | None
    marketplace: str | None
    listings: list[Listing] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        return sum(len(li.items) for li in self.listings)


def _where(item: SweepItem) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """(seller, marketplace, page_url, image_url, title): where this sweep found it, else what the case says."""
    f, c = item.suspect.found, item.case
    return (f.seller or (c.seller if c else None), f.marketplace or (c.marketplace if c else None),
            f.page_url or (c.page_url if c else None), f.image_url or (c.image_url if c else None),
            f.listing_title or (c.listing_title if c else None))


def group_items(items: Iterable[SweepItem]) -> list[SellerGroup]:
    """Items by seller (and marketplace), then by listing page: sellers and pages sorted by name (unknown last),
    the items of a page by case number."""
    groups: dict[tuple[str, str], SellerGroup] = {}
    for item in items:
        seller, market, page, _image, title = _where(item)
        key = ((market or "").lower(), seller or "")
        g = groups.setdefault(key, SellerGroup(seller=seller, marketplace=market))
        listing = next((li for li in g.listings if li.page_url == page), None)
        if listing is None:
            listing = Listing(page_url=page, title=title)
            g.listings.append(listing)
        elif listing.title is None:
            listing.title = title
        listing.items.append(item)

    def seller_key(g: SellerGroup) -> tuple[bool, str, bool, str]:
        return (g.seller is None, (g.seller or "").casefold(), g.marketplace is None,
                marketplace_name(g.marketplace).casefold())

    out = sorted(groups.values(), key=seller_key)
    for g in out:
        g.listings.sort(key=lambda li: (li.page_url is None, li.page_url or ""))
        for li in g.listings:
            li.items.sort(key=lambda i: (i.case is None, i.case.case_id if i.case else 0, str(i.suspect.path)))
    return out


# ---------------------------------------------------------------------------------------------------- the page

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0;background:#f4f5f7;color:#1d2330;
line-height:1.4;overflow-wrap:break-word;word-break:normal;hyphens:manual}
header{background:#1d2b45;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:3px 0;color:#c9d3e6;font-size:13px}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0 8px;padding:0;list-style:none}
.counts li{background:#2c3d60;border-radius:6px;padding:6px 12px;font-size:13px;color:#dfe6f3}
.counts li b{font-size:18px;color:#fff;margin-right:4px}
.counts li.new b{color:#ffb4a8}.counts li.relisted{background:#b71c1c}.counts li.relisted b{color:#fff}
.next{background:#fff3cd;color:#4d3b00;border-radius:6px;padding:8px 12px;margin-top:10px;font-size:14px}
header .next{color:#4d3b00}
code{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;font-size:.92em;background:#eef0f4;
padding:1px 4px;border-radius:3px;color:#1d2330}
main{padding:18px 28px;max-width:1400px}
section.part{margin:0 0 26px}
section.part>h2{font-size:20px;margin:0 0 4px;padding-bottom:4px;border-bottom:2px solid #ccd3e0}
section.part>p.lead{margin:4px 0 12px;color:#445;font-size:14px}
section.relisted>h2{color:#b71c1c;border-bottom-color:#b71c1c}
section.relisted .item{border:3px solid #c62828}
.seller{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);margin:0 0 16px;padding:12px 18px}
.seller>h3{font-size:17px;margin:2px 0 8px}.seller>h3 .market{font-weight:400;color:#556}
.listing{border-top:1px solid #e3e6ee;padding:8px 0 4px}
.listing>h4{font-size:14px;margin:2px 0 8px;font-weight:600;color:#33405c}
.item{display:grid;grid-template-columns:minmax(0,680px) minmax(0,1fr);gap:14px;padding:10px;margin:0 0 10px;
border:1px solid #e3e6ee;border-radius:6px;background:#fcfcfd}
.item>.facts{min-width:0}
.item h5{font-size:15px;margin:0 0 6px}
.figs{display:flex;flex-wrap:wrap;gap:10px;min-width:0}
.figs figure{margin:0;text-align:center;flex:1 1 200px;max-width:330px;min-width:0}
.figs img{display:block;margin:0 auto;max-width:100%;height:auto;max-height:330px;border:1px solid #ccd;
background:#fff}
figcaption{font-size:12px;color:#556;margin-top:4px}
.nofig{color:#667;font-style:italic;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px;width:100%;table-layout:fixed}
th,td{border:1px solid #dde;padding:4px 8px;text-align:left;vertical-align:top}
.facts th{background:#f0f2f7;font-weight:600;width:30%}
.compact th{background:#f0f2f7;font-weight:600}
.url{overflow-wrap:anywhere;word-break:normal}
.unlinked{color:#7a3b00;background:#fff1e0;padding:0 3px;border-radius:3px}
.none{color:#889}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:700;font-size:12px;margin-right:6px;
vertical-align:middle;color:#fff;background:#667}
.badge.found{background:#ef6c00}.badge.reported{background:#1565c0}.badge.removed{background:#2e7d32}
.badge.countered{background:#6a1b9a}.badge.dismissed{background:#616161}.badge.relisted{background:#b71c1c}
.badge.match{background:#c62828}
.alert{background:#ffebee;border-left:5px solid #c62828;padding:6px 10px;margin:0 0 8px;font-size:14px}
.missing{color:#8a4b00;font-size:12px}
ul.drafts{margin:2px 0;padding-left:18px}
.empty{color:#667;font-style:italic}
footer{padding:10px 28px;color:#667;font-size:12px}
@media (max-width:900px){.item{grid-template-columns:minmax(0,1fr)}}
@media print{
body{background:#fff;font-size:11pt}header{background:#fff;color:#000;border-bottom:2px solid #000;padding:0 0 8px}
header p,header h1{color:#000}.counts li{background:#fff;border:1px solid #666;color:#000}.counts li b{color:#000}
.counts li.relisted{border:2px solid #b71c1c}.counts li.relisted b,.counts li.new b{color:#000}
main{padding:8px 0}.seller{box-shadow:none;border:1px solid #999;padding:6px 10px}
.item{break-inside:avoid;grid-template-columns:minmax(0,1fr);background:#fff}
.figs{flex-wrap:nowrap}.figs figure{flex:1 1 0;max-width:50%}.figs img{max-height:260px}
section.part>h2{break-after:avoid}a{color:#000}
.badge,.alert,.counts li.relisted{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""

#: No script runs, nothing is fetched: only inline styles and data: images (a defence behind the escaping).
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    """Table rows of (label, already-escaped HTML)."""
    return "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def _badge(status: str | None) -> str:
    if not status:
        return '<span class="badge">no case</span>'
    return f'<span class="badge {escape(status)}">{escape(status)}</span>'


def _last_removed(case: Case) -> CaseEvent | None:
    removed = [e for e in case.events if e.status == "removed"]
    return removed[-1] if removed else None


def _verdict(item: SweepItem) -> str:
    v = item.result.verdict
    text = '<span class="badge match">MATCH</span>' if v.verdict == "match" else escape(v.verdict)
    text += f" confidence {v.confidence:.6f}"
    if v.false_match_probability is not None:
        text += f"; probability of a false match &le; {v.false_match_probability:.2e}"
    return text


def _record(item: SweepItem) -> str:
    m = item.result.match_json()
    if m is None:
        rid = item.case.record_id if item.case else None
        return f"record {escape(rid)}" if rid else '<span class="none">—</span>'
    return (f"SKU <b>{escape(m.get('sku') or '?')}</b> &middot; preset {escape(m.get('preset') or '?')} &middot; "
            f"record <code>{escape(m.get('record_id'))}</code>")


def _drafts(drafts: Sequence[DraftFile], base: Path) -> str:
    if not drafts:
        return '<span class="none">none written</span>'
    lines = []
    for d in drafts:
        miss = (f' <span class="missing">to fill in: {escape(", ".join(d.missing))}</span>' if d.missing else "")
        lines.append(f"<li><b>{escape(d.channel)}</b>: {_file_link(d.text_path, base, 'text')} &middot; "
                     f"{_file_link(d.json_path, base, 'JSON')}{miss}</li>")
    return '<ul class="drafts">' + "".join(lines) + "</ul>"


def _item(item: SweepItem, result: SweepResult, base: Path) -> str:
    seller, market, page, image, title = _where(item)
    c = item.case
    head = (f"Case {c.case_id} " if c else "No case ") + _badge(c.status if c else None)
    if item.change == "relisted":
        head += '<span class="badge relisted">RELISTED</span>'
    alert = ""
    if item.change == "relisted":
        ev = _last_removed(c) if c else None
        when = f" on {escape(_time(ev.at))}" if ev else ""
        alert = (f'<p class="alert"><b>Relisted:</b> this copy was marked removed{when} and is up again. '
                 "File again: the earlier takedown did not hold.</p>")
    facts: list[tuple[str, str]] = [
        ("verdict", _verdict(item)),
        ("matched record", _record(item)),
        ("seller", f"{escape(seller) if seller else '<span class=none>unknown</span>'} on "
                   f"{escape(marketplace_name(market))}"),
    ]
    if title:
        facts.append(("listing title", escape(title)))
    facts += [("page", _link(page)), ("image", _link(image)), ("fetched", escape(_time(item.suspect.found.fetched_at)))]
    if c is not None:
        facts.append(("first seen / last seen", f"{escape(_time(c.first_seen))} / {escape(_time(c.last_seen))}"))
        if item.change == "still-up":
            facts.append(("up for", f"at least {escape(_days(c.first_seen, c.last_seen))}; the case is "
                                    f"<b>{escape(c.status)}</b>"))
    facts.append(("complaint drafts", _drafts(item.drafts, base)))
    more = []
    if result.evidence_html is not None:
        more.append(_file_link(result.evidence_html, base, "evidence report"))
    if item.kit is not None:
        more.append(_file_link(item.kit, base, "priority kit folder"))
    more.append(_file_link(item.suspect.path, base, "the saved copy"))
    facts.append(("files", " &middot; ".join(more)))
    figs = side_by_side(item.result, VIEW_SIDE) or '<p class="nofig">no image to show</p>'
    return (f'<article class="item change-{escape(item.change)}" data-case="{escape(c.case_id if c else "")}">'
            f'<div class="pics">{figs}</div><div class="facts"><h5>{head}</h5>{alert}'
            f"<table>{_rows(facts)}</table></div></article>")


def _groups(items: Sequence[SweepItem], result: SweepResult, base: Path) -> str:
    out = []
    for g in group_items(items):
        who = escape(g.seller) if g.seller else "Unknown seller"
        out.append(f'<div class="seller"><h3>Seller: {who} <span class="market">on '
                   f"{escape(marketplace_name(g.marketplace))} &middot; {g.n_items} "
                   f"cop{'y' if g.n_items == 1 else 'ies'}</span></h3>")
        for li in g.listings:
            label = (f"Listing: {escape(li.title)}" if li.title else "Listing") + (
                f" &mdash; {_link(li.page_url)}" if li.page_url else " &mdash; no listing page (image URL or file)")
            out.append(f'<div class="listing"><h4>{label}</h4>')
            out.extend(_item(i, result, base) for i in li.items)
            out.append("</div>")
        out.append("</div>")
    return "".join(out)


_LEADS = {
    "new": "Copies of our exports never seen before. File the drafts, then mark each case reported.",
    "relisted": "Copies of cases marked removed, found up again: the takedown did not hold. File again.",
    "still-up": "Known copies seen again. If a case is reported and still up after the marketplace's deadline, "
                "follow up or escalate.",
    "no-match": "Suspects that match none of our exports (nothing to file).",
    "errors": "Suspects that could not be read, and URLs that gave no image. Check them by hand or sweep again.",
}


def _section(sid: str, heading: str, items: Sequence[SweepItem], result: SweepResult, base: Path) -> str:
    cls = "part relisted" if sid == "relisted" else "part"
    head = f'<section class="{cls}" id="{sid}"><h2>{escape(heading)} ({len(items)})</h2>'
    lead = f'<p class="lead">{escape(_LEADS[sid])}</p>'
    if not items:
        return head + '<p class="empty">None in this sweep.</p></section>'
    return head + lead + _groups(items, result, base) + "</section>"


def _where_cells(item: SweepItem, base: Path) -> tuple[str, str, str, str]:
    """The table cells of a suspect: the saved file, seller (marketplace), page and image links."""
    seller, market, page, image, _title = _where(item)
    return (f"<td>{_file_link(item.suspect.path, base, item.suspect.path.name)}</td>",
            f"<td>{escape(seller) if seller else '—'} ({escape(marketplace_name(market))})</td>",
            f"<td>{_link(page)}</td>", f"<td>{_link(image)}</td>")


def _no_match(items: Sequence[SweepItem], base: Path) -> str:
    head = f'<section class="part" id="no-match"><h2>No match ({len(items)})</h2>'
    if not items:
        return head + '<p class="empty">None in this sweep.</p></section>'
    rows = []
    for i in items:
        file_cell, seller_cell, page_cell, image_cell = _where_cells(i, base)
        rows.append(f"<tr>{file_cell}{seller_cell}{page_cell}{image_cell}"
                    f"<td>{escape(_time(i.suspect.found.fetched_at))}</td></tr>")
    return (head + f'<p class="lead">{escape(_LEADS["no-match"])}</p><table class="compact"><tr><th>suspect</th>'
            "<th>seller</th><th>page</th><th>image</th><th>fetched</th></tr>" + "".join(rows) + "</table></section>")


def _errors(items: Sequence[SweepItem], failures: Sequence[FetchFailure], base: Path) -> str:
    n = len(items) + len(failures)
    head = f'<section class="part" id="errors"><h2>Could not read / could not fetch ({n})</h2>'
    if not n:
        return head + '<p class="empty">None in this sweep.</p></section>'
    out = [head, f'<p class="lead">{escape(_LEADS["errors"])}</p>']
    if failures:
        out.append(f'<h3 id="fetch-failures">Could not fetch ({len(failures)})</h3><table class="compact">'
                   "<tr><th>URL</th><th>error</th><th>from listing page</th></tr>")
        out.extend(f"<tr><td>{_link(f.url)}</td><td>{escape(f.error)}</td><td>{_link(f.page_url)}</td></tr>"
                   for f in failures)
        out.append("</table>")
    if items:
        out.append(f'<h3 id="unreadable">Could not read ({len(items)})</h3><table class="compact">'
                   "<tr><th>suspect</th><th>error</th><th>seller</th><th>page</th><th>image</th></tr>")
        for i in items:
            file_cell, seller_cell, page_cell, image_cell = _where_cells(i, base)
            out.append(f"<tr>{file_cell}<td>{escape(i.result.error or 'unreadable')}</td>"
                       f"{seller_cell}{page_cell}{image_cell}</tr>")
        out.append("</table>")
    out.append("</section>")
    return "".join(out)


def _warnings(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    return (f'<section class="part" id="warnings"><h2>Warnings ({len(warnings)})</h2><ul class="warnings">'
            + "".join(f'<li class="prose">{escape(w)}</li>' for w in warnings) + "</ul></section>")


def _next_step(result: SweepResult, counts: Counts) -> str:
    to_file = sorted({i.case.case_id for i in result.items if i.change in ("new", "relisted") and i.case})
    if not to_file:
        return "Nothing new to file in this sweep."
    cases = ", ".join(str(n) for n in to_file)
    return (f"<b>What to do next:</b> file the complaint drafts for the {counts.new} new and {counts.relisted} "
            f"relisted cop{'y' if counts.new + counts.relisted == 1 else 'ies'} (case{'' if len(to_file) == 1 else 's'}"
            f" {cases}); after filing each, run <code>catalogmark cases mark N reported</code> (N: the case "
            "number).")


def _header(result: SweepResult, counts: Counts) -> str:
    chips = [("new", counts.new, "new copies"), ("relisted", counts.relisted, "relisted"),
             ("still-up", counts.still_up, "still up"), ("no-match", counts.no_match, "no match"),
             ("errors", counts.errors, "errors"), ("fetch-failures", counts.fetch_failures, "URLs not fetched")]
    lis = "".join(f'<li class="{c}" data-count="{c}"><b>{n}</b>{escape(label)}</li>' for c, n, label in chips)
    return (f"<header><h1>catalogmark sweep {escape(result.sweep_id)}</h1>"
            f"<p>Started {escape(_time(result.started_at))} &middot; finished {escape(_time(result.finished_at))}"
            f" &middot; <b>{counts.suspects}</b> suspect{'' if counts.suspects == 1 else 's'} traced</p>"
            f'<ul class="counts">{lis}</ul><p class="next">{_next_step(result, counts)}</p>'
            + (f"<p>{counts.warnings} warning{'' if counts.warnings == 1 else 's'} at the end of this page.</p>"
               if counts.warnings else "") + "</header>")


def _base(result: SweepResult) -> Path:
    return result.report_html.parent if result.report_html is not None else result.out_dir


def render_sweep_html(result: SweepResult, base: Path | None = None) -> str:
    """The sweep's page. Local files (drafts, kits, the evidence report) are linked relative to ``base`` (default:
    the folder of ``result.report_html``, else ``result.out_dir``) when they are inside it."""
    base = _base(result) if base is None else base
    counts = Counts.of(result)
    by: dict[str, list[SweepItem]] = {change: [i for i in result.items if i.change == change]
                                      for _sid, _h, change in SECTIONS}
    body = [_section(sid, heading, by[change], result, base) for sid, heading, change in SECTIONS[:3]]
    body.append(_no_match(by["no-match"], base))
    body.append(_errors(by["error"], result.failures, base))
    body.append(_warnings(result.warnings))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>catalogmark sweep {escape(result.sweep_id)}</title><style>{_CSS}</style></head><body>"
            + _header(result, counts) + "<main>" + "".join(body) + "</main>"
            "<footer>catalogmark sweep report. Images are embedded; this file is self-contained. Text and links "
            "taken from marketplace pages are shown as found; only http(s) addresses are links.</footer>"
            "</body></html>")


# ---------------------------------------------------------------------------------------------------- the JSON twin

def _item_json(item: SweepItem) -> dict[str, Any]:
    seller, market, page, image, title = _where(item)
    return {"change": item.change, "suspect": str(item.suspect.path), "sha256": item.sha256, "phash": item.phash,
            "found": item.suspect.found.as_json(),
            "seller": seller, "marketplace": market, "marketplace_name": marketplace_name(market),
            "page_url": page, "image_url": image, "listing_title": title,
            "case_id": item.case.case_id if item.case else None,
            "case": item.case.as_json() if item.case else None,
            "verdict": item.result.verdict.verdict,
            "false_match_probability": item.result.verdict.false_match_probability,
            "match": item.result.match_json(), "error": item.result.error,
            "drafts": [d.as_json() for d in item.drafts], "kit": None if item.kit is None else str(item.kit),
            "trace": suspect_json(item.result)}


def sweep_json(result: SweepResult) -> dict[str, Any]:
    """The same facts as the page, as plain JSON: the counts, every item (in sweep order), the failures."""
    counts = Counts.of(result)
    return {"sweep_id": result.sweep_id, "started_at": result.started_at, "finished_at": result.finished_at,
            "out_dir": str(result.out_dir),
            "report_html": None if result.report_html is None else str(result.report_html),
            "evidence_html": None if result.evidence_html is None else str(result.evidence_html),
            "counts": counts.as_json(),
            "sections": [sid for sid, _h, _c in SECTIONS],
            "items": [_item_json(i) for i in result.items],
            "failures": [f.as_json() for f in result.failures],
            "warnings": list(result.warnings)}


def write_sweep_report(result: SweepResult, html_path: Path, json_path: Path | None = None) -> None:
    """Write the page (links relative to its folder) and, if ``json_path`` is given, its JSON twin; atomically."""
    html_path = Path(html_path)
    files.write_atomic(html_path, render_sweep_html(result, base=html_path.parent).encode("utf-8"))
    if json_path is not None:
        files.write_atomic(Path(json_path),
                           json.dumps(sweep_json(result), indent=2, default=str).encode("utf-8"))
