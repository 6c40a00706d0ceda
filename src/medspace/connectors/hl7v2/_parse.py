"""A small HL7 v2 parser: segments, delimiters from MSH-1/MSH-2, escape sequences.

Why not python-hl7: MedSpace needs per-message rejection with precise reasons, message
splitting across `\\r`, `\\n` and `\\r\\n` files, streaming over large feeds, and the full
escape set (v2.5 §2.7: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ and formatting commands); a
flat split-based parser does all of that in a hundred lines and stays fast.

Field numbering follows the standard: `Segment.field(n)` is SEG-n, so `msh.field(9)` is
MSH-9 even though MSH-1 is the field separator itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from medspace.connectors._unit import UnitRejected

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")

#: MSH-18 character set names (HL7 table 0211) -> Python codec. Empty means ASCII, which
#: UTF-8 decodes identically.
CHARSETS = {
    "": "utf-8",
    "ASCII": "utf-8",
    "ISO IR6": "utf-8",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "8859/1": "latin-1",
    "ISO IR100": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "BIG-5": "big5",
}


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The message's delimiters (MSH-1 and MSH-2); None where MSH-2 leaves one out."""

    field: str = "|"
    component: str | None = "^"
    repetition: str | None = "~"
    escape: str | None = "\\"
    subcomponent: str | None = "&"

    @classmethod
    def from_msh(cls, msh: str) -> Delimiters:
        """Read MSH-1 (the 4th character) and MSH-2 (up to the next field separator)."""
        if len(msh) < 4:
            raise UnitRejected("MSH-1: field separator missing")
        field = msh[3]
        if field.isalnum() or field.isspace():
            raise UnitRejected("MSH-1: field separator must be a punctuation character")
        encoding = msh[4:].split(field, 1)[0]
        if not encoding:
            raise UnitRejected("MSH-2: encoding characters missing")
        chars = [*encoding[:4]] + [None] * (4 - min(len(encoding), 4))
        used = [field] + [c for c in chars if c is not None]
        if len(set(used)) != len(used) or any(c.isalnum() or c.isspace() for c in used):
            raise UnitRejected("MSH-2: encoding characters must be distinct punctuation")
        return cls(field, chars[0], chars[1], chars[2], chars[3])


_FORMATTING = {".br": "\n", ".sp": "\n", "H": "", "N": ""}


@lru_cache(maxsize=64)
def _escape_pattern(d: Delimiters) -> re.Pattern[str] | None:
    if d.escape is None:
        return None
    e = re.escape(d.escape)
    return re.compile(f"{e}([^{e}]*){e}")


def unescape(text: str, d: Delimiters) -> str:
    """Resolve escape sequences in one leaf value (after splitting; v2.5 §2.7)."""
    if d.escape is None or d.escape not in text:
        return text
    pattern = _escape_pattern(d)
    assert pattern is not None
    table = {"F": d.field, "S": d.component, "T": d.subcomponent, "R": d.repetition, "E": d.escape}

    def one(m: re.Match[str]) -> str:
        token = m.group(1)
        if token in table and table[token] is not None:
            return str(table[token])
        if token in _FORMATTING:
            return _FORMATTING[token]
        head = token[:1]
        if head == "X" and len(token) > 1 and len(token) % 2 == 1:
            try:
                raw = bytes.fromhex(token[1:])
            except ValueError:
                return m.group(0)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("latin-1")
        if head in ("C", "M", "Z") or token[:1] == ".":
            return ""  # character-set switches, locally defined escapes, formatting
        return m.group(0)

    return pattern.sub(one, text)


class Segment:
    """One segment, split into fields; values are unescaped on access."""

    __slots__ = ("d", "fields", "id", "index")

    def __init__(self, text: str, d: Delimiters, index: int) -> None:
        self.id = text[:3]
        if _SEGMENT_ID.fullmatch(self.id) is None or text[3:4] not in ("", d.field):
            raise UnitRejected(
                f"segment {index}: does not start with a segment id (a line break inside a field?)"
            )
        self.d = d
        self.index = index
        self.fields = text.split(d.field)
        if self.id == "MSH":  # MSH-1 is the separator itself: shift so field(n) is MSH-n
            self.fields.insert(1, d.field)

    def where(self, n: int) -> str:
        """'OBX-5 (segment 4)': names a field for reasons."""
        return f"{self.id}-{n} (segment {self.index})"

    def field(self, n: int) -> str:
        """The raw (escaped) text of field n, "" when absent."""
        return self.fields[n] if n < len(self.fields) else ""

    def repetitions(self, n: int) -> list[str]:
        """The raw repetitions of field n ([] when empty)."""
        raw = self.field(n)
        if not raw:
            return []
        if self.d.repetition is None or (self.id == "MSH" and n == 2):
            return [raw]
        return raw.split(self.d.repetition)

    def components(self, raw: str) -> list[str]:
        """The unescaped components of one repetition (first subcomponent of each)."""
        parts = raw.split(self.d.component) if self.d.component else [raw]
        sub = self.d.subcomponent
        return [unescape(p.split(sub, 1)[0] if sub else p, self.d) for p in parts]

    def value(self, n: int, component: int = 1, repetition: int = 0) -> str | None:
        """Unescaped SEG-n.component of one repetition; None when empty or HL7 null ("").

        Hot path: splits only as far as needed and unescapes only the value returned."""
        raw = self.fields[n] if n < len(self.fields) else ""
        if not raw:
            return None
        d = self.d
        if d.repetition is not None and not (n == 2 and self.id == "MSH"):
            if repetition or d.repetition in raw:
                reps = raw.split(d.repetition)
                if repetition >= len(reps):
                    return None
                raw = reps[repetition]
        elif repetition:
            return None
        if d.component is not None and (component > 1 or d.component in raw):
            parts = raw.split(d.component, component)
            if component > len(parts):
                return None
            raw = parts[component - 1]
        elif component > 1:
            return None
        if d.subcomponent is not None and d.subcomponent in raw:
            raw = raw.split(d.subcomponent, 1)[0]
        if not raw or raw == '""':
            return None
        return unescape(raw, d)

    def text(self, n: int) -> str | None:
        """Field n as text: repetitions unescaped and joined by newlines (for ST/TX/FT,
        where component separators are part of the text only when escaped)."""
        reps = [unescape(r, self.d) for r in self.repetitions(n)]
        joined = "\n".join(r for r in reps if r != '""')
        return joined or None


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message: its segments in order, MSH first."""

    segments: tuple[Segment, ...]
    delimiters: Delimiters

    @property
    def msh(self) -> Segment:
        """The header segment."""
        return self.segments[0]


def charset_of(first_segment: bytes) -> str:
    """Python codec for the message, from MSH-18 read in the raw bytes (first repetition)."""
    if len(first_segment) < 4:
        return "utf-8"
    sep = first_segment[3:4]
    fields = first_segment.split(sep)
    name = fields[17] if len(fields) > 17 else b""
    rep = fields[1][1:2] if len(fields) > 1 and len(fields[1]) > 1 else b"~"
    name = name.split(rep, 1)[0].strip() if rep else name.strip()
    try:
        key = name.decode("ascii").upper()
    except UnicodeDecodeError:
        raise UnitRejected("MSH-18: character set name is not ASCII") from None
    try:
        return CHARSETS[key]
    except KeyError:
        raise UnitRejected("MSH-18: character set not supported; use UNICODE UTF-8") from None


def parse_message(segments: list[bytes]) -> Message:
    """Decode (charset per MSH-18, UTF-8 when none) and split one message's segments."""
    codec = charset_of(segments[0])
    try:
        texts = [s.decode(codec) for s in segments]
    except UnicodeDecodeError:
        if codec == "utf-8":
            raise UnitRejected(
                "message is not valid UTF-8 and MSH-18 names no other character set; "
                "set MSH-18 (e.g. 8859/1) or re-export as UTF-8"
            ) from None
        raise UnitRejected(f"message is not valid {codec} text (MSH-18)") from None
    d = Delimiters.from_msh(texts[0])
    return Message(tuple(Segment(t, d, i) for i, t in enumerate(texts, 1)), d)
