"""The ledger's case book: copies met by sweeps become cases; known copies, relists, append-only history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipeline.errors import LedgerError
from pipeline.ledger import Ledger
from pipeline.sweep.models import Sighting


@pytest.fixture
def book(tmp_path: Path):
    with Ledger.open(tmp_path / "ledger.sqlite") as led:
        led.begin_sweep("S1", "2026-11-01T10:00:00Z", ["urls.txt"])
        yield led


def _meet(led: Ledger, sweep: str, at: str, sha: str, page: str | None, image: str | None = None,
          record: str = "rid1", seller: str | None = "CopyCat Store"):
    return led.meet_copy(sweep_id=sweep, sighting=Sighting(sweep, at, sha, page, image), record_id=record,
                         verdict="match", false_match_probability=1e-9, suspect_phash="ab" * 8,
                         marketplace="aliexpress", seller=seller, listing_title="Stolen mug")


def test_a_new_copy_opens_a_case_found_and_a_known_one_only_updates_last_seen(book: Ledger):
    case, change = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    assert change == "new" and case.case_id == 1 and case.status == "found" and not case.relisted
    assert case.first_seen == case.last_seen == "2026-11-01T10:00:05Z" and case.opened_by == "S1"
    book.finish_sweep("S1", "2026-11-01T10:01:00Z", {})
    book.begin_sweep("S2", "2026-12-01T10:00:00Z", ["urls.txt"])
    again, change = _meet(book, "S2", "2026-12-01T10:00:07Z", "b" * 64, "https://shop.example/item/1")
    assert change == "still-up" and again.case_id == 1  # same page, re-encoded bytes: the same case
    assert (again.first_seen, again.last_seen) == ("2026-11-01T10:00:05Z", "2026-12-01T10:00:07Z")
    assert again.suspect_sha256 == "b" * 64 and len(again.sightings) == 2 and len(again.events) == 1
    assert [c.case_id for c in book.cases()] == [1]


def test_the_same_bytes_on_another_sellers_page_is_a_case_of_its_own_and_another_record_is_another(book: Ledger):
    first, _ = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    other_page, change = _meet(book, "S1", "2026-11-01T10:00:06Z", "a" * 64, "https://other.example/p/9",
                               seller="Other Seller")
    assert other_page.case_id != first.case_id and change == "new"  # its own listing, its own complaint
    assert other_page.page_url == "https://other.example/p/9"
    book.mark_case(first.case_id, "dismissed", "licensed reseller")
    third, change = _meet(book, "S1", "2026-11-01T10:00:07Z", "a" * 64, "https://third.example/x")
    assert third.case_id not in (first.case_id, other_page.case_id) and third.status == "found"  # not swallowed
    other, change = _meet(book, "S1", "2026-11-01T10:00:08Z", "c" * 64, "https://shop.example/item/1",
                          record="rid2")
    assert other.case_id != first.case_id and change == "new"


def test_the_same_bytes_with_no_page_join_the_case_they_match(book: Ledger):
    first, _ = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    local, change = _meet(book, "S1", "2026-11-01T10:00:06Z", "a" * 64, None)  # a downloaded file
    assert local.case_id == first.case_id and change == "new"
    by_image, _ = _meet(book, "S1", "2026-11-01T10:00:07Z", "b" * 64, None, "https://img.example/1.jpg")
    later, _ = _meet(book, "S1", "2026-11-01T10:00:08Z", "d" * 64, "https://shop.example/item/5",
                     "https://img.example/1.jpg")
    assert later.case_id == by_image.case_id  # the case had no page to tell them apart


def test_a_removed_copy_found_again_is_relisted_and_the_flag_stays(book: Ledger):
    case, _ = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    book.mark_case(case.case_id, "reported", "filed on IPP", at="2026-11-02T09:00:00Z")
    book.mark_case(case.case_id, "removed", "listing gone", at="2026-11-10T09:00:00Z")
    book.finish_sweep("S1", "2026-11-01T10:01:00Z", {})
    book.begin_sweep("S2", "2026-12-01T10:00:00Z", ["urls.txt"])
    relist, change = _meet(book, "S2", "2026-12-01T10:00:05Z", "a" * 64, "https://shop.example/item/77")
    assert change == "relisted" and relist.case_id == case.case_id and relist.relisted
    assert relist.status == "found"
    assert [e.status for e in relist.events] == ["found", "reported", "removed", "found"]
    assert relist.events[-1].relisted and "2026-11-10" in relist.events[-1].note
    _, change = _meet(book, "S2", "2026-12-01T10:00:09Z", "a" * 64, "https://shop.example/item/77")
    assert change == "relisted"  # met twice in the sweep that found the relist
    second, change = _meet(book, "S2", "2026-12-01T10:00:10Z", "a" * 64, "https://shop.example/item/78")
    assert change == "new" and second.case_id != case.case_id  # a second listing of it is a case of its own
    book.mark_case(case.case_id, "reported", at="2026-12-02T09:00:00Z")
    assert book.get_case(case.case_id).relisted  # type: ignore[union-attr]
    book.mark_case(second.case_id, "removed", at="2026-12-03T09:00:00Z")
    _, change = _meet(book, "S2", "2026-12-04T10:00:00Z", "a" * 64, "https://shop.example/item/90",
                      seller="Someone Else")
    assert change == "new"  # a removed case is relisted only by its own seller (when both are known)
    assert [c.case_id for c in book.cases(relisted=True)] == [case.case_id]


def test_a_dismissed_case_met_again_stays_dismissed(book: Ledger):
    case, _ = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    book.mark_case(case.case_id, "dismissed", "licensed reseller")
    again, change = _meet(book, "S1", "2026-11-01T10:00:09Z", "a" * 64, "https://shop.example/item/1")
    assert change == "new" and again.status == "dismissed"


def test_filters_by_status_marketplace_and_seller_case_insensitively(book: Ledger):
    a, _ = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://x.example/1", seller="Alpha")
    b, _ = _meet(book, "S1", "2026-11-01T10:00:06Z", "b" * 64, "https://x.example/2", record="rid2", seller="Beta")
    book.mark_case(b.case_id, "reported")
    assert [c.case_id for c in book.cases(status="reported")] == [b.case_id]
    assert [c.case_id for c in book.cases(seller="alpha")] == [a.case_id]
    assert [c.case_id for c in book.cases(marketplace="AliExpress")] == [a.case_id, b.case_id]
    assert book.cases(marketplace="amazon") == [] and book.cases(record_id="rid2")[0].case_id == b.case_id


def test_a_case_fills_in_an_unknown_seller_but_never_replaces_a_known_one(book: Ledger):
    _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://x.example/1", seller=None)
    case, _ = _meet(book, "S1", "2026-11-01T10:00:06Z", "a" * 64, "https://x.example/1", seller="Gamma")
    assert case.seller == "Gamma"
    case, _ = _meet(book, "S1", "2026-11-01T10:00:07Z", "a" * 64, "https://x.example/1", seller="Delta")
    assert case.seller == "Gamma"


def test_history_is_append_only_in_the_database_itself(book: Ledger, tmp_path: Path):
    case, _ = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://x.example/1")
    book.mark_case(case.case_id, "removed")
    con = sqlite3.connect(str(tmp_path / "ledger.sqlite"))
    for sql in ("UPDATE case_events SET status = 'found'", "DELETE FROM case_events",
                "UPDATE sightings SET page_url = 'x'", "DELETE FROM sightings"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(sql)
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("INSERT INTO case_events (case_id, at, status, note) VALUES (1, 'now', 'stolen', '')")
    con.close()
    assert [e.status for e in book.get_case(case.case_id).events] == ["found", "removed"]  # type: ignore[union-attr]


def test_marking_an_unknown_case_or_status_is_a_clear_error(book: Ledger):
    with pytest.raises(LedgerError, match="no case 42"):
        book.mark_case(42, "removed")
    with pytest.raises(LedgerError, match="unknown case status 'gone'"):
        book.mark_case(1, "gone")  # type: ignore[arg-type]
    assert book.get_case(42) is None


def test_a_sweep_records_its_end_and_counts(book: Ledger, tmp_path: Path):
    book.finish_sweep("S1", "2026-11-01T10:05:00Z", {"new": 2, "failed_urls": 1})
    con = sqlite3.connect(str(tmp_path / "ledger.sqlite"))
    assert con.execute("SELECT finished_at, counts FROM sweeps").fetchone() == (
        "2026-11-01T10:05:00Z", '{"failed_urls":1,"new":2}')


def test_a_case_left_by_an_interrupted_sweep_is_new_again_until_a_sweep_finishes(book: Ledger):
    # S1 (begun by the fixture) files the copy and is killed before it writes drafts: it never finishes
    case, _ = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    book.begin_sweep("S2", "2026-11-02T10:00:00Z", ["urls.txt"])
    again, change = _meet(book, "S2", "2026-11-02T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    assert again.case_id == case.case_id and change == "new"  # S2 writes the drafts S1 did not
    book.finish_sweep("S2", "2026-11-02T10:01:00Z", {})
    book.begin_sweep("S3", "2026-11-03T10:00:00Z", ["urls.txt"])
    _, change = _meet(book, "S3", "2026-11-03T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    assert change == "still-up"


def test_a_case_reported_since_the_interrupted_sweep_is_only_still_up(book: Ledger):
    case, _ = _meet(book, "S1", "2026-11-01T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    book.mark_case(case.case_id, "reported", "filed by hand")
    book.begin_sweep("S2", "2026-11-02T10:00:00Z", ["urls.txt"])
    _, change = _meet(book, "S2", "2026-11-02T10:00:05Z", "a" * 64, "https://shop.example/item/1")
    assert change == "still-up"
