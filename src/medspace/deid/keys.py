"""The de-identification key and what is derived from it.

One 32-byte secret per controller (a hospital node). Sub-keys are derived with HKDF-SHA256
(RFC 5869) under distinct labels so a leaked date-shift table says nothing about the
pseudonym key:

- ``siv``: AES-SIV (RFC 5297), deterministic authenticated encryption for *reversible*
  pseudonyms: the same value always gives the same token, and only this key turns the token
  back into the value;
- ``hmac``: HMAC-SHA256 for one-way keyed tokens (record ids, linkage inside an extract);
- ``shift``: HMAC-SHA256 of a patient id picks that patient's date offset;
- ``surrogate``: HMAC-SHA256 seeds the choice of fake names and numbers.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medspace.deid.errors import KeyMissingError, PseudonymError

KEY_BYTES = 32
_TOKEN_PREFIX = "psn."
_INFO = b"medspace-deid/v1/"


def _derive(master: bytes, label: str, length: int) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=_INFO + label.encode()
    ).derive(master)


@dataclass(frozen=True)
class DeidKey:
    """A controller's de-identification secret. Its repr never shows the bytes."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < KEY_BYTES:
            raise KeyMissingError(
                f"a de-identification key needs at least {KEY_BYTES} random bytes; "
                "create one with DeidKey.generate() or `openssl rand -hex 32`"
            )

    @classmethod
    def generate(cls) -> DeidKey:
        """A fresh random key (store it if pseudonyms must be reversed later)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_hex(cls, text: str) -> DeidKey:
        """Parse a hex-encoded key (64 hex digits or more)."""
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError:
            raise KeyMissingError(
                "the de-identification key is not hex; write 64 hex digits to the key file"
            ) from None
        return cls(raw)

    @classmethod
    def from_file(cls, path: Path) -> DeidKey:
        """Read a key file holding hex (as written by `write`) or raw bytes."""
        try:
            data = path.read_bytes()
        except OSError:
            raise KeyMissingError(
                "the de-identification key file cannot be read; check the path and permissions"
            ) from None
        try:
            return cls.from_hex(data.decode("ascii"))
        except (UnicodeDecodeError, KeyMissingError):
            return cls(data)

    def write(self, path: Path) -> None:
        """Write the key as hex to a new file readable only by its owner."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(self.secret.hex() + "\n")

    def subkey(self, label: str, length: int = 32) -> bytes:
        """The HKDF sub-key for one purpose."""
        return _derive(self.secret, label, length)


class Keyring:
    """Derived sub-keys of one `DeidKey`, computed once (HKDF per call would dominate)."""

    def __init__(self, key: DeidKey) -> None:
        self._siv = AESSIV(key.subkey("siv", 64))
        self._hmac = key.subkey("hmac")
        self._shift = key.subkey("shift")
        self._surrogate = key.subkey("surrogate")

    def pseudonym(self, value: str, domain: str) -> str:
        """Reversible token for `value` in `domain` (e.g. "mrn", "PERSON").

        Deterministic (AES-SIV), so equal values give equal tokens and joins still work;
        the domain is authenticated, so a token cannot be moved to another field.
        """
        sealed = self._siv.encrypt(value.encode("utf-8"), [domain.encode("utf-8")])
        body = base64.b32encode(sealed).decode("ascii").rstrip("=").lower()
        return _TOKEN_PREFIX + body

    def reidentify(self, token: str, domain: str) -> str:
        """Reverse `pseudonym`. Raises `PseudonymError` for a wrong key, domain or token."""
        if not token.startswith(_TOKEN_PREFIX):
            raise PseudonymError("not a MedSpace pseudonym: it must start with 'psn.'")
        body = token[len(_TOKEN_PREFIX) :].upper()
        body += "=" * (-len(body) % 8)
        try:
            sealed = base64.b32decode(body)
            return self._siv.decrypt(sealed, [domain.encode("utf-8")]).decode("utf-8")
        except (ValueError, InvalidTag, UnicodeDecodeError):
            raise PseudonymError(
                "the pseudonym does not open with this key and domain; use the controller's "
                "key and the field the pseudonym was made for"
            ) from None

    def token(self, value: str, domain: str, hex_chars: int = 32) -> str:
        """One-way keyed token (HMAC-SHA256, hex), valid as a FHIR id."""
        mac = hmac.new(self._hmac, domain.encode() + b"\x00" + value.encode("utf-8"), sha256)
        return mac.hexdigest()[:hex_chars]

    def shift_days(self, patient_id: str, max_days: int) -> int:
        """This patient's date offset in [-max_days, max_days], never 0."""
        digest = hmac.new(self._shift, patient_id.encode("utf-8"), sha256).digest()
        r = int.from_bytes(digest[:8], "big") % (2 * max_days)
        # r in [0, 2max): the lower half maps to [-max, -1], the upper half to [1, max].
        return r - max_days if r < max_days else r - max_days + 1

    def surrogate_seed(self, *parts: str) -> int:
        """A stable 64-bit seed for choosing a surrogate for these parts."""
        msg = b"\x00".join(p.encode("utf-8") for p in parts)
        return int.from_bytes(hmac.new(self._surrogate, msg, sha256).digest()[:8], "big")
