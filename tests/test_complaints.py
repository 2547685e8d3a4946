"""Tests for pipeline.complaints: the drafts per channel, their facts, limits, escaping and files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.complaints import (
    CHANNELS,
    EBAY_MESSAGE_CHARS,
    ComplaintContext,
    Draft,
    amazon_asin,
    channel_label,
    default_channel,
    draft,
    ebay_item_number,
    write_drafts,
)
from pipeline.complaints.draft import clip, fit_list
from pipeline.errors import ConfigError
from pipeline.ledger import StoredRecord
from pipeline.models import Owner, Record
from pipeline.priority import Priority
from pipeline.progress import printable
from pipeline.sweep.models import Case, ComplaintProfile

OWNER = Owner(name="Example Studio", copyright="(c) 2026 Example Studio. All rights reserved.")
RECORD = Record(
    record_id="r-5f0c2a9e81b34d7a", job_key="k" * 64, source="photos/BOTTLE-7/main.jpg", source_sha256="a" * 64,
    sku="BOTTLE-7", role="main", position=0, preset="amazon-main", preset_digest="d" * 64,
    output="out/amazon-main/BOTTLE-7.jpg", output_sha256="b1" * 32, output_bytes=123456, pixel_sha256="c" * 64,
    width=2000, height=2000, format="JPEG", phash="8f3c" * 4, pdq="0" * 64, pdq_quality=100, payload="00ff00ff00",
    owner="Example Studio", key_fingerprint="f" * 16, signature="sig", capture={}, visible_mark=None,
    created_at="2026-01-02T03:04:05Z")
STORED = StoredRecord(record=RECORD, seq=3, run_id="run-1", prev_hash="0" * 64, record_hash="1" * 64)
CASE = Case(
    case_id=42, record_id=RECORD.record_id, verdict="match", false_match_probability=2.5e-13,
    suspect_sha256="e" * 64, suspect_phash="8f3c" * 4,
    page_url="https://www.ebay.com/itm/Glass-Bottle-Blue/123456789012?hash=item1c", image_url=
    "https://i.ebayimg.com/images/g/abc/s-l1600.jpg", marketplace="ebay", seller="copycat_store",
    listing_title="Blue glass bottle 500ml", first_seen="2026-11-01T08:00:00Z", last_seen="2026-11-20T08:00:00Z",
    status="found")
PRIORITY = Priority(recorded_at="2026-01-02T03:04:07Z", vouched_by="https://freetsa.org/tsr")
FULL = ComplaintProfile(
    signer="Ada Lovelace", email="ada@example.com", phone="+1 555 0100", address="1 Main Street\nSpringfield",
    company="Example Studio LLC", acting_as="owner", copyright_registration="VA 2-123-456",
    aliexpress_ipr_id="IPR-778899", ebay_vero_id="5551234",
    own_listings=("https://www.ebay.com/itm/Bottle/111111111111", "https://www.amazon.com/dp/B0OWNLIST1"))
OTHER = ("https://www.ebay.com/itm/222222222222", "https://www.ebay.co.uk/itm/Bottle-Red/333333333333")
ATTACH = ("evidence-report.html", "kit-r-5f0c2a9e81b34d7a.zip")


def ctx_of(**changes: object) -> ComplaintContext:
    base = ComplaintContext(owner=OWNER, profile=FULL, case=CASE, record=STORED, priority=PRIORITY,
                            earliest_recorded_at="2025-12-01T09:00:00Z", attachments=ATTACH,
                            generated_at="2026-12-02T10:00:00Z", other_urls=OTHER)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def case_of(**changes: object) -> Case:
    return dataclasses.replace(CASE, **changes)  # type: ignore[arg-type]


def field(d: Draft, label_start: str) -> str:
    values = [v for label, v in d.fields if label.startswith(label_start)]
    assert len(values) == 1, (label_start, [label for label, _ in d.fields])
    return values[0]


# ---------------------------------------------------------------------------------------------- channels


@pytest.mark.parametrize("marketplace, channel", [
    ("aliexpress", "aliexpress-ipp"), ("AliExpress", "aliexpress-ipp"), ("alibaba", "aliexpress-ipp"),
    ("amazon", "amazon"), ("ebay", "ebay-vero"), ("etsy", "dmca"), ("shopify", "dmca"), ("temu", "dmca"),
    ("", "dmca"), (None, "dmca")])
def test_default_channel(marketplace: str | None, channel: str) -> None:
    assert default_channel(marketplace) == channel


def test_channels_and_labels() -> None:
    assert CHANNELS == ("aliexpress-ipp", "amazon", "ebay-vero", "dmca")
    assert "VeRO" in channel_label("ebay-vero") and "512(c)(3)(A)" in channel_label("dmca")
    with pytest.raises(ConfigError, match=r"unknown complaint channel 'etsy' \(known: aliexpress-ipp, amazon, "
                                          r"ebay-vero, dmca\)"):
        channel_label("etsy")


def test_unknown_channel_errors_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="known: aliexpress-ipp"):
        draft("fax", ctx_of())
    with pytest.raises(ConfigError, match="unknown complaint channel 'fax'"):
        write_drafts(ctx_of(), tmp_path / "out", ["dmca", "fax"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url, item", [
    ("https://www.ebay.com/itm/123456789012", "123456789012"),
    ("https://www.ebay.co.uk/itm/Glass-Bottle/123456789012?hash=x#y", "123456789012"),
    ("http://ebay.de/itm/123456789012/", "123456789012"),
    ("https://www.ebay.com.au/itm/123456789", "123456789"),
    ("https://www.ebay.com/sch/i.html?_nkw=bottle", None),
    ("https://www.ebay.com/itm/not-a-number", None),
    ("https://ebay.com.evil.example/itm/123456789012", None),
    ("https://notebay.com/itm/123456789012", None),
    ("https://shop.example/itm/123456789012", None),
    ("http://[::1", None),
    ("", None),
])
def test_ebay_item_number(url: str, item: str | None) -> None:
    assert ebay_item_number(url) == item


@pytest.mark.parametrize("url, asin", [
    ("https://www.amazon.com/dp/B0ABCDEF12", "B0ABCDEF12"),
    ("https://www.amazon.co.uk/Blue-Bottle/dp/B0ABCDEF12/ref=sr_1_1?x=1", "B0ABCDEF12"),
    ("https://www.amazon.de/gp/product/B0ABCDEF12", "B0ABCDEF12"),
    ("https://www.amazon.com/s?k=bottle", None),
    ("https://amazon.com.evil.example/dp/B0ABCDEF12", None),
])
def test_amazon_asin(url: str, asin: str | None) -> None:
    assert amazon_asin(url) == asin


# ---------------------------------------------------------------------------------------------- what every draft says


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_draft_states_the_facts(channel: str) -> None:
    text = draft(channel, ctx_of()).text()
    for fact in (CASE.page_url, CASE.image_url, *OTHER,  # infringing URLs
                 "BOTTLE-7", "amazon-main", RECORD.record_id, RECORD.output_sha256,  # the work and our export
                 "2026-01-02 03:04:07 UTC", "RFC 3161", "https://freetsa.org/tsr",  # first recorded, vouched
                 "2025-12-01 09:00:00 UTC",  # the earliest record of the source photo
                 "match", "2.5e-13",  # what matched
                 "eBay", "copycat_store", "Blue glass bottle 500ml",  # marketplace, seller, title
                 *ATTACH, *FULL.own_listings,
                 "Example Studio LLC", "VA 2-123-456",
                 "good faith belief", "under penalty of perjury"):
        assert fact is not None and fact in text, (channel, fact)
    assert "Case 42" in text
    lines = text.splitlines()
    assert lines[0].startswith("COMPLAINT DRAFT: ")
    assert lines[-3].startswith("SIGNATURE: /s/ ____") and "yours to give" in lines[-3]
    assert lines[-2] == "Printed name: Ada Lovelace"
    assert text.encode("utf-8").decode("utf-8") == text
    assert "<" not in text.replace("<id>", "")  # no HTML


@pytest.mark.parametrize("channel, where", [
    ("aliexpress-ipp", "https://ipp.alibabagroup.com"), ("amazon", "https://www.amazon.com/report/infringement"),
    ("ebay-vero", "VeRO"), ("dmca", "designated DMCA agent")])
def test_header_says_where_to_paste(channel: str, where: str) -> None:
    d = draft(channel, ctx_of())
    assert d.text().splitlines()[3].startswith(f"Paste into / send to: {d.where}")
    assert where in d.where


def test_dmca_notice_has_all_six_statutory_elements() -> None:
    d = draft("dmca", ctx_of(profile=dataclasses.replace(FULL, company="", signer="")))
    body = d.body
    # (i) a signature, left to the person
    assert "(i) Signature: /s/ ____" in body
    assert field(d, "(i)").startswith("/s/ ____") and "yours to give" in field(d, "(i)")
    # (ii) the copyrighted work
    assert "(ii) The copyrighted work claimed to have been infringed: the product photograph of SKU BOTTLE-7" in body
    # (iii) the infringing material and information reasonably sufficient to locate it
    assert ("(iii) The material that is claimed to be infringing and that is to be removed or access to which is to "
            "be disabled") in body
    for url in (CASE.page_url, CASE.image_url, *OTHER):
        assert f"\n- {url}\n" in body
    # (iv) contact details: name, address, phone, email
    for line in ("- Name: Example Studio", "- Address: 1 Main Street, Springfield", "- Phone: +1 555 0100",
                 "- Email: ada@example.com"):
        assert line in body.splitlines()
    # (v) good faith, (vi) accuracy + under penalty of perjury + authority: the statute's words
    assert ("(v) I have a good faith belief that use of the material in the manner complained of is not authorized "
            "by the copyright owner, its agent, or the law.") in body
    assert ("(vi) The information in this notification is accurate, and under penalty of perjury, I am authorized to "
            "act on behalf of the owner of an exclusive right that is allegedly infringed.") in body
    assert "17 U.S.C. 512(c)(3)(A)" in body
    assert [label[:5] for label, _ in d.fields[2:]] == ["(i) S", "(ii) ", "(iii)", "(iv) ", "(v) G", "(vi) "]
    assert d.missing == ()
    assert "I am the owner of the copyright" in body


def test_dmca_agent_statement() -> None:
    d = draft("dmca", ctx_of(profile=dataclasses.replace(FULL, acting_as="agent")))
    assert "I am an agent authorized to act for Example Studio LLC, the owner of the copyright" in d.body
    assert "- On behalf of: Example Studio LLC" in d.body.splitlines()


def test_without_trusted_timestamp_says_own_clock() -> None:
    text = draft("dmca", ctx_of(priority=Priority(recorded_at="2026-01-02T03:04:07Z", vouched_by=None))).text()
    assert "by our own clock: no trusted timestamp" in text
    assert "RFC 3161" not in text


def test_no_priority_falls_back_to_the_record_time() -> None:
    text = draft("amazon", ctx_of(priority=None, earliest_recorded_at=None)).text()
    assert "first recorded in our signed ledger on 2026-01-02 03:04:05 UTC (by our own clock" in text
    assert "ledger is dated 2026-01-02 03:04:05 UTC" in text


def test_recorded_after_the_copy_is_a_note_not_a_claim() -> None:
    late = Priority(recorded_at="2026-12-01T00:00:00Z", vouched_by=None, seen_at="2026-11-01T08:00:00Z",
                    seen_what="the copy", days_before=-29)
    d = draft("dmca", ctx_of(priority=late))
    assert d.notes and "AFTER" in d.notes[0]
    assert "NOTE: this export was recorded 29 day(s) AFTER the copy was seen" in d.text()
    assert d.as_json()["notes"] == list(d.notes)


def test_unknown_false_match_probability_and_missing_case_fields() -> None:
    case = case_of(false_match_probability=None, page_url=None, image_url=None, marketplace=None, seller=None,
                   listing_title=None)
    d = draft("dmca", ctx_of(case=case, other_urls=()))
    text = d.text()
    assert "probability of a false match: not computed" in text
    assert "seller (not known)" in text and "found on (not known)" in text
    assert "[fill in: the infringing URLs]" in text
    assert "the designated DMCA agent of the service provider hosting the material" in text


# ---------------------------------------------------------------------------------------------- missing fields


EMPTY_MISSING = {
    "aliexpress-ipp": ("AliExpress IPR registration id",),
    "amazon": ("email", "phone", "postal address", "a link to your own listing using the photograph"),
    "ebay-vero": ("eBay VeRO participant id", "email", "phone", "postal address",
                  "your earliest eBay item number using the photographs"),
    "dmca": ("email", "phone", "postal address"),
}


@pytest.mark.parametrize("channel", CHANNELS)
def test_missing_named_when_profile_empty(channel: str) -> None:
    d = draft(channel, ctx_of(profile=ComplaintProfile()))
    expected = EMPTY_MISSING[channel] + (("ASIN",) if channel == "amazon" else ())
    assert d.missing == expected
    text = d.text()
    assert f"Still to fill in: {', '.join(expected)}" in text
    for name in expected:
        assert f"[fill in: {name}]" in text
    assert "signature" not in " ".join(d.missing).lower()
    assert d.signer == "Example Studio"  # the owner's name when no signer is given


@pytest.mark.parametrize("channel", CHANNELS)
def test_nothing_missing_when_profile_full(channel: str) -> None:
    case = case_of(page_url="https://www.amazon.com/Blue-Bottle/dp/B0ABCDEF12") if channel == "amazon" else CASE
    d = draft(channel, ctx_of(case=case))
    assert d.missing == ()
    assert "[fill in:" not in d.text()
    assert "Still to fill in: nothing but your signature" in d.text()


def test_amazon_fields() -> None:
    case = case_of(page_url="https://www.amazon.com/Blue-Bottle/dp/B0ABCDEF12", marketplace="amazon")
    d = draft("amazon", ctx_of(case=case, other_urls=("https://www.amazon.com/dp/B0ZZZZZZZ9",)))
    assert field(d, "ASIN") == "B0ABCDEF12\nB0ZZZZZZZ9"
    assert field(d, "Type of infringement") == "Copyright"
    assert field(d, "Image(s) to tick") == CASE.image_url
    assert field(d, "Link to the copyrighted work") == "\n".join(FULL.own_listings)
    assert field(d, "Copyright registration") == "VA 2-123-456"
    assert field(d, "I am") == "the rights owner"


def test_aliexpress_fields() -> None:
    d = draft("aliexpress-ipp", ctx_of())
    assert field(d, "IPR type") == "Copyright"
    assert field(d, "IPR (registered") == "IPR-778899"
    assert field(d, "Proof to upload") == "\n".join(ATTACH)
    assert field(d, "Store / seller") == "copycat_store"


def test_ebay_fields() -> None:
    d = draft("ebay-vero", ctx_of())
    assert field(d, "Item number(s)") == "123456789012\n222222222222\n333333333333"
    assert field(d, "Reason code") .startswith("3.2 ")
    assert field(d, "My earliest own eBay item number") == "111111111111"
    assert field(d, "VeRO participant id") == "5551234"
    bare = draft("ebay-vero", ctx_of(profile=dataclasses.replace(FULL, own_listings=("987654321098",))))
    assert field(bare, "My earliest own eBay item number") == "987654321098"
    no_item = draft("ebay-vero", ctx_of(case=case_of(page_url="https://www.ebay.com/str/copycat"), other_urls=()))
    assert "eBay item number" in no_item.missing


# ---------------------------------------------------------------------------------------------- eBay's 1000 characters


def test_ebay_messages_fit_with_long_urls_and_many_listings() -> None:
    long_urls = tuple(f"https://www.ebay.com/itm/{'Very-Long-Title-' * 8}{i}/{100000000000 + i}" for i in range(60))
    case = case_of(listing_title="T" * 5000, seller="S" * 3000, page_url=long_urls[0])
    d = draft("ebay-vero", ctx_of(case=case, other_urls=long_urls[1:]))
    for label in ("Message to seller", "Detailed message"):
        msg = field(d, label)
        assert len(msg) <= EBAY_MESSAGE_CHARS, (label, len(msg))
        shown = [u for u in long_urls if u in msg]
        assert shown, label  # some listings named...
        assert shown == list(long_urls[: len(shown)])  # ...whole, in order
        assert f"(and {len(long_urls) - len(shown)} more, listed in the notice)" in msg
        assert msg.count("https://www.ebay.com/itm/") == len(shown)  # no URL cut in the middle
    # the text itself lists every URL whole
    assert all(u in d.text() for u in long_urls)


def test_ebay_message_with_one_url_longer_than_the_limit() -> None:
    huge = "https://www.ebay.com/itm/" + "x" * 2000 + "/123456789012"
    d = draft("ebay-vero", ctx_of(case=case_of(page_url=huge), other_urls=()))
    msg = field(d, "Message to seller")
    assert len(msg) <= EBAY_MESSAGE_CHARS
    assert "xxxxxxxx" not in msg and "(and 1 more, listed in the notice)" in msg


def test_fit_list_and_clip() -> None:
    assert fit_list("H: ", ["a", "b"], ".", 100) == "H: a b."
    text = fit_list("H: ", ["a" * 30, "b" * 30, "c" * 30], ".", 80)
    assert text == "H: " + "a" * 30 + " (and 2 more, listed in the notice)."
    assert len(text) <= 80
    assert clip("word " * 50, 40).endswith("...") and len(clip("word " * 50, 40)) <= 40
    assert clip("short", 40) == "short"


# ---------------------------------------------------------------------------------------------- text and JSON


@pytest.mark.parametrize("channel", CHANNELS)
def test_json_matches_text(channel: str) -> None:
    d = draft(channel, ctx_of())
    doc = d.as_json()
    assert json.loads(json.dumps(doc)) == doc
    assert list(doc) == ["channel", "channel_label", "case_id", "title", "where", "fields", "body", "attachments",
                         "missing", "notes", "signature", "generated_at"]
    assert doc["channel"] == channel and doc["case_id"] == 42 and doc["generated_at"] == "2026-12-02T10:00:00Z"
    assert doc["fields"] == [{"label": label, "value": value} for label, value in d.fields]
    assert doc["signature"] == {"signer": "Ada Lovelace", "signed": False}
    text = d.text()
    lines = text.splitlines()
    for item in doc["fields"]:
        values = item["value"].split("\n")
        if len(values) == 1:
            assert f"{item['label']}: {values[0]}" in lines
        else:
            i = lines.index(f"{item['label']}:")
            assert lines[i + 1: i + 1 + len(values)] == [f"    {v}" for v in values]
    assert "\n" + doc["body"] + "\n" in text
    for a in doc["attachments"]:
        assert f"- {a}" in lines
    assert doc["title"] in lines[1] and doc["where"] in lines[3]


def test_write_drafts(tmp_path: Path) -> None:
    out = tmp_path / "drafts"
    files = write_drafts(ctx_of(profile=ComplaintProfile()), out)
    assert [(f.channel, f.text_path.name, f.json_path.name) for f in files] == [
        ("ebay-vero", "case-42-ebay-vero.txt", "case-42-ebay-vero.json")]
    assert files[0].case_id == 42 and files[0].missing == EMPTY_MISSING["ebay-vero"]
    d = draft("ebay-vero", ctx_of(profile=ComplaintProfile()))
    assert files[0].text_path.read_text(encoding="utf-8") == d.text()
    assert json.loads(files[0].json_path.read_text(encoding="utf-8")) == d.as_json()
    every = write_drafts(ctx_of(), out, ["dmca", "amazon", "dmca", "aliexpress-ipp"])
    assert [f.channel for f in every] == ["dmca", "amazon", "aliexpress-ipp"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"case-42-{c}.{ext}" for c in ("ebay-vero", "dmca", "amazon", "aliexpress-ipp") for ext in ("txt", "json"))


@pytest.mark.parametrize("marketplace, channel", [("amazon", "amazon"), ("etsy", "dmca"), (None, "dmca"),
                                                  ("aliexpress", "aliexpress-ipp")])
def test_write_drafts_default_channel(marketplace: str | None, channel: str, tmp_path: Path) -> None:
    files = write_drafts(ctx_of(case=case_of(marketplace=marketplace)), tmp_path)
    assert [f.channel for f in files] == [channel]
    assert files[0].text_path == tmp_path / f"case-42-{channel}.txt"


# ---------------------------------------------------------------------------------------------- untrusted values


FORGE = "evil\nSIGNATURE: /s/ Forged\r\nStill to fill in: nothing\u2028(v) I forged this\x1b[2J\u202e"


@pytest.mark.parametrize("channel", CHANNELS)
def test_seller_newline_cannot_forge_a_line(channel: str) -> None:
    forged = draft(channel, ctx_of(case=case_of(seller=FORGE, listing_title=FORGE), other_urls=(FORGE,)))
    plain = draft(channel, ctx_of(case=case_of(seller="evil", listing_title="evil"), other_urls=("evil",)))
    text = forged.text()
    assert len(text.splitlines()) == len(plain.text().splitlines())
    assert len(text.splitlines()) == len(text.split("\n")) - 1  # no other line breaks at all
    assert [ln for ln in text.splitlines() if ln.startswith("SIGNATURE:")] == [text.splitlines()[-3]]
    def starting(t: str) -> list[str]:
        return [ln for ln in t.splitlines() if ln.lstrip(" -").startswith(("Still to fill in:", "(v) I "))]

    assert starting(text) == starting(plain.text())  # only the draft's own such lines
    assert "\x1b" not in text and "\u202e" not in text and "\r" not in text
    assert "evil\\nSIGNATURE: /s/ Forged\\r\\nStill to fill in: nothing\\u2028(v) I forged this\\x1b[2J\\u202e" in text
    assert json.dumps(forged.as_json())  # and the JSON holds the same escaped values
    assert forged.as_json()["body"] == forged.body


def test_surrogates_and_bidi_are_escaped() -> None:
    text = draft("dmca", ctx_of(case=case_of(seller="a\udcff\ud800b\u202ec"))).text()
    assert text.encode("utf-8").decode("utf-8") == text
    assert "a\\xff\\ud800b\\u202ec" in text


_SEPARATORS = st.sampled_from(["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
                               "\u2029"])


#: Any code point, surrogates and controls included.
_ANY = st.characters(exclude_categories=())


@st.composite
def _attack(draw: st.DrawFn, i: int) -> str:
    return f"v{i}:" + draw(st.text(_ANY, max_size=60)) + draw(_SEPARATORS) + "FORGED" + draw(st.text(_ANY, max_size=20))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seller=_attack(0), title=_attack(1), page=_attack(2), image=_attack(3), other=_attack(4),
       market=_attack(5), channel=st.sampled_from(CHANNELS))
def test_untrusted_values_never_forge_lines(seller: str, title: str, page: str, image: str, other: str,
                                            market: str, channel: str) -> None:
    values = {"seller": seller, "listing_title": title, "page_url": page, "image_url": image, "marketplace": market}
    text = draft(channel, ctx_of(case=case_of(**values), other_urls=(other,))).text()
    plain = {k: f"v{i}:plain" for i, k in enumerate(values)}
    baseline = draft(channel, ctx_of(case=case_of(**plain), other_urls=("v4:plain",))).text()
    lines = text.splitlines()
    assert len(lines) == len(baseline.splitlines())
    assert len(lines) == len(text.split("\n")) - 1
    assert not any(ln.lstrip(" -").startswith("FORGED") for ln in lines)
    text.encode("utf-8")  # UTF-8 clean: no lone surrogates


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seller=st.text(_ANY, max_size=3000), title=st.text(_ANY, max_size=3000),
       owner=st.text(_ANY, min_size=1, max_size=1500), sku=st.text(_ANY, max_size=500),
       page=st.text(_ANY, max_size=1500), image=st.text(_ANY, max_size=1500),
       others=st.lists(st.text(_ANY, max_size=400), max_size=40), email=st.text(_ANY, max_size=300))
def test_ebay_messages_never_exceed_the_limit(seller: str, title: str, owner: str, sku: str, page: str,
                                              image: str, others: list[str], email: str) -> None:
    ctx = ctx_of(owner=dataclasses.replace(OWNER, name=owner), record=dataclasses.replace(
        STORED, record=dataclasses.replace(RECORD, sku=sku)),
        case=case_of(seller=seller, listing_title=title, page_url=page, image_url=image),
        other_urls=tuple(others), profile=dataclasses.replace(FULL, email=email, company=""))
    d = draft("ebay-vero", ctx)
    for label in ("Message to seller", "Detailed message"):
        msg = field(d, label)
        assert len(msg) <= EBAY_MESSAGE_CHARS
        assert printable(msg) == msg  # one line, nothing to escape
    d.text().encode("utf-8")
    json.dumps(d.as_json(), ensure_ascii=False).encode("utf-8")
