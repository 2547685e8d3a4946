"""Tests for config.load_complaints: the owner profile's [complaints] table (and load_owner accepting it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import COMPLAINTS_KEYS, load_complaints, load_owner
from pipeline.errors import ConfigError
from pipeline.sweep.models import ComplaintProfile

FULL = '''
[owner]
name = "File Studio"

[complaints]
signer = "Ada Lovelace"
email = "ada@file.example"
phone = "+44 20 7946 0000"
address = """
1 Example Street
London N1 1AA
"""
company = "File Studio Ltd"
acting_as = "agent"
copyright_registration = "VA 2-123-456"
aliexpress_ipr_id = "IPR-778899"
ebay_vero_id = "5551234"
own_listings = ["https://www.ebay.com/itm/123456789012", " 987654321098 ", ""]
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def test_keys_are_the_profile_fields() -> None:
    assert COMPLAINTS_KEYS == ("signer", "email", "phone", "address", "company", "acting_as",
                               "copyright_registration", "aliexpress_ipr_id", "ebay_vero_id", "own_listings")


def test_full_table(workdir: Path) -> None:
    (workdir / "catalogmark.toml").write_text(FULL)
    profile = load_complaints(cwd=workdir)
    assert profile == ComplaintProfile(
        signer="Ada Lovelace", email="ada@file.example", phone="+44 20 7946 0000",
        address="1 Example Street\nLondon N1 1AA", company="File Studio Ltd", acting_as="agent",
        copyright_registration="VA 2-123-456", aliexpress_ipr_id="IPR-778899", ebay_vero_id="5551234",
        own_listings=("https://www.ebay.com/itm/123456789012", "987654321098"))
    # load_owner skips the table (and still reads the owner)
    assert load_owner(cwd=workdir).name == "File Studio"


def test_pyproject_table(workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text(
        '[tool.catalogmark.owner]\nname = "Py"\n[tool.catalogmark.complaints]\nemail = "a@b.example"\n'
        'own_listings = "B0ABCDEF12"\n')
    assert load_complaints(cwd=workdir) == ComplaintProfile(email="a@b.example", own_listings=("B0ABCDEF12",))
    assert load_owner(cwd=workdir).name == "Py"


def test_explicit_config_file(workdir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('[owner]\nname = "X"\n[complaints]\nphone = "1"\n')
    (workdir / "catalogmark.toml").write_text('[complaints]\nphone = "2"\n')
    assert load_complaints(cfg, cwd=workdir).phone == "1"
    with pytest.raises(ConfigError, match="config file not found"):
        load_complaints(tmp_path / "nope.toml", cwd=workdir)


@pytest.mark.parametrize("text", ["", '[owner]\nname = "A"\n', "[complaints]\n"])
def test_no_file_or_no_table_is_an_empty_profile(text: str, workdir: Path) -> None:
    if text:
        (workdir / "catalogmark.toml").write_text(text)
    assert load_complaints(cwd=workdir) == ComplaintProfile()


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[complaints]\nemial = "a@b"\n', "[complaints] emial: unknown key (known: signer, email, phone, "),
        ('[complaints]\nemail = "ab.example"\n', "[complaints] email: expected an email address"),
        ('[complaints]\nemail = "a b@c"\n', "[complaints] email: expected an email address"),
        ('[complaints]\nacting_as = "lawyer"\n', "[complaints] acting_as: expected \"owner\" or \"agent\""),
        ("[complaints]\nphone = 5550100\n", "[complaints] phone: expected a string, got 5550100"),
        ("[complaints]\nown_listings = [1, 2]\n", "[complaints] own_listings: expected a list"),
        ('[complaints]\nsigner = "A\\nSIGNATURE: B"\n', "[complaints] signer: expected one line"),
        ('[complaints]\nown_listings = ["a\\u202eb"]\n', "[complaints] own_listings: expected one line"),
        ('[complaints]\naddress = "1 Street\\u0007"\n', "[complaints] address: expected one line"),
        ('complaints = "x"\n', "[complaints]: expected a table"),
    ],
)
def test_errors_name_file_table_and_key(text: str, expected: str, workdir: Path) -> None:
    cfg = workdir / "catalogmark.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_complaints(cwd=workdir)
    message = str(info.value)
    assert message.startswith(f"{cfg}: "), message
    assert expected in message, message


def test_pyproject_errors_show_tool_prefix(workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text('[tool.catalogmark.complaints]\nvero = "1"\n')
    with pytest.raises(ConfigError, match=r"\[tool\.catalogmark\.complaints\] vero: unknown key"):
        load_complaints(cwd=workdir)


def test_unknown_table_lists_complaints_as_known(workdir: Path) -> None:
    (workdir / "catalogmark.toml").write_text('[owner]\nname = "A"\n[complaint]\nemail = "a@b"\n')
    with pytest.raises(ConfigError, match=r"\[complaint\]: unknown table or key \(known: .*\[complaints\]"):
        load_owner(cwd=workdir)


def test_address_keeps_its_lines_but_not_blank_ones(workdir: Path) -> None:
    (workdir / "catalogmark.toml").write_text('[complaints]\naddress = "  1 Street \\n\\n  Town  \\n"\n')
    assert load_complaints(cwd=workdir).address == "1 Street\nTown"
