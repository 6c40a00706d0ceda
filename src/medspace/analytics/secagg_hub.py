"""The hub's side of one secure-aggregation round: collect, ask to unmask, sum.

The `Aggregator` never sees a node's vector: it holds masked inputs y_i, and after
round 2 the self-mask seeds b_k of the survivors (reconstructed from `threshold`
shares) and the pair seeds between survivors and dropped nodes. From those it removes
exactly the masks that do not cancel in sum_{k in U} y_k, leaving sum_{k in U} x_k.

Every seed it uses is checked against a commitment its owner made in round 1, so a node
sending a wrong share or seed is named (`InconsistentSharesError.nodes`) instead of
silently corrupting the sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from medspace.analytics import secagg_ring as ring
from medspace.analytics import shamir
from medspace.analytics.secagg_derive import (
    SEED_BYTES,
    Context,
    message_digest,
    pair_commitment,
    prg,
    self_mask_commitment,
)
from medspace.analytics.secagg_errors import InconsistentSharesError, SecAggError
from medspace.analytics.secagg_wire import (
    Confirmation,
    MaskedInput,
    SurvivorSet,
    UnmaskReply,
    UnmaskRequest,
)

_SHARE_SIZE = 12 + shamir.SHARE_BYTES + 32 + 16  # nonce, share, digest, GCM tag


class Aggregator:
    """The hub's state for one (session, round) over `participants`.

    Use: `add_masked` for each round-1 message; once the deadline passed, when nodes
    dropped, `survivor_sets(dropped)` and `add_confirmation` for each reply (the
    consistency check); `unmask_requests(dropped)`; `add_unmask` for each reply;
    `total()` for the summed ring elements (decode them with `decode_vector`). Raises
    `SecAggError` naming the node for any malformed or inconsistent message; the node is
    then left out.
    """

    def __init__(
        self,
        participants: Iterable[str],
        threshold: int | None,
        length: int,
        session: str,
        round: int,
    ) -> None:
        self.context = Context.create(session, round, participants, threshold)
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise SecAggError("the vector length must be a positive integer")
        self.length = length
        self._masked: dict[str, MaskedInput] = {}
        self._digests: dict[str, bytes] = {}
        self._survivors: tuple[str, ...] | None = None
        self._dropped: tuple[str, ...] = ()
        self._replies: dict[str, UnmaskReply] = {}
        self._confirmations: dict[str, Confirmation] = {}
        self._disagreements: set[frozenset[str]] = set()

    @property
    def threshold(self) -> int:
        """The number of shares needed to rebuild a self-mask seed."""
        return self.context.threshold

    @property
    def received(self) -> frozenset[str]:
        """Nodes whose round-1 message was accepted."""
        return frozenset(self._masked)

    @property
    def survivors(self) -> tuple[str, ...]:
        """U, fixed by `unmask_requests` (empty before)."""
        return self._survivors or ()

    @property
    def dropped(self) -> tuple[str, ...]:
        """D, fixed by `unmask_requests`."""
        return self._dropped

    def add_masked(self, node: str, message: Mapping[str, Any]) -> None:
        """Accept a round-1 message from `node`; `SecAggError` naming it if unusable."""
        context = self.context
        if self._survivors is not None:
            raise SecAggError(
                f"the masked input of {node} came after round 2 started: left out", nodes=[node]
            )
        if node not in context.participants:
            raise SecAggError(f"{node} is not a participant of this round", nodes=[node])
        if node in self._masked:
            raise SecAggError(f"{node} sent a second masked input for this round", nodes=[node])
        parsed = MaskedInput.from_dict(message, node)
        if parsed.node != node:
            raise SecAggError(
                f"the masked input {node} sent is labelled for another node", nodes=[node]
            )
        if (parsed.session, parsed.round) != (context.session, context.round):
            raise SecAggError(
                f"the masked input of {node} was made for another session or round "
                "(a replay?): left out",
                nodes=[node],
            )
        if parsed.context != context.digest:
            raise SecAggError(
                f"{node} masked for other participants or another threshold than this round",
                nodes=[node],
            )
        size = len(parsed.masked)
        if size != self.length * ring.ELEMENT_BYTES:
            raise SecAggError(
                f"the masked vector of {node} has {size / ring.ELEMENT_BYTES:g} elements, "
                f"not {self.length}: left out",
                nodes=[node],
            )
        others = set(context.participants) - {node}
        if set(parsed.shares) != others or set(parsed.pair_commitments) != others:
            raise SecAggError(
                f"the masked input of {node} must carry one share and one pair commitment "
                "for each other participant",
                nodes=[node],
            )
        if any(len(sealed) != _SHARE_SIZE for sealed in parsed.shares.values()):
            raise SecAggError(f"a self-mask share of {node} has the wrong size", nodes=[node])
        for peer, earlier in self._masked.items():
            if earlier.pair_commitments[node] != parsed.pair_commitments[peer]:
                self._disagreements.add(frozenset((node, peer)))  # settled by `settle`
        self._masked[node] = parsed
        self._digests[node] = message_digest(
            context,
            node,
            parsed.masked,
            parsed.self_commitment,
            list(parsed.pair_commitments.items()),
        )

    def settle(self) -> dict[str, InconsistentSharesError]:
        """Leave out nodes until every two accepted nodes agree on their pair secrets;
        the nodes left out, each with why. Called by `survivor_sets` and
        `unmask_requests` too (then nothing more is left out).

        Two nodes whose pair commitments differ derived different pair secrets: one of
        them holds a wrong agreement key for the other (a stale pin, a swapped
        announcement) or lies, and the hub cannot tell which. The node that disagrees
        with the most others goes first, so a node lying about everyone is the one left
        out, not its honest peers; between two that disagree only with each other, the
        later one goes (the earlier reveals the seed it really used with it in round 2,
        so the sum stays exact). Neither is called the culprit.
        """
        left_out: dict[str, InconsistentSharesError] = {}
        if self._survivors is not None:
            return left_out
        while self._disagreements:
            count: dict[str, int] = {}
            for pair in self._disagreements:
                for name in pair:
                    count[name] = count.get(name, 0) + 1
            most = max(count.values())
            node = [n for n in self._masked if count.get(n) == most][-1]  # the latest
            peers = sorted(p for pair in self._disagreements if node in pair for p in pair - {node})
            left_out[node] = InconsistentSharesError(
                f"{node} derived pair secrets that differ from those of {', '.join(peers)}: "
                "one side holds a different agreement key for the other (stale pin or "
                f"swapped announcement) or misreports it. {node}'s input is left out of this "
                "round; check the agreement keys and pins of these nodes",
                nodes=[node, *peers],
            )
            del self._masked[node], self._digests[node]
            self._disagreements = {pair for pair in self._disagreements if node not in pair}
        return left_out

    def survivor_sets(self, dropped: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        """Fix survivors U and D (as `unmask_requests` does) and, when nodes dropped, build
        each survivor's consistency-check request; empty when nobody dropped (then the
        unmask requests need no confirmations)."""
        self._fix_survivors(dropped)
        if not self._dropped:
            return {}
        context = self.context
        request = SurvivorSet(
            context.session, context.round, context.digest, self.survivors, self._dropped
        ).to_dict()
        return {node: request for node in self.survivors}

    def add_confirmation(self, node: str, reply: Mapping[str, Any]) -> None:
        """Accept `node`'s confirmation of the survivor set; `SecAggError` naming it if
        unusable. (The hub cannot check the tags: only their recipients can.)"""
        if node not in self.survivors or not self._dropped:
            raise SecAggError(f"{node} was not asked to confirm survivors", nodes=[node])
        parsed = Confirmation.from_dict(reply, node)
        self._check_origin(node, parsed, "confirmation")
        if set(parsed.tags) != set(self.survivors) - {node}:
            raise SecAggError(
                f"the confirmation of {node} must hold one tag for each other survivor",
                nodes=[node],
            )
        self._confirmations[node] = parsed

    def unmask_requests(self, dropped: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        """Fix survivors U (received, not in `dropped`) and D, and build each survivor's
        round-2 request.

        Every participant that did not deliver an accepted masked input is dropped.
        Refuses (`SecAggError`) fewer than `threshold` survivors, and when nodes dropped,
        fewer than `threshold` confirmations of U (`survivor_sets`, `add_confirmation`).
        May be called again only with the same outcome (e.g. to resend after a lost
        message).
        """
        self._fix_survivors(dropped)
        context = self.context
        survivors = self.survivors
        if self._dropped and len(self._confirmations) < context.threshold:
            raise SecAggError(
                f"only {len(self._confirmations)} survivors confirmed who dropped; at least "
                f"{context.threshold} are needed before anyone reveals a pair seed: run the "
                "round again when more nodes are online"
            )
        requests: dict[str, dict[str, Any]] = {}
        for recipient in survivors:
            owners = [o for o in survivors if o != recipient]
            request = UnmaskRequest(
                session=context.session,
                round=context.round,
                context=context.digest,
                survivors=survivors,
                dropped=self._dropped,
                shares={o: self._masked[o].shares[recipient] for o in owners},
                digests={o: self._digests[o] for o in owners},
                confirmations={
                    signer: confirmation.tags[recipient]
                    for signer, confirmation in self._confirmations.items()
                    if signer != recipient
                },
            )
            requests[recipient] = request.to_dict()
        return requests

    def _fix_survivors(self, dropped: Iterable[str]) -> None:
        self.settle()
        context = self.context
        extra = set(dropped)
        unknown = extra - set(context.participants)
        if unknown:
            raise SecAggError(f"{len(unknown)} dropped node(s) are not participants of this round")
        survivors = tuple(p for p in context.participants if p in self._masked and p not in extra)
        if self._survivors is not None and survivors != self._survivors:
            raise SecAggError(
                "round 2 already started with other survivors; asking nodes again with a "
                "different split could expose a node's masks, so it is refused"
            )
        if len(survivors) < context.threshold:
            raise SecAggError(
                f"only {len(survivors)} of {len(context.participants)} nodes delivered a masked "
                f"input; at least {context.threshold} are needed to unmask the sum: run the "
                "round again when more nodes are online"
            )
        self._survivors = survivors
        self._dropped = tuple(p for p in context.participants if p not in survivors)

    def add_unmask(self, node: str, reply: Mapping[str, Any]) -> None:
        """Accept `node`'s round-2 reply; `SecAggError` naming it if unusable."""
        if self._survivors is None:
            raise SecAggError("no unmask request was sent yet: call unmask_requests first")
        if node not in self._survivors:
            raise SecAggError(f"{node} was not asked to unmask in this round", nodes=[node])
        if node in self._replies:
            raise SecAggError(f"{node} sent a second unmask reply", nodes=[node])
        parsed = UnmaskReply.from_dict(reply, node)
        self._check_origin(node, parsed, "unmask reply")
        context = self.context
        if set(parsed.self_mask_shares) != set(self._survivors) or set(parsed.pair_seeds) != set(
            self._dropped
        ):
            raise SecAggError(
                f"the unmask reply of {node} must hold a share for each survivor and a pair "
                "seed for each dropped node, nothing else",
                nodes=[node],
            )
        for owner, share in parsed.self_mask_shares.items():
            try:
                shamir.share_from_bytes(share)
            except shamir.ShareError:
                raise SecAggError(
                    f"{node} sent a malformed share of {owner}'s self-mask", nodes=[node]
                ) from None
        commitments = self._masked[node].pair_commitments
        for peer, seed in parsed.pair_seeds.items():
            if pair_commitment(seed, context, node, peer) != commitments[peer]:
                raise InconsistentSharesError(
                    f"the pair seed {node} revealed for {peer} does not match its round-1 "
                    "commitment",
                    nodes=[node],
                )
        self._replies[node] = parsed

    def _check_origin(self, node: str, parsed: Confirmation | UnmaskReply, what: str) -> None:
        context = self.context
        if parsed.node != node or (parsed.session, parsed.round, parsed.context) != (
            context.session,
            context.round,
            context.digest,
        ):
            raise SecAggError(
                f"the {what} of {node} was made for another node, session or round",
                nodes=[node],
            )

    def missing_replies(self) -> tuple[str, ...]:
        """Survivors whose unmask reply has not been accepted yet."""
        return tuple(s for s in self.survivors if s not in self._replies)

    def total(self) -> list[int]:
        """sum_{k in U} x_k mod 2^128, once enough survivors replied.

        Needs `threshold` replies when no node dropped, and every survivor's reply when
        some did (only survivor k can reveal its pair seed with a dropped node). Raises
        `SecAggError` otherwise, and `InconsistentSharesError` naming the nodes whose
        shares do not reconstruct a self-mask seed matching its commitment.
        """
        if self._survivors is None:
            raise SecAggError("round 2 has not started: call unmask_requests first")
        survivors, dropped = self._survivors, self._dropped
        missing = self.missing_replies()
        if dropped and missing:
            raise SecAggError(
                f"{len(missing)} survivor(s) did not answer round 2 while "
                f"{len(dropped)} node(s) dropped; their pair masks cannot be removed: run "
                "the round again without the missing nodes",
                nodes=missing,
            )
        if len(self._replies) < self.threshold:
            raise SecAggError(
                f"only {len(self._replies)} unmask replies, {self.threshold} are needed",
                nodes=missing,
            )
        total = ring.zeros(self.length)
        for node in survivors:
            total = ring.add(total, ring.from_bytes(self._masked[node].masked, self.length))
        bad: set[str] = set()
        for owner in survivors:
            seed = self._self_seed(owner, bad)
            if seed is not None:
                total = ring.sub(total, prg(seed, self.length))
        if bad:
            raise InconsistentSharesError(
                "self-mask shares from these nodes do not reconstruct the seed their owner "
                "committed to: the result is withheld; run the round again without them",
                nodes=bad,
            )
        for node, reply in self._replies.items():  # all survivors when some node dropped
            for peer, seed in reply.pair_seeds.items():
                mask = prg(seed, self.length)
                # survivor `node` added +PRG(s) for a later peer and -PRG(s) for an earlier one
                total = ring.sub(total, mask) if peer > node else ring.add(total, mask)
        return ring.to_ints(total)

    def _self_seed(self, owner: str, bad: set[str]) -> bytes | None:
        context = self.context
        points = {
            context.position(replier): shamir.share_from_bytes(reply.self_mask_shares[owner])
            for replier, reply in self._replies.items()
        }
        commitment = self._masked[owner].self_commitment

        def committed(secret: int) -> bool:
            if secret >= 1 << (8 * SEED_BYTES):
                return False
            seed = secret.to_bytes(SEED_BYTES, "big")
            return self_mask_commitment(seed, context, owner) == commitment

        found = shamir.find_consistent(points, context.threshold, committed)
        if found is None:
            bad.update([owner, *self._replies])  # cannot tell which: all are suspect
            return None
        secret, wrong = found
        bad.update(context.participants[x - 1] for x in wrong)
        return secret.to_bytes(SEED_BYTES, "big")
