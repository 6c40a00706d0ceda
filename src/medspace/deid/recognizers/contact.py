"""E-mail addresses, URLs and IP addresses (HIPAA identifiers F, N and O)."""

from __future__ import annotations

import ipaddress
import re

from medspace.deid.recognizers.base import PatternRecognizer, register
from medspace.deid.spans import EMAIL, IP, URL, Span

_TLDS = r"(?:com|org|net|edu|gov|mil|int|info|biz|io|cn|uk|us|ca|de|fr|jp|hk|tw|au|health|med)"
# Found from the '@' or from the '.tld', then widened to the left in Python: patterns that
# start at a fixed character are far faster than ones that start with a repeated class.
_EMAIL_RIGHT = re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+-]")
_DOMAIN_RIGHT = re.compile(r"\." + _TLDS + r"(?:/[^\s<>\"'，。；）)]*)?(?![A-Za-z0-9@-])")
_DOMAIN_CHAR = re.compile(r"[A-Za-z0-9.-]")


def _ipv4(m: re.Match[str]) -> bool:
    try:
        ipaddress.IPv4Address(m.group(0))
    except ValueError:
        return False
    return True


def _ipv6(m: re.Match[str]) -> bool:
    text = m.group(0)
    if text.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _widen_left(text: str, start: int, allowed: re.Pattern[str]) -> int:
    while start > 0 and allowed.match(text, start - 1):
        start -= 1
    return start


class AddressBookRecognizer:
    """E-mail addresses and bare web domains (example.org/path)."""

    name = "email-domains"
    languages = frozenset({"zh", "en"})

    def find(self, text: str) -> list[Span]:
        """E-mails from their '@', domains from their top-level suffix."""
        out: list[Span] = []
        for m in _EMAIL_RIGHT.finditer(text):
            start = _widen_left(text, m.start(), _EMAIL_LOCAL)
            if start < m.start():
                out.append(Span(start, m.end(), EMAIL, 1.0, self.name))
        for m in _DOMAIN_RIGHT.finditer(text):
            start = _widen_left(text, m.start(), _DOMAIN_CHAR)
            if (
                start < m.start()
                and text[start] not in ".-"
                and (start == 0 or text[start - 1] != "@")
            ):
                out.append(Span(start, m.end(), URL, 0.7, self.name))
        return out


CONTACT_RECOGNIZER = (
    PatternRecognizer("contact", ("zh", "en"))
    .add(
        r"(?:https?://|HTTPS?://|ftp://|www\.|WWW\.)[^\s<>\"'，。；：、）)\]]+(?<![.,;:!?])",
        URL,
        score=0.95,
        not_after="[A-Za-z0-9]",
        needs=("://", "www.", "WWW."),
    )
    .add(
        r"[0-9][0-9]?[0-9]?\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9]|\.[0-9])",
        IP,
        score=0.9,
        check=_ipv4,
        not_after="[0-9.]",
        needs=(".",),
    )
    .add(
        r"[0-9A-Fa-f][0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])",
        IP,
        score=0.9,
        check=_ipv6,
        not_after="[0-9A-Fa-f:]",
        needs=(":",),
    )
)

register(CONTACT_RECOGNIZER)
register(AddressBookRecognizer())
