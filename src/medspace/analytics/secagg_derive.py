"""Key derivation, the PRG and commitments of secure aggregation, all domain-separated.

Every derived value is bound to a `Context`: the session (task) id, the round number,
the sorted participant list and the threshold. A pair seed s_ij of one round therefore
says nothing about another round or task (HKDF outputs under different `info` are
independent), and nodes that were told different participant lists derive different
seeds, so their masks do not cancel and the hub learns nothing but noise.

- pair seed  s_ij = HKDF-SHA256(X25519(i, j), info = "pair-seed" || context || i || j)
  with i < j, the same at both ends (RFC 7748 §6.1, RFC 5869);
- share key  k_(o->r) = HKDF-SHA256(X25519(o, r), info = "share-key" || context || o || r),
  one per direction, the AES-256-GCM key for the self-mask share owner o sends to r;
- PRG(seed) = AES-256-CTR keyed by the 32-byte seed, zero IV, over 16 bytes per element
  (each seed keys exactly one stream);
- confirmation tag t_(i->j)(U) = HMAC-SHA256(HKDF(X25519(i, j), "confirm-key" || context
  || i || j), "survivors" || U): node i's word to node j that i committed to the
  survivor set U of this round (only i and j can make it, so the hub cannot forge it);
- commitments are SHA-256 over a label, the context and the committed value; the hub
  checks seeds and reconstructed self-masks against them. A commitment to a 256-bit
  uniformly random value reveals nothing of it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medspace.analytics.secagg_errors import SecAggError
from medspace.analytics.secagg_peers import check_node_name
from medspace.analytics.secagg_ring import ELEMENT_BYTES, Lanes

DOMAIN = b"medspace-secagg-v1"
SEED_BYTES = 32
MAX_PARTICIPANTS = 1 << 16  # the fixed-point headroom: sums of 65,536 values cannot wrap
_ZERO_IV = bytes(16)


def default_threshold(participants: int) -> int:
    """max(2, floor(n/2) + 1): a majority, and never fewer than two nodes."""
    return max(2, participants // 2 + 1)


def _field(value: bytes) -> bytes:
    """Length-prefixed field, so concatenations cannot be re-split differently."""
    return struct.pack(">I", len(value)) + value


@dataclass(frozen=True)
class Context:
    """What one masking round is bound to: session, round, participants, threshold."""

    session: str
    round: int
    participants: tuple[str, ...]
    threshold: int

    @classmethod
    def create(
        cls, session: str, round: int, participants: Iterable[str], threshold: int | None
    ) -> Context:
        """Check and build a context; `SecAggError` says what is wrong.

        At least two participants (the sum of one node is that node's value), and a
        threshold between a strict majority (so a hub that told nodes different dropout
        sets still cannot collect both masks of one node) and the number of participants.
        """
        names = tuple(sorted(check_node_name(p) for p in participants))
        if len(set(names)) != len(names):
            raise SecAggError("a node is listed twice among the participants")
        if len(names) < 2:
            raise SecAggError(
                "secure aggregation needs at least two participating nodes: the sum of one "
                "node is that node's own value"
            )
        if len(names) > MAX_PARTICIPANTS:
            raise SecAggError(f"at most {MAX_PARTICIPANTS} nodes can take part in one sum")
        if not isinstance(session, str) or not 0 < len(session) <= 256:
            raise SecAggError("the session id must be 1-256 characters")
        if isinstance(round, bool) or not isinstance(round, int) or not 0 <= round < 2**63:
            raise SecAggError("the round number must be a non-negative integer")
        n = len(names)
        t = default_threshold(n) if threshold is None else threshold
        if isinstance(t, bool) or not isinstance(t, int) or not default_threshold(n) <= t <= n:
            raise SecAggError(
                f"threshold {t} is not allowed for {n} nodes: use between "
                f"{default_threshold(n)} (a majority, at least 2) and {n}"
            )
        return cls(session, round, names, t)

    @cached_property
    def encoded(self) -> bytes:
        """The canonical bytes of the context."""
        parts = [_field(self.session.encode()), struct.pack(">QI", self.round, self.threshold)]
        parts += [_field(p.encode()) for p in self.participants]
        return _field(b"".join(parts))

    @cached_property
    def digest(self) -> bytes:
        """SHA-256 of the context, sent in messages so both ends can compare."""
        return hashlib.sha256(DOMAIN + b"/context" + self.encoded).digest()

    def position(self, node: str) -> int:
        """The node's 1-based position: its Shamir x-coordinate and its mask order."""
        return self.participants.index(node) + 1


def shared_secret(own: X25519PrivateKey, peer: X25519PublicKey, peer_name: str) -> bytes:
    """X25519 shared secret; `SecAggError` naming the peer for a low-order (all-zero) key."""
    try:
        return own.exchange(peer)
    except ValueError:
        raise SecAggError(
            f"the agreement key of {peer_name} is invalid (low-order point): "
            "refuse its announcement and ask its operator to re-create agreement.key",
            nodes=[peer_name],
        ) from None


def _hkdf(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info).derive(secret)


def pair_seed(shared: bytes, context: Context, a: str, b: str) -> bytes:
    """s_ab for this context; symmetric in a and b."""
    low, high = sorted((a, b))
    info = DOMAIN + b"/pair-seed" + context.encoded + _field(low.encode()) + _field(high.encode())
    return _hkdf(shared, info)


def share_key(shared: bytes, context: Context, owner: str, recipient: str) -> bytes:
    """The AES-256-GCM key for the self-mask share `owner` sends to `recipient`."""
    info = (
        DOMAIN
        + b"/share-key"
        + context.encoded
        + _field(owner.encode())
        + _field(recipient.encode())
    )
    return _hkdf(shared, info)


def share_aad(context: Context, owner: str, recipient: str) -> bytes:
    """Associated data of an encrypted share: the context, owner and recipient."""
    return (
        DOMAIN + b"/share" + context.encoded + _field(owner.encode()) + _field(recipient.encode())
    )


def confirm_tag(
    shared: bytes, context: Context, sender: str, recipient: str, survivors: Iterable[str]
) -> bytes:
    """`sender`'s word to `recipient` that it committed to `survivors` in this round."""
    key = _hkdf(
        shared,
        DOMAIN
        + b"/confirm-key"
        + context.encoded
        + _field(sender.encode())
        + _field(recipient.encode()),
    )
    message = DOMAIN + b"/survivors" + b"".join(_field(s.encode()) for s in sorted(survivors))
    return hmac.new(key, message, hashlib.sha256).digest()


def prg(seed: bytes, length: int) -> Lanes:
    """`length` pseudo-random ring elements from a 32-byte seed (AES-256-CTR, zero IV)."""
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_IV)).encryptor()
    stream = encryptor.update(bytes(length * ELEMENT_BYTES)) + encryptor.finalize()
    return np.frombuffer(stream, dtype="<u8").reshape(length, 2).astype(np.uint64)


def self_mask_commitment(seed: bytes, context: Context, node: str) -> bytes:
    """The commitment a node publishes to its self-mask seed b_i."""
    return hashlib.sha256(
        DOMAIN + b"/commit-self" + context.encoded + _field(node.encode()) + seed
    ).digest()


def pair_commitment(seed: bytes, context: Context, a: str, b: str) -> bytes:
    """The commitment to a pair seed; both ends of the pair compute the same value."""
    low, high = sorted((a, b))
    return hashlib.sha256(
        DOMAIN
        + b"/commit-pair"
        + context.encoded
        + _field(low.encode())
        + _field(high.encode())
        + seed
    ).digest()


def message_digest(
    context: Context,
    node: str,
    masked: bytes,
    self_commitment: bytes,
    pair_commitments: Sequence[tuple[str, bytes]],
) -> bytes:
    """SHA-256 of a masked input's content; each share carries it to its recipient."""
    h = hashlib.sha256(DOMAIN + b"/masked-input" + context.encoded + _field(node.encode()))
    h.update(_field(masked))
    h.update(self_commitment)
    for peer, commitment in sorted(pair_commitments):
        h.update(_field(peer.encode()) + commitment)
    return h.digest()
