"""What a complaint may say about one case, as safe one-line text: the context the caller gives, and the facts
every channel's draft is built from (only from the owner profile, the ledger record and the case).

Values that come from a found page (seller, listing title, URLs) are untrusted: :func:`one_line` escapes every
control character, line break and bidi override in them (``progress.printable``), so none of them can start a
line of a draft or reorder what its reader sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from pipeline.priority import pretty_time
from pipeline.progress import printable

if TYPE_CHECKING:
    from pipeline.ledger import StoredRecord
    from pipeline.models import Owner
    from pipeline.priority import Priority
    from pipeline.sweep.models import Case, ComplaintProfile

#: The longest a listing title (a thief's text) is quoted, in characters.
TITLE_CHARS = 200
#: The longest a seller's name (a thief's text too) is quoted, in characters.
SELLER_CHARS = 100
UNKNOWN = "(not known)"
#: How a marketplace id (sweep.models.Found.marketplace) is written in a complaint.
MARKETPLACE_NAMES = {"aliexpress": "AliExpress", "alibaba": "Alibaba", "amazon": "Amazon", "ebay": "eBay",
                     "etsy": "Etsy", "shopify": "Shopify", "temu": "Temu", "walmart": "Walmart"}

_EBAY_HOST = re.compile(r"(?:[a-z0-9-]+\.)*ebay\.[a-z]{2,3}(?:\.[a-z]{2})?")
_EBAY_ITEM = re.compile(r"/itm/(?:[^/]+/)?(\d{6,19})/?")
_AMAZON_HOST = re.compile(r"(?:[a-z0-9-]+\.)*amazon\.[a-z]{2,3}(?:\.[a-z]{2})?")
_ASIN = re.compile(r"/(?:dp|gp/product|gp/aw/d|exec/obidos/asin)/([A-Z0-9]{10})(?:[/?#]|$)")
_DIGITS = re.compile(r"\d{6,19}")


@dataclass(frozen=True)
class ComplaintContext:
    """Everything a complaint about one case is drawn from (the caller gathers it; nothing here is looked up)."""

    owner: Owner
    profile: ComplaintProfile
    case: Case
    record: StoredRecord  # the export the copy matched (its .record: sku, preset, output_sha256, ...)
    priority: Priority | None  # when the ledger recorded that export and who vouches for the time
    earliest_recorded_at: str | None  # the earliest ledger record of the same source photo (may be earlier)
    attachments: tuple[str, ...]  # files to attach: the evidence report, the priority kit zip, ...
    generated_at: str  # ISO 8601 UTC
    other_urls: tuple[str, ...] = ()  # other infringing URLs of the same seller, listed in the same complaint


def one_line(value: object, limit: int | None = None) -> str:
    """``value`` as one safe line: control characters, line breaks and bidi overrides escaped, ends stripped;
    cut to ``limit`` characters (with "...") if given."""
    text = printable(value).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)].rstrip() + "..."
    return text


def host_of(url: str) -> str:
    """The host name of a URL, lower case ("" if it has none or is not a URL)."""
    try:
        return (urlparse(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


def _path_on(url: str, host: re.Pattern[str]) -> str | None:
    """The URL's path if its host is one ``host`` matches, else None (also for a URL that does not parse)."""
    if not host.fullmatch(host_of(url)):
        return None
    try:
        return urlparse(url.strip()).path
    except ValueError:
        return None


def ebay_item_number(url: str) -> str | None:
    """The item number of an eBay listing URL (``https://www.ebay.<tld>/itm/[title/]<digits>``), else None."""
    path = _path_on(url, _EBAY_HOST)
    if path is None:
        return None
    m = _EBAY_ITEM.search(path)
    return m.group(1) if m is not None and m.end() == len(path) else None


def own_ebay_item(listing: str) -> str | None:
    """An eBay item number from one of the owner's own listings: an eBay URL, or the bare number."""
    text = listing.strip()
    return text if _DIGITS.fullmatch(text) else ebay_item_number(text)


def amazon_asin(url: str) -> str | None:
    """The ASIN of an Amazon product URL (``/dp/<ASIN>``, ``/gp/product/<ASIN>``, ...), else None."""
    path = _path_on(url, _AMAZON_HOST)
    if path is None:
        return None
    m = _ASIN.search(path)
    return m.group(1) if m is not None else None


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


@dataclass(frozen=True)
class Facts:
    """The case's facts as safe text, shared by every channel's draft."""

    rights_owner: str  # the profile's company, else the owner's name
    signer: str  # the profile's signer, else the owner's name
    agent: bool  # the signer acts as an agent authorised by the rights owner
    email: str
    phone: str
    address: tuple[str, ...]  # lines
    copyright_registration: str
    case_id: int
    page_urls: tuple[str, ...]  # the case's page, then the other URLs (raw, for parsing item numbers)
    infringing_urls: tuple[str, ...]  # page URL, image URL, other URLs: escaped, each once
    image_url: str  # escaped, "" if none
    marketplace: str
    seller: str
    listing_title: str
    first_seen: str  # pretty time
    sku: str
    work: str  # "the product photograph of SKU ... (main image 0)"
    export: str  # "our export for preset ..., ledger record ..., SHA-256 ..."
    record_id: str
    output_sha256: str
    recorded: str  # "first recorded in our signed ledger on DATE, vouched for by ... TSA" / "... by our own clock"
    vouched_by: str  # the TSA, "" if none
    earliest: str  # pretty time of the earliest ledger record of the source photo
    matched: str  # "trace verdict: match; probability of a false match: 1.0e-12"
    attachments: tuple[str, ...]
    own_listings: tuple[str, ...]
    generated_at: str
    priority_warning: str  # non-empty when the record is dated after the copy was seen

    @property
    def contact_lines(self) -> tuple[str, ...]:
        """Name, company, address, phone, email: what the profile holds, a blank to fill for what it lacks."""
        lines = [f"Name: {self.signer}"]
        if self.rights_owner != self.signer:
            lines.append(f"{'On behalf of' if self.agent else 'Company'}: {self.rights_owner}")
        lines.append(f"Address: {', '.join(self.address) or blank('postal address')}")
        lines.append(f"Phone: {self.phone or blank('phone')}")
        lines.append(f"Email: {self.email or blank('email')}")
        return tuple(lines)


def blank(name: str) -> str:
    """The placeholder a draft shows for a value the owner must still fill in."""
    return f"[fill in: {name}]"


def _fmp(p: float | None) -> str:
    if p is None:
        return "not computed"
    return f"{p:.1e}" if 0 < p < 0.001 else f"{p:.3g}"


def _marketplace(marketplace: str | None) -> str:
    name = one_line(marketplace or "")
    return MARKETPLACE_NAMES.get(name.lower(), name) or UNKNOWN


def facts_of(ctx: ComplaintContext) -> Facts:
    """The case's facts, every value escaped to one line (the address: each of its lines)."""
    owner, profile, case, rec = ctx.owner, ctx.profile, ctx.case, ctx.record.record
    rights_owner = one_line(profile.company or owner.name)
    signer = one_line(profile.signer or owner.name)
    raw_pages = [u for u in (case.page_url, *ctx.other_urls) if u and u.strip()]
    escaped = [one_line(u) for u in (case.page_url or "", case.image_url or "", *ctx.other_urls)]
    sku = one_line(rec.sku)
    role = f"{one_line(rec.role)} image" + (f" {rec.position}" if rec.role != "main" else "")
    work = f"the product photograph of SKU {sku} ({role}) by {rights_owner}"
    export = (f"our export of it for preset {one_line(rec.preset)} ({rec.width}x{rec.height} {one_line(rec.format)}), "
              f"ledger record {one_line(rec.record_id)}, SHA-256 {one_line(rec.output_sha256)}")
    pr = ctx.priority
    recorded_at = pr.recorded_at if pr is not None and pr.recorded_at else rec.created_at
    vouched = one_line(pr.vouched_by) if pr is not None and pr.vouched_by else ""
    if vouched:
        recorded = (f"first recorded in our signed ledger on {pretty_time(recorded_at)}, vouched for by an RFC 3161 "
                    f"trusted timestamp from {vouched}")
    else:
        recorded = (f"first recorded in our signed ledger on {pretty_time(recorded_at)} (by our own clock: no "
                    "trusted timestamp vouches for that time)")
    warning = ""
    if pr is not None and pr.days_before is not None and pr.days_before < 0 and pr.seen_at:
        warning = (f"this export was recorded {-pr.days_before} day(s) AFTER the copy was seen "
                   f"({pretty_time(pr.seen_at)}): it does not show priority over that copy")
    earliest = pretty_time(ctx.earliest_recorded_at or recorded_at)
    matched = f"trace verdict: {one_line(case.verdict)}; probability of a false match: {_fmp(case.false_match_probability)}"
    address = tuple(one_line(line) for line in profile.address.splitlines() if line.strip())
    return Facts(
        rights_owner=rights_owner, signer=signer, agent=profile.acting_as == "agent", email=one_line(profile.email),
        phone=one_line(profile.phone), address=address,
        copyright_registration=one_line(profile.copyright_registration), case_id=case.case_id,
        page_urls=tuple(raw_pages), infringing_urls=_unique(escaped), image_url=one_line(case.image_url or ""),
        marketplace=_marketplace(case.marketplace), seller=one_line(case.seller or "", SELLER_CHARS) or UNKNOWN,
        listing_title=one_line(case.listing_title or "", TITLE_CHARS) or UNKNOWN,
        first_seen=pretty_time(case.first_seen), sku=sku, work=work, export=export,
        record_id=one_line(rec.record_id), output_sha256=one_line(rec.output_sha256), recorded=recorded,
        vouched_by=vouched, earliest=earliest, matched=matched,
        attachments=_unique([one_line(a) for a in ctx.attachments]),
        own_listings=_unique([one_line(v) for v in profile.own_listings]), generated_at=one_line(ctx.generated_at),
        priority_warning=warning)
