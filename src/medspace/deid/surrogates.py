"""Consistent surrogates: realistic stand-ins chosen by a keyed hash.

Within one patient the same value always gets the same surrogate (the seed is
HMAC(key, patient, type, value)); names are mapped word by word, so "Mr. Smith" and
"John Smith" share the fake surname and 王先生 and 王秀英 share the fake surname.
Surrogates are built so they cannot be real identifiers: resident IDs start with region 9
(no such region exists), SSNs with area 000, e-mail and web addresses use example.org
(RFC 2606), IPs use documentation ranges (RFC 5737, RFC 3849).
"""

from __future__ import annotations

import random
import re

from medspace.deid.checksums import resident_id_check_char
from medspace.deid.keys import Keyring
from medspace.deid.recognizers.base import wordlist
from medspace.deid.spans import ADDRESS, AGE, EMAIL, ID, IP, ORGANIZATION, PERSON, PHONE, URL

_HAN = re.compile(r"[\u4e00-\u9fff]")


def _pool(name: str, *, keep: int | None = None) -> tuple[str, ...]:
    words = sorted(w for w in wordlist(name) if w.isalpha())
    return tuple(words[:keep] if keep else words)


class Surrogates:
    """Picks surrogates for one key; `patient` scopes consistency (None: global)."""

    def __init__(self, keyring: Keyring) -> None:
        self._keys = keyring
        self._cn_surnames = tuple(sorted(s for s in wordlist("cn_surnames.txt") if len(s) == 1))
        self._cn_given = tuple(sorted(wordlist("cn_given_chars.txt")))
        self._en_first = _pool("en_first_names.txt")
        self._en_last = _pool("en_surnames.txt")
        self._suffixes = ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Place")

    def _rng(self, patient: str | None, kind: str, value: str) -> random.Random:
        return random.Random(self._keys.surrogate_seed(patient or "", kind, value))

    def replace(self, entity: str, value: str, patient: str | None) -> str:
        """A surrogate for `value` of type `entity`, the same each time for this patient."""
        if entity == PERSON:
            return self.person(value, patient)
        if entity == ID:
            return self.identifier(value, patient)
        if entity == PHONE:
            return self._same_shape(value, patient, PHONE, keep_prefix=True)
        if entity == EMAIL:
            return (
                f"user{self._rng(patient, EMAIL, value.lower()).randrange(10**6):06d}@example.org"
            )
        if entity == URL:
            return f"https://example.org/{self._rng(patient, URL, value).randrange(16**8):08x}"
        if entity == IP:
            rng = self._rng(patient, IP, value)
            return (
                f"2001:db8::{rng.randrange(1, 0xFFFF):x}"
                if ":" in value
                else f"192.0.2.{rng.randrange(1, 255)}"
            )
        if entity == ADDRESS:
            return self.address(value, patient)
        if entity == ORGANIZATION:
            return self.organization(value, patient)
        if entity == AGE:
            return "90+"
        return f"[{entity}]"

    def person(self, value: str, patient: str | None) -> str:
        """A fake name in the script of `value`, mapped word by word."""
        if _HAN.search(value):
            return self._person_zh(value, patient)
        out: list[str] = []
        words = value.split()
        for i, word in enumerate(words):
            if re.fullmatch(r"[A-Z]\.?", word):
                rng = self._rng(patient, "initial", word)
                out.append(chr(ord("A") + rng.randrange(26)) + ("." if word.endswith(".") else ""))
                continue
            alone_first = word in self._en_first and word not in self._en_last
            is_first = i < len(words) - 1 or (len(words) == 1 and alone_first)
            pool = self._en_first if is_first else self._en_last
            out.append(self._pick(pool, patient, "first" if is_first else "last", word))
        return " ".join(out)

    def _person_zh(self, value: str, patient: str | None) -> str:
        compound = len(value) >= 3 and value[:2] in wordlist("cn_surnames.txt")
        slen = 2 if compound else 1
        surname, given = value[:slen], value[slen:]
        fake_surname = self._pick(self._cn_surnames, patient, "cn-surname", surname)
        rng = self._rng(patient, "cn-given", given)
        fake_given = "".join(rng.choice(self._cn_given) for _ in given)
        if given and fake_given == given:
            fake_given = "".join(rng.choice(self._cn_given) for _ in given)
        return fake_surname + fake_given

    def _pick(self, pool: tuple[str, ...], patient: str | None, kind: str, value: str) -> str:
        rng = self._rng(patient, kind, value)
        choice = rng.choice(pool)
        while choice == value and len(pool) > 1:
            choice = rng.choice(pool)
        return choice

    def identifier(self, value: str, patient: str | None) -> str:
        """Same layout; resident IDs get region 9xxxxx and a valid check digit."""
        compact = "".join(ch for ch in value if ch.isalnum())
        if len(compact) == 18 and compact[:17].isdigit():
            rng = self._rng(patient, "rid", compact.upper())
            # Birth date random too: the original's year could reveal an age over 89.
            body = "9" + "".join(str(rng.randrange(10)) for _ in range(5))
            body += (
                f"{rng.randrange(1950, 2006)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
            )
            body += "".join(str(rng.randrange(10)) for _ in range(3))
            fake = body + resident_id_check_char(body)
            return _relayout(value, fake)
        if re.fullmatch(r"[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}", value):
            rng = self._rng(patient, "ssn", compact)
            fake = "000" + "".join(str(rng.randrange(10)) for _ in range(6))
            return _relayout(value, fake)
        return self._same_shape(value, patient, ID, keep_prefix=False)

    def _same_shape(self, value: str, patient: str | None, kind: str, *, keep_prefix: bool) -> str:
        compact = "".join(ch for ch in value if ch.isalnum())
        for salt in range(8):
            rng = self._rng(patient, kind, f"{compact}\x00{salt}")
            out: list[str] = []
            kept = 0
            for ch in value:
                if ch.isdigit():
                    # Keep a '+country' code's first digit and a phone's leading digit.
                    if keep_prefix and kept == 0:
                        out.append(ch)
                    else:
                        out.append(str(rng.randrange(10)))
                    kept += 1
                elif ch.isalpha() and ch.isascii():
                    out.append(chr(ord("A" if ch.isupper() else "a") + rng.randrange(26)))
                else:
                    out.append(ch)
            fake = "".join(out)
            if fake != value:
                return fake
        return f"[{kind}]"

    def address(self, value: str, patient: str | None) -> str:
        """A fake address in the script of `value`."""
        rng = self._rng(patient, ADDRESS, value)
        if _HAN.search(value):
            g = self._cn_given
            city, district, road = ("".join(rng.choice(g) for _ in range(2)) for _ in range(3))
            return f"{city}市{district}区{road}路{rng.randrange(1, 300)}号"
        street = rng.choice(self._en_last)
        return f"{rng.randrange(1, 9999)} {street} {rng.choice(self._suffixes)}"

    def organization(self, value: str, patient: str | None) -> str:
        """A fake organisation keeping the kind word (医院, Hospital, Inc.)."""
        rng = self._rng(patient, ORGANIZATION, value)
        if _HAN.search(value):
            kind = next(
                (
                    k
                    for k in ("医院", "卫生院", "诊所", "有限公司", "公司", "大学", "学校")
                    if value.endswith(k)
                ),
                "单位",
            )
            g = self._cn_given
            return f"{rng.choice(g)}{rng.choice(g)}{kind}"
        last = value.split()[-1] if value.split() else "Group"
        return f"{rng.choice(self._en_last)} {last if last[:1].isupper() else 'Group'}"


def _relayout(original: str, fake_compact: str) -> str:
    """Put `fake_compact` into the separators of `original` (spaces, dashes), keeping x case."""
    out: list[str] = []
    it = iter(fake_compact)
    for ch in original:
        if ch.isalnum():
            nxt = next(it, "")
            out.append(nxt.lower() if ch == "x" and nxt == "X" else nxt)
        else:
            out.append(ch)
    return "".join(out)
