"""Password hashing with scrypt (RFC 7914), a memory-hard KDF from the standard library.

A stored hash is one self-describing string, so its cost can be raised later without
breaking old hashes: `$scrypt$ln=15,r=8,p=1$<salt>$<key>` (salt and key in unpadded
base64). `needs_rehash()` tells a login to re-hash with the current parameters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass

from medspace.identity.errors import IdentityError, InvalidUserError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_SALT_BYTES = 16
_KEY_BYTES = 32
_ENCODED = re.compile(
    r"\$scrypt\$ln=(?P<ln>\d{1,2}),r=(?P<r>\d{1,2}),p=(?P<p>\d{1,2})"
    r"\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<key>[A-Za-z0-9+/]+)"
)


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost: N = 2**log2_n, block size r, parallelism p.

    The default (N=2**15, r=8, p=1) needs 32 MiB and about 0.1 s per hash. Lower costs
    exist only so test suites stay fast; bounds keep a typo from disabling the KDF.
    """

    log2_n: int = 15
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not (10 <= self.log2_n <= 22 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise ValueError("scrypt parameters out of range: need 10<=log2_n<=22, r<=32, p<=16")

    def derive(self, password: bytes, salt: bytes) -> bytes:
        """Run scrypt with these parameters."""
        n = 2**self.log2_n
        # OpenSSL needs room for B (128*r*p) and V (128*r*(N+2)); add 1 MiB headroom.
        maxmem = 128 * self.r * (n + 2 + self.p) + 2**20
        return hashlib.scrypt(
            password, salt=salt, n=n, r=self.r, p=self.p, maxmem=maxmem, dklen=_KEY_BYTES
        )


DEFAULT_PARAMS = ScryptParams()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _password_bytes(password: str) -> bytes:
    if not isinstance(password, str):
        raise InvalidUserError("password must be text")
    # NFC so the same password typed on different keyboards (e.g. Chinese IMEs) matches.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def check_password_strength(password: str) -> None:
    """Raise `InvalidUserError` unless the password is MIN..MAX characters long."""
    if not isinstance(password, str):
        raise InvalidUserError("password must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUserError(
            f"password too short; choose one of at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUserError(f"password too long; use at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """Hash `password` with a fresh random salt; returns the self-describing encoded string.

    Raises `InvalidUserError` if the password is too short or too long.
    """
    check_password_strength(password)
    salt = os.urandom(_SALT_BYTES)
    key = params.derive(_password_bytes(password), salt)
    return f"$scrypt$ln={params.log2_n},r={params.r},p={params.p}${_b64(salt)}${_b64(key)}"


def _parse(encoded: str) -> tuple[ScryptParams, bytes, bytes]:
    match = _ENCODED.fullmatch(encoded) if isinstance(encoded, str) else None
    if match is None:
        raise IdentityError("stored password hash is malformed; reset the user's password")
    try:
        params = ScryptParams(int(match["ln"]), int(match["r"]), int(match["p"]))
        salt, key = _unb64(match["salt"]), _unb64(match["key"])
    except (ValueError, binascii.Error):
        raise IdentityError(
            "stored password hash has bad parameters or encoding; reset the user's password"
        ) from None
    if len(key) != _KEY_BYTES or len(salt) < _SALT_BYTES:
        raise IdentityError("stored password hash has a bad length; reset the user's password")
    return params, salt, key


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` matches `encoded`; compares in constant time.

    Raises `IdentityError` if `encoded` is not a hash this module wrote.
    """
    params, salt, key = _parse(encoded)
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    return hmac.compare_digest(params.derive(_password_bytes(password), salt), key)


def needs_rehash(encoded: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """True if `encoded` was made with other parameters than `params` (re-hash at login)."""
    return _parse(encoded)[0] != params
