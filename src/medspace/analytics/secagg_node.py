"""The node's side of one secure-aggregation round: mask once, unmask at most once.

A `MaskingSession` lives for one (session, round) in the node's memory. `masked_input`
adds to the node's encoded vector x_i its self-mask PRG(b_i) and the pairwise masks
+PRG(s_ij) for peers j after it and -PRG(s_ij) for peers before it, Shamir-shares b_i
and encrypts each share to its peer. `unmask` answers the hub's round-2 request once:
shares of b_k for the survivors k, pair seeds s_ij for the dropped j, never both for one
node, and only when at least `threshold` nodes survived.

Each node commits to one survivor set U per round. With no dropouts, answering the
unmask request commits it to "everyone survived". When nodes dropped, the hub first
asks for a `confirm`ation of U (the consistency check of Bonawitz et al.), and a node
reveals pair seeds only when `threshold` survivors, itself included, confirmed that
same U with tags the hub cannot forge. A hub telling some nodes "X survived" (they
reveal X's self-mask shares) and others "X dropped" (they would reveal their pair seeds
with X) would need two disjoint groups of at least `threshold` nodes each: impossible
with a majority threshold.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medspace.analytics import secagg_ring as ring
from medspace.analytics import shamir
from medspace.analytics.secagg_derive import (
    SEED_BYTES,
    Context,
    confirm_tag,
    message_digest,
    pair_commitment,
    pair_seed,
    prg,
    self_mask_commitment,
    share_aad,
    share_key,
    shared_secret,
)
from medspace.analytics.secagg_errors import SecAggError
from medspace.analytics.secagg_peers import agreement_fingerprint, check_node_name
from medspace.analytics.secagg_wire import (
    DIGEST_BYTES,
    Confirmation,
    MaskedInput,
    SurvivorSet,
    UnmaskReply,
    UnmaskRequest,
)

NONCE_BYTES = 12


class AgreementKey:
    """A node's X25519 agreement key with its shared secrets and fingerprints remembered.

    The X25519 secret with a peer's pinned key is the same every round (what differs per
    round is the HKDF context), so a node that masks round after round (a session's
    statistics, a regression's iterations) computes it once per peer key.
    """

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self.public = key.public_key()
        self.fingerprint = agreement_fingerprint(self.public)
        self._secrets: dict[bytes, bytes] = {}
        self._prints: dict[bytes, str] = {}

    def fingerprint_of(self, peer: X25519PublicKey) -> str:
        """`agreement_fingerprint(peer)`, remembered."""
        raw = peer.public_bytes_raw()
        found = self._prints.get(raw)
        if found is None:
            found = self._prints[raw] = agreement_fingerprint(peer)
        return found

    def secret(self, peer: X25519PublicKey, peer_name: str) -> bytes:
        """The X25519 shared secret with `peer` (see `shared_secret`), remembered."""
        raw = peer.public_bytes_raw()
        found = self._secrets.get(raw)
        if found is None:
            found = self._secrets[raw] = shared_secret(self._key, peer, peer_name)
        return found


class MaskingSession:
    """One node in one secure-aggregation round (session id + round number).

    `peers` maps every other participant to its verified, pinned agreement key (see
    `verified_peers`); the participants are `node` and the peers. `threshold` defaults
    to max(2, floor(n/2) + 1). `allowed`, when given, is the set of nodes the approved
    agreement names: a peer outside it is refused. Raises `SecAggError` for a bad setup.
    """

    def __init__(
        self,
        node: str,
        agreement_key: X25519PrivateKey | AgreementKey,
        peers: Mapping[str, X25519PublicKey],
        session: str,
        round: int,
        threshold: int | None = None,
        *,
        allowed: Collection[str] | None = None,
    ) -> None:
        check_node_name(node)
        strangers = sorted(set(peers) - set(allowed)) if allowed is not None else []
        if strangers:
            raise SecAggError(
                f"{len(strangers)} participant(s) of this round are not nodes of the approved "
                "agreement: refusing to mask with them (a hub adding nodes could isolate "
                "this node's masks)",
                nodes=strangers,
            )
        own = (
            agreement_key
            if isinstance(agreement_key, AgreementKey)
            else AgreementKey(agreement_key)
        )
        others = {name: key for name, key in peers.items() if name != node}
        if node in peers and own.fingerprint_of(peers[node]) != own.fingerprint:
            raise SecAggError(
                f"the peer list gives {node} an agreement key that is not this node's own: "
                "the hub's announcements are stale or forged"
            )
        clones = sorted(
            n for n, key in others.items() if own.fingerprint_of(key) == own.fingerprint
        )
        if clones:
            raise SecAggError(
                f"{', '.join(clones)} announced the same agreement key as {node}: a copied "
                "node directory? Each node needs its own key: on the copy, delete "
                "agreement.key (a new one is made on first use) and re-announce",
                nodes=clones,
            )
        self.node = node
        self.context = Context.create(session, round, [node, *others], threshold)
        self._position = self.context.position(node)
        self._shared = {name: own.secret(key, name) for name, key in others.items()}
        self._seeds = {
            name: pair_seed(secret, self.context, node, name)
            for name, secret in self._shared.items()
        }
        self._own_share: bytes | None = None
        self._answered = False
        self._committed: frozenset[str] | None = None  # the one survivor set U of this round
        self._lock = threading.Lock()  # "at most once" must hold for concurrent requests

    @property
    def participants(self) -> tuple[str, ...]:
        """All participants, sorted (the masking order)."""
        return self.context.participants

    def masked_input(self, values: Sequence[int]) -> dict[str, Any]:
        """Round 1: mask the encoded vector (ring elements, see `encode_vector`).

        Callable once per session object (a fresh self-mask each time would let the hub
        difference two masked inputs). Returns the JSON-able round-1 message.
        """
        with self._lock:
            return self._masked_input(values)

    def _masked_input(self, values: Sequence[int]) -> dict[str, Any]:
        if self._own_share is not None:
            raise SecAggError(
                f"{self.node} already sent its masked input for this session and round: "
                "start a new round to send another"
            )
        x = ring.from_ints(values)
        length = len(x)
        if length == 0:
            raise SecAggError("an empty vector has nothing to aggregate")
        context = self.context
        b = os.urandom(SEED_BYTES)
        masked = ring.add(x, prg(b, length))
        for peer, seed in self._seeds.items():
            mask = prg(seed, length)
            masked = ring.add(masked, mask) if peer > self.node else ring.sub(masked, mask)
        masked_bytes = ring.to_bytes(masked)
        self_commitment = self_mask_commitment(b, context, self.node)
        pair_commitments = {
            peer: pair_commitment(seed, context, self.node, peer)
            for peer, seed in self._seeds.items()
        }
        digest = message_digest(
            context, self.node, masked_bytes, self_commitment, list(pair_commitments.items())
        )
        positions = {name: context.position(name) for name in context.participants}
        shares = shamir.split(int.from_bytes(b, "big"), list(positions.values()), context.threshold)
        encrypted: dict[str, bytes] = {}
        for peer, secret in self._shared.items():
            key = share_key(secret, context, self.node, peer)
            nonce = os.urandom(NONCE_BYTES)
            plaintext = shamir.share_to_bytes(shares[positions[peer]]) + digest
            encrypted[peer] = nonce + AESGCM(key).encrypt(
                nonce, plaintext, share_aad(context, self.node, peer)
            )
        self._own_share = shamir.share_to_bytes(shares[self._position])
        message = MaskedInput(
            node=self.node,
            session=context.session,
            round=context.round,
            context=context.digest,
            masked=masked_bytes,
            self_commitment=self_commitment,
            pair_commitments=pair_commitments,
            shares=encrypted,
        )
        return message.to_dict()

    def confirm(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The consistency check: commit to the hub's survivor set and return a tag for
        each other survivor. Refuses (`SecAggError`) a set other than one committed to
        before, one that leaves this node out, and fewer than `threshold` survivors."""
        with self._lock:
            if self._own_share is None:
                raise SecAggError(
                    f"{self.node} has no masked input in this round: nothing to confirm"
                )
            parsed = SurvivorSet.from_dict(request)
            survivors, _dropped = self._check_split(
                parsed.session, parsed.round, parsed.context, parsed.survivors, parsed.dropped
            )
            self._commit(survivors)
            tags = {
                peer: confirm_tag(self._shared[peer], self.context, self.node, peer, survivors)
                for peer in sorted(survivors - {self.node})
            }
            return Confirmation(
                self.node, self.context.session, self.context.round, self.context.digest, tags
            ).to_dict()

    def unmask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Round 2: answer the hub's unmask request, at most once per session object.

        Refuses (`SecAggError`) a second request, a request for another session, round
        or participant set, one that does not split the participants into survivors
        (including this node) and dropped nodes, fewer than `threshold` survivors, a
        share that does not decrypt (tampered, or made for another round), and a
        survivor whose masked input at the hub differs from the one it sent. A refused
        request reveals nothing; only an answered one counts.
        """
        with self._lock:
            return self._unmask(request)

    def _unmask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if self._own_share is None:
            raise SecAggError(f"{self.node} has no masked input in this round: nothing to unmask")
        if self._answered:
            raise SecAggError(
                f"{self.node} already answered an unmask request for this session and round; "
                "a second answer could reveal both masks of one node, so it is refused"
            )
        parsed = UnmaskRequest.from_dict(request)
        survivors, dropped = self._check_request(parsed)
        if dropped:
            self._check_confirmed(survivors, parsed.confirmations)
        else:
            self._commit(survivors)
        shares = {self.node: self._own_share}
        for owner in survivors:
            if owner != self.node:
                shares[owner] = self._open_share(owner, parsed)
        seeds = {peer: self._seeds[peer] for peer in dropped}
        self._answered = True
        reply = UnmaskReply(
            node=self.node,
            session=self.context.session,
            round=self.context.round,
            context=self.context.digest,
            self_mask_shares=shares,
            pair_seeds=seeds,
        )
        return reply.to_dict()

    def _check_split(
        self,
        session: str,
        round: int,
        context_digest: bytes,
        survivor_list: Sequence[str],
        dropped_list: Sequence[str],
    ) -> tuple[frozenset[str], frozenset[str]]:
        context = self.context
        if (session, round) != (context.session, context.round):
            raise SecAggError(
                f"the request is for another session or round than {self.node}'s "
                "masking session: refused"
            )
        if context_digest != context.digest:
            raise SecAggError(
                "the request names other participants or another threshold than "
                "this round was masked for: refused"
            )
        survivors, dropped = frozenset(survivor_list), frozenset(dropped_list)
        if survivors & dropped or survivors | dropped != set(context.participants):
            raise SecAggError(
                "the request must split the participants into survivors and dropped "
                "nodes, each node exactly once: refused"
            )
        if self.node not in survivors:
            raise SecAggError(f"the request lists {self.node} itself as dropped: refused")
        if len(survivors) < context.threshold:
            raise SecAggError(
                f"only {len(survivors)} nodes survived, fewer than the threshold "
                f"{context.threshold}: unmasking would expose too much, refused"
            )
        return survivors, dropped

    def _commit(self, survivors: frozenset[str]) -> None:
        if self._committed is not None and self._committed != survivors:
            raise SecAggError(
                f"{self.node} already committed to another survivor set in this round; the "
                "hub telling nodes different stories about who dropped could expose a "
                "node's masks, so it is refused"
            )
        self._committed = survivors

    def _check_confirmed(self, survivors: frozenset[str], tags: Mapping[str, bytes]) -> None:
        """Pair seeds leave only when `threshold` survivors, this node included (by its
        own `confirm`), committed to the same survivor set."""
        if self._committed != survivors:
            raise SecAggError(
                f"{self.node} did not confirm this survivor set: pair seeds of dropped nodes "
                "are revealed only after the consistency check, refused"
            )
        confirmed = 1 + sum(
            1
            for peer, tag in tags.items()
            if peer in survivors
            and peer != self.node
            and hmac.compare_digest(
                tag, confirm_tag(self._shared[peer], self.context, peer, self.node, survivors)
            )
        )
        if confirmed < self.context.threshold:
            raise SecAggError(
                f"only {confirmed} survivors confirmed this survivor set, fewer than the "
                f"threshold {self.context.threshold}: refused (a hub splitting the nodes' "
                "views of who dropped could expose a node's masks)"
            )

    def _check_request(self, request: UnmaskRequest) -> tuple[frozenset[str], frozenset[str]]:
        survivors, dropped = self._check_split(
            request.session, request.round, request.context, request.survivors, request.dropped
        )
        expected = survivors - {self.node}
        if set(request.shares) != expected or set(request.digests) != expected:
            raise SecAggError(
                "the unmask request must carry exactly one share and one digest for each "
                "other survivor: refused"
            )
        return survivors, dropped

    def _open_share(self, owner: str, request: UnmaskRequest) -> bytes:
        sealed = request.shares[owner]
        key = share_key(self._shared[owner], self.context, owner, self.node)
        try:
            plaintext = AESGCM(key).decrypt(
                sealed[:NONCE_BYTES],
                sealed[NONCE_BYTES:],
                share_aad(self.context, owner, self.node),
            )
        except (InvalidTag, ValueError):
            raise SecAggError(
                f"the self-mask share from {owner} does not decrypt for {self.node}: it was "
                "altered, or made for another session or round",
                nodes=[owner],
            ) from None
        if len(plaintext) != shamir.SHARE_BYTES + DIGEST_BYTES:
            raise SecAggError(f"the self-mask share from {owner} is malformed", nodes=[owner])
        share, digest = plaintext[: shamir.SHARE_BYTES], plaintext[shamir.SHARE_BYTES :]
        if digest != request.digests[owner]:
            raise SecAggError(
                f"the masked input the hub holds for {owner} is not the one {owner} sent: refused",
                nodes=[owner],
            )
        return share
