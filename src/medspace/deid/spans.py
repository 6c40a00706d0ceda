"""Spans of PHI found in text, and how overlapping finds are resolved."""

from __future__ import annotations

from dataclasses import dataclass

#: Entity types. The first eight are the gold-span types of docs/CONTRACTS.md.
PERSON = "PERSON"
ID = "ID"
PHONE = "PHONE"
DATE = "DATE"
ADDRESS = "ADDRESS"
ORGANIZATION = "ORGANIZATION"
EMAIL = "EMAIL"
AGE = "AGE"
URL = "URL"
IP = "IP"

ENTITY_TYPES: tuple[str, ...] = (
    PERSON,
    ID,
    PHONE,
    DATE,
    ADDRESS,
    ORGANIZATION,
    EMAIL,
    AGE,
    URL,
    IP,
)

#: When two finds overlap, the higher-ranked type names the merged span.
_RANK = {ID: 9, EMAIL: 8, URL: 8, IP: 8, PHONE: 7, DATE: 6, AGE: 5, PERSON: 4, ADDRESS: 3}
_RANK_DEFAULT = 2


@dataclass(frozen=True, slots=True)
class Span:
    """`text[start:end]` is PHI of `type`, found by `source` with confidence `score`."""

    start: int
    end: int
    type: str
    score: float = 1.0
    source: str = ""

    def __len__(self) -> int:
        return self.end - self.start


def _rank(span: Span) -> tuple[float, int, int]:
    return (span.score, _RANK.get(span.type, _RANK_DEFAULT), len(span))


def resolve(spans: list[Span]) -> list[Span]:
    """Merge overlapping spans into disjoint ones, sorted by start.

    De-identification must never leave part of a find in the clear, so overlapping spans
    are united; the merged span takes the type of its best member (score, then type rank,
    then length).
    """
    if not spans:
        return []
    ordered = sorted(spans, key=lambda s: (s.start, -s.end))
    out: list[Span] = []
    cur = ordered[0]
    best = cur
    for span in ordered[1:]:
        if span.start < cur.end:
            if _rank(span) > _rank(best):
                best = span
            if span.end > cur.end:
                cur = Span(cur.start, span.end, cur.type, cur.score, cur.source)
            continue
        out.append(Span(cur.start, cur.end, best.type, best.score, best.source))
        cur = best = span
    out.append(Span(cur.start, cur.end, best.type, best.score, best.source))
    return out
