"""One complaint draft per channel for one case: the form's fields in its order, the text to paste, what is still
to fill in, and its plain-text and JSON forms.

A draft states only what the owner profile, the ledger record and the case hold (never an invented fact) and
never signs: the signature is always the person's own act, left as a blank line for them. Every value is one
escaped line (``facts.one_line``); only the draft's own layout starts lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.complaints import channels as ch
from pipeline.complaints.facts import (
    UNKNOWN,
    ComplaintContext,
    Facts,
    amazon_asin,
    blank,
    ebay_item_number,
    facts_of,
    host_of,
    one_line,
    own_ebay_item,
)
from pipeline.priority import pretty_time

#: eBay's limit on messageToSeller and detailedMessage (VeRO API ReportItemDetails), in characters.
EBAY_MESSAGE_CHARS = 1000
#: The VeRO reason code for copyright in listing content (the listing's photographs).
EBAY_REASON_CODE = "3.2"
#: The longest a draft's title is, in characters.
TITLE_CHARS = 160

SIGNATURE_BLANK = "/s/ ______________________________"
SIGNATURE_NOTE = ("yours to give: sign, or type your own full name after /s/ as your electronic signature; "
                  "the draft never signs for you")
RULE = "-" * 78
OWN_EBAY_ITEM = "your earliest eBay item number using the photographs"

#: 17 U.S.C. 512(c)(3)(A)(v) and (vi), in the statute's words, first person.
GOOD_FAITH = ("I have a good faith belief that use of the material in the manner complained of is not authorized "
              "by the copyright owner, its agent, or the law.")
ACCURACY = ("The information in this notification is accurate, and under penalty of perjury, I am authorized to "
            "act on behalf of the owner of an exclusive right that is allegedly infringed.")

Fields = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Draft:
    """A complaint ready to paste: the fields the channel asks for (label, value) in its order, the text (body),
    the files to attach, and what the owner must still fill in (never the signature: that is always theirs)."""

    channel: str
    case_id: int
    title: str
    where: str  # where to paste / send it (the form's URL, or who the notice goes to)
    fields: Fields  # a value of several lines is a list, one item a line (the text indents them under the label)
    body: str
    attachments: tuple[str, ...]
    missing: tuple[str, ...]
    generated_at: str
    signer: str  # the name printed under the blank signature
    notes: tuple[str, ...] = ()  # for the owner, not to paste (e.g. the record is dated after the copy)

    def text(self) -> str:
        """The ready-to-paste plain text: header (channel, where), fields, body, attachments, signature line."""
        lines = [f"COMPLAINT DRAFT: {ch.channel_label(self.channel)}",
                 f"Case {self.case_id}: {self.title}",
                 f"Generated {pretty_time(self.generated_at)} by catalogmark. Nothing has been sent: check it, "
                 "sign it and send it yourself.",
                 f"Paste into / send to: {self.where}"]
        if self.missing:
            lines.append(f"Still to fill in: {', '.join(self.missing)} (marked [fill in: ...] below)")
        else:
            lines.append("Still to fill in: nothing but your signature")
        lines.extend(f"NOTE: {note}" for note in self.notes)
        lines += ["", RULE, "FIELDS (in the order the form asks for them)", ""]
        for label, value in self.fields:
            if "\n" in value:
                lines.append(f"{label}:")
                lines.extend(f"    {item}" for item in value.split("\n"))
            else:
                lines.append(f"{label}: {value}" if value else f"{label}:")
        lines += ["", RULE, "TEXT", "", *self.body.split("\n"), "", RULE, "ATTACH", ""]
        if self.attachments:
            lines.extend(f"- {a}" for a in self.attachments)
        else:
            lines.append("(nothing to attach)")
        lines += ["", f"SIGNATURE: {SIGNATURE_BLANK} ({SIGNATURE_NOTE})", f"Printed name: {self.signer}",
                  "Date: ______________"]
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        """The draft as a JSON object (the same values as the text, fields in order)."""
        return {"channel": self.channel, "channel_label": ch.channel_label(self.channel), "case_id": self.case_id,
                "title": self.title, "where": self.where,
                "fields": [{"label": label, "value": value} for label, value in self.fields],
                "body": self.body, "attachments": list(self.attachments), "missing": list(self.missing),
                "notes": list(self.notes), "signature": {"signer": self.signer, "signed": False},
                "generated_at": self.generated_at}


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a space if there is one in its last part, with "..."."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 3)]
    space = cut.rfind(" ")
    if space > len(cut) * 2 // 3:
        cut = cut[:space]
    return cut.rstrip() + "..."


def fit_list(head: str, items: Sequence[str], tail: str, limit: int) -> str:
    """``head`` + the items (space-separated) + ``tail`` in at most ``limit`` characters: whole items only,
    as many as fit in order, then "(and N more, listed in the notice)"; ``head`` is clipped if even no item fits.
    Never cuts an item (a URL) in the middle."""
    def more(n: int) -> str:
        return f" (and {n} more, listed in the notice)" if n else ""

    used = len(head) + len(tail)
    shown: list[str] = []
    for i, item in enumerate(items):
        # Room for this item, a separator and the "more" note for what would still be left.
        need = used + len(item) + (1 if shown else 0) + len(more(len(items) - i - 1))
        if need > limit:
            break
        shown.append(item)
        used += len(item) + (1 if len(shown) > 1 else 0)
    text = head + " ".join(shown) + more(len(items) - len(shown)) + tail
    return text if len(text) <= limit else clip(text, limit)


def _lines(values: Sequence[str], empty: str) -> str:
    """A list value: one item a line (the text shows it indented), ``empty`` if there is none."""
    return "\n".join(values) if values else empty


def _registration(f: Facts) -> str:
    return f.copyright_registration or "none (unregistered)"


def _standing(f: Facts) -> str:
    if f.agent:
        return f"I am an agent authorized to act for {f.rights_owner}, the owner of the copyright in this photograph."
    if f.signer != f.rights_owner:
        return f"I act for {f.rights_owner}, the owner of the copyright in this photograph."
    return "I am the owner of the copyright in this photograph."


def _work_para(f: Facts) -> str:
    return (f"The copyrighted work is {f.work}: {f.export}. It was {f.recorded}. The earliest record of this source "
            f"photograph in our ledger is dated {f.earliest}. Copyright registration number: {_registration(f)}.")


def _found_para(f: Facts) -> str:
    return (f"The copy was found on {f.marketplace}, seller {f.seller}, listing title \"{f.listing_title}\", first "
            f"seen on {f.first_seen}. It matches our export ({f.matched}).")


def _url_items(f: Facts) -> list[str]:
    return [f"- {u}" for u in f.infringing_urls or (blank("the infringing URLs"),)]


def _support(f: Facts) -> list[str]:
    own = "; ".join(f.own_listings) if f.own_listings else "none given"
    out = [f"Our own listings that use this photograph: {own}."]
    if f.attachments:
        out.append("Evidence attached: " + "; ".join(f.attachments) + ".")
    return out


def _evidence(f: Facts) -> list[str]:
    """The paragraphs every draft states: the work, when we recorded it, what matched, where, who, what to attach."""
    return [_work_para(f), _found_para(f), "Infringing material (URLs):", *_url_items(f), *_support(f)]


def _statements(f: Facts) -> list[str]:
    return [_standing(f), GOOD_FAITH, ACCURACY]


def _body(*blocks: Sequence[str]) -> str:
    """Paragraphs separated by blank lines (a "- " item joins the paragraph before it)."""
    out: list[str] = []
    for block in blocks:
        for para in block:
            if out and not para.startswith("- "):
                out.append("")
            out.append(para)
    return "\n".join(out)


def _title(f: Facts) -> str:
    return one_line(f"product photograph {f.sku} copied on {f.marketplace} by seller {f.seller}", TITLE_CHARS)


def _contact_fields(f: Facts, prefix: str) -> list[tuple[str, str]]:
    company = [(f"{prefix}company", f.rights_owner)] if f.rights_owner != f.signer else []
    return [(f"{prefix}name", f.signer), *company,
            (f"{prefix}postal address", _lines(f.address, blank("postal address"))),
            (f"{prefix}phone", f.phone or blank("phone")), (f"{prefix}email", f.email or blank("email"))]


def _contact_missing(f: Facts) -> list[str]:
    return [name for name, have in (("email", f.email), ("phone", f.phone), ("postal address", f.address))
            if not have]


def _aliexpress(f: Facts, ctx: ComplaintContext) -> tuple[Fields, str, list[str]]:
    ipr = one_line(ctx.profile.aliexpress_ipr_id)
    fields: Fields = (
        ("Complainant (rights holder)", f.rights_owner),
        ("Complaining as", "an agent authorized by the rights holder" if f.agent else "the rights holder"),
        ("IPR type", "Copyright"),
        ("IPR (registered and verified on IPP)", ipr or blank("AliExpress IPR registration id")),
        ("Copyright registration number", _registration(f)),
        ("Copyrighted work", f"{f.work}; {f.export}"),
        ("Infringing product URLs", _lines(f.infringing_urls, UNKNOWN)),
        ("Store / seller", f.seller),
        ("Product title", f.listing_title),
        ("Infringement", "the product listing uses my copyrighted photograph without authorization"),
        ("Proof to upload", _lines(f.attachments, "(none)")),
        ("My own listings using the photograph", _lines(f.own_listings, "(none given)")),
    )
    intro = [f"Copyright complaint about the product listing(s) below, which use {f.work} without authorization."]
    missing = [] if ipr else ["AliExpress IPR registration id"]
    return fields, _body(intro, _evidence(f), _statements(f)), missing


def _amazon(f: Facts, ctx: ComplaintContext) -> tuple[Fields, str, list[str]]:
    asins = tuple(dict.fromkeys(a for a in (amazon_asin(u) for u in f.page_urls) if a))
    fields: Fields = (
        ("I am", "an agent of the rights owner" if f.agent else "the rights owner"),
        ("Rights owner", f.rights_owner),
        ("Type of infringement", "Copyright"),
        ("Copyright concern", "Images: the listing uses my copyrighted photograph"),
        ("Copyright registration number (if any)", _registration(f)),
        ("Description of the copyrighted work", f"{f.work}; {f.export}; {f.recorded}"),
        ("Link to the copyrighted work (my own listing)",
         _lines(f.own_listings, blank("a link to your own listing using the photograph"))),
        ("ASIN(s)", _lines(asins, blank("ASIN"))),
        ("Infringing listing URL(s)", _lines(f.infringing_urls, UNKNOWN)),
        ("Image(s) to tick as infringing", f.image_url or UNKNOWN),
        ("Seller", f.seller),
        *_contact_fields(f, "Your "),
    )
    intro = [f"The Amazon listing(s) below use {f.work} without authorization."]
    missing = _contact_missing(f)
    if not f.own_listings:
        missing.append("a link to your own listing using the photograph")
    if not asins:
        missing.append("ASIN")
    return fields, _body(intro, _evidence(f), _statements(f)), missing


def _ebay(f: Facts, ctx: ComplaintContext) -> tuple[Fields, str, list[str]]:
    items = tuple(dict.fromkeys(n for n in (ebay_item_number(u) for u in f.page_urls) if n))
    own = next((n for n in (own_ebay_item(v) for v in ctx.profile.own_listings) if n), None)
    vero = one_line(ctx.profile.ebay_vero_id)
    page_urls = tuple(dict.fromkeys(one_line(u) for u in f.page_urls)) or f.infringing_urls
    fields: Fields = (
        ("VeRO participant id", vero or blank("eBay VeRO participant id")),
        ("Rights owner", f.rights_owner),
        ("Reporting as", "an agent authorized by the rights owner" if f.agent else "the rights owner"),
        *_contact_fields(f, "Reporter "),
        ("Item number(s) (itemId)", _lines(items, blank("eBay item number"))),
        ("Listing URL(s)", _lines(f.infringing_urls, UNKNOWN)),
        ("Reason code (veroReasonCodeId)", f"{EBAY_REASON_CODE} (copyright: listing content, the photographs; "
         "eBay's codes differ by site: choose the copyright-in-listing-images reason the form lists)"),
        ("My earliest own eBay item number using the photographs", own or blank(OWN_EBAY_ITEM)),
        (f"Message to seller (messageToSeller, at most {EBAY_MESSAGE_CHARS} characters)",
         message_to_seller(f, page_urls)),
        (f"Detailed message (detailedMessage, at most {EBAY_MESSAGE_CHARS} characters)",
         detailed_message(f, own, page_urls)),
        ("Copy the notice to my email (copyEmailToRightsOwner)", "yes"),
    )
    intro = ["Notice of Claimed Infringement",
             f"To eBay's VeRO team: the eBay listing(s) below use {f.work} without authorization (reason code "
             f"{EBAY_REASON_CODE}, copyright in listing content)."]
    missing = [] if vero else ["eBay VeRO participant id"]
    missing += _contact_missing(f)
    if not items:
        missing.append("eBay item number")
    if own is None:
        missing.append(OWN_EBAY_ITEM)
    return fields, _body(intro, _evidence(f), _statements(f)), missing


def message_to_seller(f: Facts, urls: Sequence[str]) -> str:
    """eBay's messageToSeller: why the listing is reported, in at most 1000 characters (whole URLs only)."""
    head = (f"{f.rights_owner} owns the copyright in the product photograph of SKU {f.sku} used in your listing "
            f"and has not authorized its use. The photograph was {f.recorded}; your image matches it "
            f"({f.matched}). Please remove it")
    contact = f" Contact: {f.email}." if f.email else ""
    if not urls:
        return clip(f"{head} from your listing.{contact}", EBAY_MESSAGE_CHARS)
    return fit_list(f"{head} from: ", urls, f".{contact}", EBAY_MESSAGE_CHARS)


def detailed_message(f: Facts, own: str | None, urls: Sequence[str]) -> str:
    """eBay's detailedMessage: the evidence for eBay in at most 1000 characters (whole URLs only)."""
    head = (f"Copyright in listing content: the listing's photograph copies {f.work}, {f.export}. It was "
            f"{f.recorded}; the earliest record of the photograph in our ledger is dated {f.earliest}. "
            f"Found on {f.first_seen}, seller {f.seller}; {f.matched}. "
            f"Our earliest eBay item using it: {own or blank(OWN_EBAY_ITEM)}.")
    if not urls:
        return clip(head, EBAY_MESSAGE_CHARS)
    return fit_list(f"{head} Listings: ", urls, ".", EBAY_MESSAGE_CHARS)


def _host_name(f: Facts, ctx: ComplaintContext) -> str:
    host = one_line(host_of(ctx.case.page_url or "") or host_of(ctx.case.image_url or ""))
    if f.marketplace != UNKNOWN:
        return f"{f.marketplace} ({host})" if host and host != f.marketplace else f.marketplace
    return host or "the service provider hosting the material"


def _dmca(f: Facts, ctx: ComplaintContext) -> tuple[Fields, str, list[str]]:
    host = _host_name(f, ctx)
    work = f"{f.work}; {f.export}; {f.recorded}. Copyright registration number: {_registration(f)}."
    located = _lines(f.infringing_urls, blank("the infringing URLs"))
    accuracy = f"{ACCURACY} {_standing(f)}"
    fields: Fields = (
        ("To", f"the designated DMCA agent of {host}"),
        ("Subject", f"DMCA notice of copyright infringement (17 U.S.C. 512(c)(3)): {f.sku}"),
        ("(i) Signature", f"{SIGNATURE_BLANK} ({SIGNATURE_NOTE})"),
        ("(ii) Copyrighted work", work),
        ("(iii) Infringing material and where it is", located),
        ("(iv) Contact information", "\n".join(f.contact_lines)),
        ("(v) Good-faith statement", GOOD_FAITH),
        ("(vi) Accuracy and authority statement", accuracy),
    )
    letter = [
        f"To the designated agent of {host}:",
        "This is a notification of claimed copyright infringement under the Digital Millennium Copyright Act, "
        "17 U.S.C. 512(c)(3)(A). Please remove or disable access to the material identified below.",
        f"(ii) The copyrighted work claimed to have been infringed: {f.work}: {f.export}. It was {f.recorded}. The "
        f"earliest record of this source photograph in our ledger is dated {f.earliest}. Copyright registration "
        f"number: {_registration(f)}.",
        "(iii) The material that is claimed to be infringing and that is to be removed or access to which is to be "
        f"disabled, found on {f.marketplace}, seller {f.seller}, listing title \"{f.listing_title}\", first seen "
        f"on {f.first_seen} (it matches our export: {f.matched}), is at:",
        *_url_items(f),
        *_support(f),
        "(iv) My contact information:",
        *(f"- {line}" for line in f.contact_lines),
        f"(v) {GOOD_FAITH}",
        f"(vi) {accuracy}",
        f"(i) Signature: {SIGNATURE_BLANK}",
        f"Name: {f.signer}",
    ]
    return fields, _body(letter), _contact_missing(f)


_BUILDERS: dict[str, Callable[[Facts, ComplaintContext], tuple[Fields, str, list[str]]]] = {
    ch.ALIEXPRESS: _aliexpress, ch.AMAZON: _amazon, ch.EBAY: _ebay, ch.DMCA: _dmca}


def draft(channel: str, ctx: ComplaintContext) -> Draft:
    """The draft of ``ctx.case``'s complaint for ``channel`` (one of :data:`channels.CHANNELS`; ConfigError
    listing them otherwise)."""
    ch.check_channel(channel)
    f = facts_of(ctx)
    fields, body, missing = _BUILDERS[channel](f, ctx)
    return Draft(channel=channel, case_id=f.case_id, title=_title(f), where=ch.DESTINATIONS[channel],
                 fields=fields, body=body, attachments=f.attachments, missing=tuple(dict.fromkeys(missing)),
                 generated_at=f.generated_at, signer=f.signer,
                 notes=(f.priority_warning,) if f.priority_warning else ())
