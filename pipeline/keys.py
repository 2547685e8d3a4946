"""The owner key: creation, safe storage, HKDF sub-keys and Ed25519 signing/verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.errors import KeyFileError
from pipeline.timefmt import now_iso

ENV_KEY_FILE = "CATALOGMARK_KEY_FILE"
KEY_FILE_VERSION = 1
_SALT = b"catalogmark/key/v1"


def default_key_path() -> Path:
    """``$CATALOGMARK_KEY_FILE``, else ``$XDG_CONFIG_HOME/catalogmark/owner.key``."""
    env = os.environ.get(ENV_KEY_FILE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "catalogmark" / "owner.key"


def _hkdf(secret: bytes, label: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=label.encode()).derive(secret)


def public_fingerprint(public_raw: bytes) -> str:
    """Short, stable fingerprint of an Ed25519 public key: ``cm1:`` + 32 hex chars of SHA-256."""
    return "cm1:" + hashlib.sha256(public_raw).hexdigest()[:32]


@dataclass(frozen=True)
class PublicKey:
    """The verifiable half of an owner key (safe to publish)."""

    raw: bytes

    @property
    def fingerprint(self) -> str:
        return public_fingerprint(self.raw)

    def pem(self) -> str:
        key = Ed25519PublicKey.from_public_bytes(self.raw)
        return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def verify(self, message: bytes, signature_b64: str) -> bool:
        try:
            sig = base64.b64decode(signature_b64, validate=True)
            Ed25519PublicKey.from_public_bytes(self.raw).verify(sig, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class OwnerKey:
    """One secret per owner; every other key is derived from it with HKDF and a purpose label.

    Picklable (it travels to worker processes); never written into outputs, logs or the ledger.
    """

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise KeyFileError("owner key secret must be 32 bytes")

    @cached_property
    def _signing(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(_hkdf(self.secret, "sign"))

    @cached_property
    def public(self) -> PublicKey:
        raw = self._signing.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey(raw)

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte sub-key for one purpose: "position", "payload", "invisible", "record", ..."""
        return _hkdf(self.secret, purpose)

    def mac(self, purpose: str, message: str | bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the sub-key for ``purpose``."""
        data = message.encode() if isinstance(message, str) else message
        return hmac.new(self.subkey(purpose), data, hashlib.sha256).digest()

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._signing.sign(message)).decode()

    def __reduce__(self):  # cached_property values hold unpicklable key objects
        return (OwnerKey, (self.secret,))


def generate() -> OwnerKey:
    return OwnerKey(os.urandom(32))


def write_key(key: OwnerKey, path: Path, *, overwrite: bool = False) -> Path:
    """Write the key file with mode 0600 (created that way, never world-readable) and a .pub beside it."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: a key file already exists; refusing to overwrite it (use --force)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = now_iso()
    text = (
        "# catalogmark owner key. Keep it secret and back it up: without it you cannot read your\n"
        "# invisible watermarks or prove new exports are yours.\n"
        f"version = {KEY_FILE_VERSION}\n"
        f'secret = "{base64.b64encode(key.secret).decode()}"\n'
        f'public_key = "{base64.b64encode(key.public.raw).decode()}"\n'
        f'fingerprint = "{key.fingerprint}"\n'
        f'created = "{created}"\n'
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    pub = path.with_name(path.name + ".pub")
    pub.write_text(key.public.pem())
    return path


def load_key(path: Path | None = None) -> OwnerKey:
    path = Path(path) if path else default_key_path()
    if not path.exists():
        raise KeyFileError(
            f"no owner key at {path}. Create one with `catalogmark keygen --key-file {path}` "
            f"(or point --key-file / ${ENV_KEY_FILE} at an existing key)"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: key file is readable by others (mode {mode:04o}); run `chmod 600 {path}`"
        )
    try:
        data = tomllib.loads(path.read_text())
        secret = base64.b64decode(data["secret"], validate=True)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a catalogmark key file ({exc.__class__.__name__}: {exc})") from exc
    if len(secret) != 32:
        raise KeyFileError(f"{path}: secret must decode to 32 bytes, got {len(secret)}")
    return OwnerKey(secret)


def load_public_key(path: Path) -> PublicKey:
    """Read a public key from a PEM file (as keygen writes beside the key) or from a key file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read public key ({exc.strerror})") from exc
    if b"BEGIN PUBLIC KEY" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFileError(f"{path}: malformed PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path}: not an Ed25519 public key")
        return PublicKey(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    try:
        parsed = tomllib.loads(data.decode())
        return PublicKey(base64.b64decode(parsed["public_key"], validate=True))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM public key or catalogmark key file") from exc
