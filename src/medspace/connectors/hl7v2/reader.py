"""HL7 v2 reader: a file of messages, one after another, each one source unit.

Segments may be separated by `\\r` (the standard), `\\n` or `\\r\\n`, mixed; MLLP framing
bytes (0x0B, 0x1C) are tolerated. A message starts at each segment beginning with `MSH`.
Batch envelope segments (FHS, BHS, BTS, FTS) are not units and are passed over. Content
before the first MSH is one `Rejected` unit ("no MSH segment"). The file is read in chunks,
so memory is bounded by the largest message, not the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar

from medspace.connectors._io import open_binary
from medspace.connectors._unit import UnitRejected, UnitSkipped, reject_nul, unexpected
from medspace.connectors.base import ConnectorError, Outcome, Parsed, Rejected, Skipped
from medspace.connectors.hl7v2._map import map_message
from medspace.connectors.hl7v2._parse import parse_message
from medspace.connectors.registry import register_connector

_SEPARATOR = re.compile(rb"\r\n|\r|\n")
_FRAMING = b"\x0b\x1c\x00 \t"
_BATCH = frozenset({b"FHS", b"BHS", b"BTS", b"FTS"})
_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16  # bounded buffering: a 64 KiB read plus the current message

NO_MSH = "no MSH segment: content before the first message header"


def iter_segments(f: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, segment bytes) for each segment, across any line-ending style."""
    buffer = b""
    line = 1
    while True:
        data = f.read(_CHUNK)
        if not data:
            break
        buffer += data
        # A trailing \r may be the first half of \r\n: keep it for the next chunk.
        hold = buffer.endswith(b"\r")
        pieces = _SEPARATOR.split(buffer[:-1] if hold else buffer)
        for piece in pieces[:-1]:
            yield line, piece
            line += 1
        buffer = pieces[-1] + (b"\r" if hold else b"")
    if buffer:
        for piece in _SEPARATOR.split(buffer):
            yield line, piece
            line += 1


def iter_units(f: BinaryIO) -> Iterator[tuple[int, list[bytes], bool]]:
    """(first line, segments, starts with MSH) for each message or pre-MSH block."""
    current: list[bytes] = []
    start = 0
    is_message = False
    for line, raw in iter_segments(f):
        segment = raw.strip(_FRAMING)
        if line == 1 and segment.startswith(_BOM):
            segment = segment[len(_BOM) :].lstrip(_FRAMING)
        if not segment:
            continue
        if segment.startswith(b"MSH"):
            if current:
                yield start, current, is_message
            current, start, is_message = [segment], line, True
        elif segment[:3] in _BATCH:
            if current:
                yield start, current, is_message
            current = []
        else:
            if not current:
                start, is_message = line, False
            current.append(segment)
    if current:
        yield start, current, is_message


def message_outcome(source: str, position: str, segments: list[bytes]) -> Outcome:
    """One outcome for one message's segments."""
    raw = b"\r".join(segments)
    try:
        records = map_message(parse_message(segments))
        reject_nul(records)  # raw NUL bytes or \\X00\\ escapes
        return Parsed(source, position, records)
    except UnitRejected as exc:
        return Rejected(source, position, exc.reason, raw)
    except UnitSkipped as exc:
        return Skipped(source, position, exc.unit_type)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        return Rejected(source, position, unexpected("message", exc), raw)


@register_connector
class Hl7v2Connector:
    """HL7 v2 ADT^A01/A04/A08 and ORU^R01 messages (others are skipped by type)."""

    name: ClassVar[str] = "hl7v2"

    def read(self, path: Path) -> Iterator[Outcome]:
        """Yield one outcome per message (`position` "message N (line L)")."""
        source = str(path)
        count = 0
        with open_binary(path) as f:
            try:
                for line, segments, is_message in iter_units(f):
                    count += 1
                    position = f"message {count} (line {line})"
                    if not is_message:
                        yield Rejected(source, position, NO_MSH, b"\r".join(segments))
                        continue
                    yield message_outcome(source, position, segments)
            except (OSError, EOFError):
                raise ConnectorError(
                    f"{path}: reading stopped after message {count} (damaged gzip?); "
                    "outcomes so far stand, re-export the file for the rest"
                ) from None
