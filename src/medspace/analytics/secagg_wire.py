"""The JSON messages of secure aggregation, with strict parsers.

`MaskedInput` (node -> hub, round 1); when nodes dropped, `SurvivorSet` (hub -> node)
and `Confirmation` (node -> hub), the consistency check; `UnmaskRequest` (hub -> node,
round 2) and `UnmaskReply` (node -> hub, round 2). Bytes travel as standard base64. Parsers check
types, sizes and key sets and raise `SecAggError` naming the sender, so a malformed
message is rejected at the boundary and the hub can report which node sent it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from medspace.analytics.secagg_errors import SecAggError

MASKED_FORMAT = "medspace-secagg-masked/1"
REQUEST_FORMAT = "medspace-secagg-unmask-request/1"
REPLY_FORMAT = "medspace-secagg-unmask-reply/1"
SURVIVORS_FORMAT = "medspace-secagg-survivors/1"
CONFIRM_FORMAT = "medspace-secagg-confirm/1"
DIGEST_BYTES = 32
TAG_BYTES = 32
MAX_NAME = 63


def encode_b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


class _Reader:
    """Reads fields of one message, raising `SecAggError` that names its sender."""

    def __init__(self, data: object, sender: str, what: str, fmt: str) -> None:
        self.sender, self.what = sender, what
        if not isinstance(data, Mapping):
            self.fail("is not a JSON object")
        self.data: Mapping[str, Any] = data
        if data.get("format") != fmt:
            self.fail(f"is not a {fmt} message")

    def fail(self, problem: str) -> NoReturn:
        raise SecAggError(
            f"the {self.what} from {self.sender} {problem}; the node's software may be out "
            "of date or the message was altered: it is left out of this round",
            nodes=[self.sender],
        )

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value or len(value) > 256:
            self.fail(f"has no valid {key!r}")
        return value

    def integer(self, key: str) -> int:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            self.fail(f"has no valid {key!r}")
        return int(value)

    def blob(self, key: str, size: int | None = None) -> bytes:
        return self._decode(key, self.data.get(key), size)

    def _decode(self, key: str, value: object, size: int | None) -> bytes:
        if not isinstance(value, str):
            self.fail(f"has no valid {key!r}")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.fail(f"has a {key!r} that is not base64")
        if size is not None and len(raw) != size:
            self.fail(f"has a {key!r} of the wrong size")
        return raw

    def names(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(
            isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in value
        ):
            self.fail(f"has no valid {key!r} list")
        names = tuple(value)
        if len(set(names)) != len(names):
            self.fail(f"repeats a node in {key!r}")
        return names

    def blobs(self, key: str, size: int | None = None) -> dict[str, bytes]:
        value = self.data.get(key)
        if not isinstance(value, Mapping):
            self.fail(f"has no valid {key!r} map")
        out: dict[str, bytes] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
                self.fail(f"has a bad node name in {key!r}")
            out[name] = self._decode(key, item, size)
        return out


@dataclass(frozen=True, slots=True)
class MaskedInput:
    """Round 1: a node's masked vector, its commitments and its encrypted self-mask shares."""

    node: str
    session: str
    round: int
    context: bytes
    masked: bytes
    self_commitment: bytes
    pair_commitments: dict[str, bytes]
    shares: dict[str, bytes]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form."""
        return {
            "format": MASKED_FORMAT,
            "node": self.node,
            "session": self.session,
            "round": self.round,
            "context": encode_b64(self.context),
            "masked": encode_b64(self.masked),
            "self_commitment": encode_b64(self.self_commitment),
            "pair_commitments": {k: encode_b64(v) for k, v in self.pair_commitments.items()},
            "shares": {k: encode_b64(v) for k, v in self.shares.items()},
        }

    @classmethod
    def from_dict(cls, data: object, sender: str) -> MaskedInput:
        """Parse a round-1 message received from `sender`."""
        r = _Reader(data, sender, "masked input", MASKED_FORMAT)
        return cls(
            node=r.text("node"),
            session=r.text("session"),
            round=r.integer("round"),
            context=r.blob("context", DIGEST_BYTES),
            masked=r.blob("masked"),
            self_commitment=r.blob("self_commitment", DIGEST_BYTES),
            pair_commitments=r.blobs("pair_commitments", DIGEST_BYTES),
            shares=r.blobs("shares"),
        )


@dataclass(frozen=True, slots=True)
class UnmaskRequest:
    """Round 2: who stayed and who dropped, the shares addressed to one node, and the
    digests of the masked inputs the hub holds (the node checks them against the shares)."""

    session: str
    round: int
    context: bytes
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    shares: dict[str, bytes]
    digests: dict[str, bytes]
    confirmations: dict[str, bytes]  # when nodes dropped: the survivors' tags to this node

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form."""
        return {
            "format": REQUEST_FORMAT,
            "session": self.session,
            "round": self.round,
            "context": encode_b64(self.context),
            "survivors": list(self.survivors),
            "dropped": list(self.dropped),
            "shares": {k: encode_b64(v) for k, v in self.shares.items()},
            "digests": {k: encode_b64(v) for k, v in self.digests.items()},
            "confirmations": {k: encode_b64(v) for k, v in self.confirmations.items()},
        }

    @classmethod
    def from_dict(cls, data: object, sender: str = "the hub") -> UnmaskRequest:
        """Parse an unmask request."""
        r = _Reader(data, sender, "unmask request", REQUEST_FORMAT)
        return cls(
            session=r.text("session"),
            round=r.integer("round"),
            context=r.blob("context", DIGEST_BYTES),
            survivors=r.names("survivors"),
            dropped=r.names("dropped"),
            shares=r.blobs("shares"),
            digests=r.blobs("digests", DIGEST_BYTES),
            confirmations=r.blobs("confirmations", TAG_BYTES),
        )


@dataclass(frozen=True, slots=True)
class UnmaskReply:
    """Round 2: a node's shares of the survivors' self-mask seeds and its pair seeds with
    the dropped nodes (never both for one node)."""

    node: str
    session: str
    round: int
    context: bytes
    self_mask_shares: dict[str, bytes]
    pair_seeds: dict[str, bytes]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form."""
        return {
            "format": REPLY_FORMAT,
            "node": self.node,
            "session": self.session,
            "round": self.round,
            "context": encode_b64(self.context),
            "self_mask_shares": {k: encode_b64(v) for k, v in self.self_mask_shares.items()},
            "pair_seeds": {k: encode_b64(v) for k, v in self.pair_seeds.items()},
        }

    @classmethod
    def from_dict(cls, data: object, sender: str) -> UnmaskReply:
        """Parse an unmask reply received from `sender`."""
        r = _Reader(data, sender, "unmask reply", REPLY_FORMAT)
        return cls(
            node=r.text("node"),
            session=r.text("session"),
            round=r.integer("round"),
            context=r.blob("context", DIGEST_BYTES),
            self_mask_shares=r.blobs("self_mask_shares"),
            pair_seeds=r.blobs("pair_seeds"),
        )


@dataclass(frozen=True, slots=True)
class SurvivorSet:
    """The consistency check, asked only when nodes dropped: the survivors U and dropped
    nodes D the hub will unmask with. Each node commits to one such set per round."""

    session: str
    round: int
    context: bytes
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form."""
        return {
            "format": SURVIVORS_FORMAT,
            "session": self.session,
            "round": self.round,
            "context": encode_b64(self.context),
            "survivors": list(self.survivors),
            "dropped": list(self.dropped),
        }

    @classmethod
    def from_dict(cls, data: object, sender: str = "the hub") -> SurvivorSet:
        """Parse a survivor set."""
        r = _Reader(data, sender, "survivor set", SURVIVORS_FORMAT)
        return cls(
            session=r.text("session"),
            round=r.integer("round"),
            context=r.blob("context", DIGEST_BYTES),
            survivors=r.names("survivors"),
            dropped=r.names("dropped"),
        )


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A node's confirmation of a survivor set: one tag for each other survivor, which
    only that survivor can check (`secagg_derive.confirm_tag`)."""

    node: str
    session: str
    round: int
    context: bytes
    tags: dict[str, bytes]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form."""
        return {
            "format": CONFIRM_FORMAT,
            "node": self.node,
            "session": self.session,
            "round": self.round,
            "context": encode_b64(self.context),
            "tags": {k: encode_b64(v) for k, v in self.tags.items()},
        }

    @classmethod
    def from_dict(cls, data: object, sender: str) -> Confirmation:
        """Parse a confirmation received from `sender`."""
        r = _Reader(data, sender, "survivor confirmation", CONFIRM_FORMAT)
        return cls(
            node=r.text("node"),
            session=r.text("session"),
            round=r.integer("round"),
            context=r.blob("context", DIGEST_BYTES),
            tags=r.blobs("tags", TAG_BYTES),
        )
