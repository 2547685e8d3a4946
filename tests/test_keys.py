"""Tests for pipeline.keys: key files, permissions, sub-keys and signatures."""

from __future__ import annotations

import os
import pickle
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import keys
from pipeline.errors import KeyFileError


def test_write_and_load_round_trip_with_mode_0600(tmp_path):
    key = keys.generate()
    path = keys.write_key(key, tmp_path / "cfg" / "owner.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = keys.load_key(path)
    assert loaded.secret == key.secret
    assert loaded.fingerprint == key.fingerprint
    assert keys.load_public_key(path.with_name("owner.key.pub")).raw == key.public.raw
    assert keys.load_public_key(path).raw == key.public.raw


def test_refuses_to_overwrite_existing_key(tmp_path):
    path = keys.write_key(keys.generate(), tmp_path / "k")
    with pytest.raises(KeyFileError, match="already exists"):
        keys.write_key(keys.generate(), path)


def test_missing_key_says_how_to_make_one(tmp_path):
    with pytest.raises(KeyFileError, match="catalogmark keygen"):
        keys.load_key(tmp_path / "nope.key")


def test_world_readable_key_is_refused(tmp_path):
    path = keys.write_key(keys.generate(), tmp_path / "k")
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        keys.load_key(path)


@pytest.mark.parametrize("content", ["", "secret = 12", 'secret = "not base64!"', 'secret = "AAAA"', "\x00\x01"])
def test_malformed_key_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "k"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=str(path)):
        keys.load_key(path)


def test_env_var_overrides_default_path(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.ENV_KEY_FILE, str(tmp_path / "x.key"))
    assert keys.default_key_path() == tmp_path / "x.key"
    monkeypatch.delenv(keys.ENV_KEY_FILE)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert keys.default_key_path() == tmp_path / "xdg" / "catalogmark" / "owner.key"


def test_subkeys_differ_per_purpose_and_key(owner_key, other_key):
    assert owner_key.subkey("position") != owner_key.subkey("payload")
    assert owner_key.subkey("position") != other_key.subkey("position")
    assert owner_key.subkey("position") == owner_key.subkey("position")


def test_key_pickles_for_workers(owner_key):
    clone = pickle.loads(pickle.dumps(owner_key))
    assert clone.fingerprint == owner_key.fingerprint
    assert clone.sign(b"m") == owner_key.sign(b"m")


@given(st.binary(max_size=200))
def test_signatures_verify_only_for_the_signed_message_and_key(message):
    key = keys.OwnerKey(bytes(range(32)))
    other = keys.OwnerKey(bytes(range(1, 33)))
    sig = key.sign(message)
    assert key.public.verify(message, sig)
    assert not other.public.verify(message, sig)
    assert not key.public.verify(message + b"x", sig)


def test_secret_never_in_repr(owner_key):
    assert owner_key.secret.hex() not in repr(owner_key)
