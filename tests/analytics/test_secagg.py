"""Secure aggregation end to end in one process: nodes' MaskingSessions and the hub's
Aggregator exchanging their JSON messages, with dropouts and an adversarial hub or node.

The privacy tests (the hub's view does not depend on a node's data) are in
test_secagg_privacy.py.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.analytics.fixedpoint import RING
from medspace.analytics.secagg import (
    Aggregator,
    AgreementKey,
    InconsistentSharesError,
    MaskingSession,
    SecAggError,
    decode_vector,
    default_threshold,
    encode_vector,
)
from medspace.errors import MedSpaceError


@dataclass
class Network:
    """n nodes with agreement keys, one masking session each, and the hub's aggregator."""

    names: list[str]
    keys: dict[str, X25519PrivateKey]
    session: str = "task-1"
    round: int = 0
    threshold: int | None = None
    length: int = 4
    nodes: dict[str, MaskingSession] = field(default_factory=dict)
    hub: Aggregator | None = None

    @classmethod
    def of(cls, n: int, **options: Any) -> Network:
        names = [f"h{i}" for i in range(1, n + 1)]
        net = cls(names, {name: X25519PrivateKey.generate() for name in names}, **options)
        net.start()
        return net

    def publics(self) -> dict[str, X25519PublicKey]:
        return {name: key.public_key() for name, key in self.keys.items()}

    def start(self, session: str | None = None, round: int | None = None) -> Aggregator:
        self.session = session or self.session
        self.round = self.round if round is None else round
        publics = self.publics()
        self.nodes = {
            name: MaskingSession(
                name,
                self.keys[name],
                {p: k for p, k in publics.items() if p != name},
                self.session,
                self.round,
                self.threshold,
            )
            for name in self.names
        }
        self.hub = Aggregator(self.names, self.threshold, self.length, self.session, self.round)
        return self.hub

    @property
    def agg(self) -> Aggregator:
        assert self.hub is not None
        return self.hub

    def round1(self, vectors: dict[str, Sequence[int]]) -> dict[str, dict[str, Any]]:
        messages = {name: self.nodes[name].masked_input(v) for name, v in vectors.items()}
        for name, message in messages.items():
            self.agg.add_masked(name, message)
        return messages

    def confirm(self, dropped: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        """The consistency check (only when nodes dropped): each survivor confirms U."""
        checks = self.agg.survivor_sets(dropped)
        confirmations = {name: self.nodes[name].confirm(c) for name, c in checks.items()}
        for name, confirmation in confirmations.items():
            self.agg.add_confirmation(name, confirmation)
        return confirmations

    def round2(self, dropped: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        self.confirm(dropped)
        requests = self.agg.unmask_requests(dropped)
        replies = {name: self.nodes[name].unmask(req) for name, req in requests.items()}
        for name, reply in replies.items():
            self.agg.add_unmask(name, reply)
        return replies


def ring_sum(vectors: Iterable[Sequence[int]], length: int) -> list[int]:
    total = [0] * length
    for v in vectors:
        total = [(a + b) % RING for a, b in zip(total, v, strict=True)]
    return total


def random_values(rng: random.Random, length: int) -> list[float | int]:
    """Negatives, fractions, large and small magnitudes, and exact counts."""
    kinds = [
        lambda: rng.uniform(-1e6, 1e6),
        lambda: rng.uniform(-1, 1) * 1e-6,
        lambda: rng.randint(-(10**12), 10**12),
        lambda: rng.randint(0, 500),
        lambda: rng.choice([0.0, -0.0, 1.0, -1.0]),
    ]
    return [rng.choice(kinds)() for _ in range(length)]


def flip_b64(text: str, index: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


# --- the sum is exact --------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
def test_hub_gets_the_exact_sum_of_all_nodes(n: int) -> None:
    rng = random.Random(n)
    net = Network.of(n, length=25)
    values = {name: random_values(rng, 25) for name in net.names}
    encoded = {name: encode_vector(v) for name, v in values.items()}
    net.round1(encoded)
    net.round2()
    total = net.agg.total()
    assert total == ring_sum(encoded.values(), 25)
    decoded = decode_vector(total)
    for i, got in enumerate(decoded):
        expected = sum(values[name][i] for name in net.names)
        assert got == pytest.approx(expected, rel=1e-12, abs=n * 2.0**-40)


@settings(deadline=None, max_examples=30)
@given(st.data())
def test_any_dropout_pattern_within_the_threshold_gives_the_survivors_sum(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(min_value=2, max_value=6), label="nodes")
    length = data.draw(st.integers(min_value=1, max_value=5), label="length")
    net = Network.of(n, length=length)
    t = default_threshold(n)
    late = data.draw(st.integers(min_value=0, max_value=n - t), label="dropouts")
    gone = set(data.draw(st.permutations(net.names), label="order")[:late])
    element = st.integers(min_value=0, max_value=RING - 1)
    vectors = {
        name: data.draw(st.lists(element, min_size=length, max_size=length), label=name)
        for name in net.names
    }
    net.round1({name: v for name, v in vectors.items() if name not in gone})
    net.round2()
    assert net.agg.total() == ring_sum((v for k, v in vectors.items() if k not in gone), length)


def test_counts_sum_exactly_as_integers() -> None:
    net = Network.of(5, length=3)
    counts = {name: [i * 7, 1000 + i, 0] for i, name in enumerate(net.names)}
    net.round1({name: encode_vector(c) for name, c in counts.items()})
    net.round2()
    assert decode_vector(net.agg.total()) == [70.0, 5010.0, 0.0]


def test_masked_inputs_do_not_show_the_vector() -> None:
    net = Network.of(3, length=8)
    messages = net.round1({name: encode_vector([0] * 8) for name in net.names})
    for message in messages.values():
        masked = base64.b64decode(message["masked"])
        assert masked != bytes(len(masked))
        assert len(set(masked)) > 32  # looks random, not a zero vector


def test_messages_are_json_round_trippable() -> None:
    net = Network.of(3, length=2)
    for name in net.names:
        message = json.loads(json.dumps(net.nodes[name].masked_input(encode_vector([1, 2]))))
        net.agg.add_masked(name, message)
    requests = json.loads(json.dumps(net.agg.unmask_requests()))
    for name, request in requests.items():
        net.agg.add_unmask(name, json.loads(json.dumps(net.nodes[name].unmask(request))))
    assert decode_vector(net.agg.total()) == [3.0, 6.0]


# --- dropouts -------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7])
def test_every_allowed_number_of_dropouts_gives_the_survivors_exact_sum(n: int) -> None:
    rng = random.Random(100 + n)
    t = default_threshold(n)
    for dropouts in range(1, n - t + 1):
        net = Network.of(n, length=6, session=f"s-{n}-{dropouts}")
        gone = set(rng.sample(net.names, dropouts))
        encoded = {name: encode_vector(random_values(rng, 6)) for name in net.names}
        net.round1({name: v for name, v in encoded.items() if name not in gone})
        net.round2()
        assert set(net.agg.dropped) == gone
        assert net.agg.total() == ring_sum(
            (v for name, v in encoded.items() if name not in gone), 6
        )


def test_hub_may_drop_a_late_node_whose_input_arrived() -> None:
    net = Network.of(5)
    encoded = {name: encode_vector([1, 2, 3, 4]) for name in net.names}
    net.round1(encoded)
    net.round2(dropped=["h2"])
    assert decode_vector(net.agg.total()) == [4.0, 8.0, 12.0, 16.0]


def test_too_many_dropouts_are_refused_by_the_hub() -> None:
    net = Network.of(5)  # threshold 3
    net.round1({name: encode_vector([1, 1, 1, 1]) for name in ["h1", "h2"]})
    with pytest.raises(SecAggError, match="at least 3 are needed"):
        net.agg.unmask_requests()


def test_too_many_dropouts_are_refused_by_the_node() -> None:
    net = Network.of(5)
    net.round1({name: encode_vector([1, 1, 1, 1]) for name in net.names})
    request = net.agg.unmask_requests()["h1"]
    forged = {**request, "survivors": ["h1", "h2"], "dropped": ["h3", "h4", "h5"]}
    with pytest.raises(SecAggError, match="fewer than the threshold 3"):
        net.nodes["h1"].unmask(forged)


def test_without_dropouts_threshold_many_replies_suffice() -> None:
    net = Network.of(5)
    net.round1({name: encode_vector([2, 0, 0, 1]) for name in net.names})
    requests = net.agg.unmask_requests()
    for name in ["h1", "h3", "h5"]:
        net.agg.add_unmask(name, net.nodes[name].unmask(requests[name]))
    assert decode_vector(net.agg.total()) == [10.0, 0.0, 0.0, 5.0]


def test_a_survivor_missing_in_round_two_after_dropouts_is_named() -> None:
    net = Network.of(5)
    net.round1({name: encode_vector([1, 1, 1, 1]) for name in net.names if name != "h5"})
    net.confirm()
    requests = net.agg.unmask_requests()
    for name in ["h1", "h2", "h3"]:
        net.agg.add_unmask(name, net.nodes[name].unmask(requests[name]))
    with pytest.raises(SecAggError, match="did not answer round 2") as caught:
        net.agg.total()
    assert caught.value.nodes == ("h4",)


# --- setup refusals --------------------------------------------------------------


def test_a_peer_with_this_nodes_own_agreement_key_is_refused() -> None:
    key = X25519PrivateKey.generate()
    other = X25519PrivateKey.generate().public_key()
    with pytest.raises(SecAggError, match="copied node directory") as caught:
        MaskingSession("h1", key, {"h2": key.public_key(), "h3": other}, "s", 0)
    assert caught.value.nodes == ("h2",)


def test_a_remembered_agreement_key_masks_round_after_round_like_the_raw_key() -> None:
    """`AgreementKey` keeps X25519 secrets across rounds; the masks must still cancel
    against peers that derive them afresh, in every round."""
    net = Network.of(4, length=3)
    remembered = {name: AgreementKey(key) for name, key in net.keys.items()}
    publics = net.publics()
    for round_no in range(3):
        net.start(round=round_no)
        net.nodes["h1"] = MaskingSession(
            "h1",
            remembered["h1"],
            {p: k for p, k in publics.items() if p != "h1"},
            net.session,
            round_no,
        )
        vectors = {name: [round_no, i, 7] for i, name in enumerate(net.names)}
        net.round1(vectors)
        net.round2()
        assert net.agg.total() == ring_sum(vectors.values(), 3)


def test_a_remembered_agreement_key_still_refuses_a_clone_and_a_foreign_own_key() -> None:
    key = AgreementKey(X25519PrivateKey.generate())
    other = X25519PrivateKey.generate().public_key()
    with pytest.raises(SecAggError, match="copied node directory"):
        MaskingSession("h1", key, {"h2": key.public, "h3": other}, "s", 0)
    with pytest.raises(SecAggError, match="not this node's own"):
        MaskingSession("h1", key, {"h1": other, "h2": other}, "s", 0)


def test_a_peer_outside_the_approved_agreement_is_refused() -> None:
    net = Network.of(4)
    publics = net.publics()
    peers = {p: k for p, k in publics.items() if p != "h1"}
    with pytest.raises(SecAggError, match="not nodes of the approved agreement") as caught:
        MaskingSession("h1", net.keys["h1"], peers, "s", 0, allowed={"h1", "h2", "h3"})
    assert caught.value.nodes == ("h4",)
    MaskingSession("h1", net.keys["h1"], peers, "s", 0, allowed={"h1", "h2", "h3", "h4", "h5"})


def test_an_empty_vector_is_refused() -> None:
    net = Network.of(3)
    with pytest.raises(SecAggError, match="empty vector"):
        net.nodes["h1"].masked_input([])


def test_one_node_alone_is_refused() -> None:
    key = X25519PrivateKey.generate()
    with pytest.raises(SecAggError, match="at least two participating nodes"):
        MaskingSession("h1", key, {}, "s", 0)
    with pytest.raises(SecAggError, match="at least two"):
        Aggregator(["h1"], None, 3, "s", 0)


@pytest.mark.parametrize(
    ("n", "threshold"),
    [
        (5, 2),  # below a majority: a lying hub could collect both masks of a node
        (4, 2),  # 2 of 4 is not a strict majority
        (3, 4),  # more than the participants can never be met
        (2, 1),  # one share would be the seed itself
    ],
)
def test_unsafe_thresholds_are_refused(n: int, threshold: int) -> None:
    with pytest.raises(SecAggError, match="threshold"):
        Aggregator([f"h{i}" for i in range(n)], threshold, 3, "s", 0)


def test_default_threshold_is_a_majority_of_at_least_two() -> None:
    assert [default_threshold(n) for n in range(2, 9)] == [2, 2, 3, 3, 4, 4, 5]


def test_errors_are_medspace_errors() -> None:
    assert issubclass(SecAggError, MedSpaceError)
    assert issubclass(InconsistentSharesError, SecAggError)


# --- a node answers once, never both masks --------------------------------------


def test_a_node_refuses_a_second_unmask_request() -> None:
    net = Network.of(4)
    net.round1({name: encode_vector([1, 2, 3, 4]) for name in net.names})
    request = net.agg.unmask_requests()["h2"]
    net.nodes["h2"].unmask(request)
    with pytest.raises(SecAggError, match="already answered"):
        net.nodes["h2"].unmask(request)
    other_split = {**request, "survivors": ["h1", "h2", "h3"], "dropped": ["h4"]}
    with pytest.raises(SecAggError, match="already answered"):
        net.nodes["h2"].unmask(other_split)


def test_concurrent_unmask_requests_get_one_answer() -> None:
    net = Network.of(4)
    net.round1({name: encode_vector([1, 2, 3, 4]) for name in net.names})
    request = net.agg.unmask_requests()["h2"]
    other_split = {**request, "survivors": ["h1", "h2", "h3"], "dropped": ["h4"]}
    other_split["shares"] = {k: v for k, v in request["shares"].items() if k != "h4"}
    other_split["digests"] = {k: v for k, v in request["digests"].items() if k != "h4"}
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def ask(req: dict[str, Any]) -> None:
        start.wait()
        try:
            net.nodes["h2"].unmask(req)
            outcomes.append("answered")
        except SecAggError:
            outcomes.append("refused")

    threads = [threading.Thread(target=ask, args=(r,)) for r in (request, other_split)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["answered", "refused"]


def test_a_node_masks_only_once_per_round() -> None:
    net = Network.of(3)
    net.nodes["h1"].masked_input(encode_vector([1, 2, 3, 4]))
    with pytest.raises(SecAggError, match="already sent its masked input"):
        net.nodes["h1"].masked_input(encode_vector([5, 6, 7, 8]))


def test_a_node_listed_as_both_survivor_and_dropped_is_refused() -> None:
    net = Network.of(4)
    net.round1({name: encode_vector([1, 2, 3, 4]) for name in net.names})
    request = net.agg.unmask_requests()["h1"]
    forged = {**request, "dropped": ["h2"]}  # h2 stays among the survivors too
    with pytest.raises(SecAggError, match="each node exactly once"):
        net.nodes["h1"].unmask(forged)


def test_the_hub_cannot_ask_again_with_another_split() -> None:
    net = Network.of(5)
    net.round1({name: encode_vector([1, 2, 3, 4]) for name in net.names})
    first = net.agg.unmask_requests()
    assert net.agg.unmask_requests() == first  # a resend is the same request
    with pytest.raises(SecAggError, match="already started with other survivors"):
        net.agg.unmask_requests(dropped=["h1"])


def test_the_hubs_unmask_view_never_holds_both_masks_of_a_node() -> None:
    rng = random.Random(7)
    for trial in range(12):
        n = rng.randint(3, 7)
        net = Network.of(n, session=f"view-{trial}")
        t = default_threshold(n)
        gone = set(rng.sample(net.names, rng.randint(0, n - t)))
        net.round1({name: encode_vector([trial] * 4) for name in net.names if name not in gone})
        replies = net.round2()
        share_owners = {owner for r in replies.values() for owner in r["self_mask_shares"]}
        seed_peers = {peer for r in replies.values() for peer in r["pair_seeds"]}
        assert share_owners == set(net.names) - gone
        assert seed_peers == gone
        assert not share_owners & seed_peers


def _told(net: Network, recipient: str, survivors: Sequence[str], **extra: Any) -> dict[str, Any]:
    """A malicious hub's unmask request telling `recipient` that only `survivors` survived."""
    request = net.agg.unmask_requests()[recipient]
    dropped = [n for n in net.names if n not in survivors]
    owners = [o for o in survivors if o != recipient]
    return {
        **request,
        "survivors": list(survivors),
        "dropped": dropped,
        "shares": {
            o: base64.b64encode(net.agg._masked[o].shares[recipient]).decode() for o in owners
        },
        "digests": {o: request["digests"][o] for o in owners},
        **extra,
    }


def _survivor_set(net: Network, survivors: Sequence[str]) -> dict[str, Any]:
    request = net.agg.unmask_requests()["h1"]
    return {
        "format": "medspace-secagg-survivors/1",
        "session": request["session"],
        "round": request["round"],
        "context": request["context"],
        "survivors": list(survivors),
        "dropped": [n for n in net.names if n not in survivors],
    }


def test_a_hub_telling_nodes_different_dropout_stories_gets_no_pair_seed() -> None:
    # The split-view attack on h1: h2 and h3 are told everyone survived (they reveal
    # shares of h1's self-mask), h4 and h5 are told h1 dropped (they would reveal their
    # pair seeds with h1), and h1 is told h2 and h3 dropped. Together: h1's vector.
    net = Network.of(5)
    net.round1({name: encode_vector([7, 7, 7, 7]) for name in net.names})
    for name in ("h2", "h3"):
        net.nodes[name].unmask(net.agg.unmask_requests()[name])  # committed: all survived
    without_h1 = ["h2", "h3", "h4", "h5"]
    for name in ("h2", "h3"):
        with pytest.raises(SecAggError, match="already committed to another survivor set"):
            net.nodes[name].confirm(_survivor_set(net, without_h1))
    tags = {n: net.nodes[n].confirm(_survivor_set(net, without_h1))["tags"] for n in ("h4", "h5")}
    with pytest.raises(SecAggError, match="only 2 survivors confirmed"):
        net.nodes["h4"].unmask(_told(net, "h4", without_h1, confirmations={"h5": tags["h5"]["h4"]}))
    # h1 itself, told h2 and h3 dropped, finds no majority for that story either
    with pytest.raises(SecAggError, match="did not confirm this survivor set"):
        net.nodes["h1"].unmask(_told(net, "h1", ["h1", "h4", "h5"]))
    with pytest.raises(SecAggError, match="already committed"):
        net.nodes["h4"].confirm(_survivor_set(net, ["h1", "h4", "h5"]))


def test_a_confirmed_story_locks_the_node_out_of_revealing_another() -> None:
    # The same attack in the other order: a majority confirms "h1 dropped" first; then
    # nobody of that majority reveals shares of h1's self-mask under "all survived".
    net = Network.of(5)
    net.round1({name: encode_vector([7, 7, 7, 7]) for name in net.names})
    without_h1 = ["h2", "h3", "h4", "h5"]
    for name in without_h1[:3]:
        net.nodes[name].confirm(_survivor_set(net, without_h1))
    for name in without_h1[:3]:
        with pytest.raises(SecAggError, match="already committed"):
            net.nodes[name].unmask(net.agg.unmask_requests()[name])


def test_survivor_confirmations_cannot_be_forged_by_the_hub() -> None:
    net = Network.of(5)
    net.round1({name: encode_vector([1, 1, 1, 1]) for name in net.names if name != "h5"})
    net.confirm()
    honest = net.agg.unmask_requests()["h1"]
    forged = {n: base64.b64encode(bytes(32)).decode() for n in honest["confirmations"]}
    with pytest.raises(SecAggError, match="only 1 survivors confirmed"):
        net.nodes["h1"].unmask({**honest, "confirmations": forged})
    # a tag h2 made for h3 does not count at h1
    replayed = {"h2": net.agg.unmask_requests()["h3"]["confirmations"]["h2"]}
    with pytest.raises(SecAggError, match="only 1 survivors confirmed"):
        net.nodes["h1"].unmask({**honest, "confirmations": replayed})
    net.agg.add_unmask("h1", net.nodes["h1"].unmask(honest))  # the real ones do


def test_the_hub_asks_for_no_confirmation_when_nobody_dropped() -> None:
    net = Network.of(3)
    net.round1({name: encode_vector([1, 1, 1, 1]) for name in net.names})
    assert net.agg.survivor_sets() == {}
    net.round2()
    assert decode_vector(net.agg.total()) == [3.0, 3.0, 3.0, 3.0]


def test_the_hub_needs_a_threshold_of_confirmations_before_it_asks_for_pair_seeds() -> None:
    net = Network.of(5)  # threshold 3
    net.round1({name: encode_vector([1, 1, 1, 1]) for name in net.names if name != "h5"})
    checks = net.agg.survivor_sets()
    for name in ("h1", "h2"):
        net.agg.add_confirmation(name, net.nodes[name].confirm(checks[name]))
    with pytest.raises(SecAggError, match="only 2 survivors confirmed who dropped"):
        net.agg.unmask_requests()


# --- tampering, replay, bad data ------------------------------------------------


def test_a_tampered_masked_vector_is_caught_by_the_peers() -> None:
    net = Network.of(3)
    messages = {
        name: net.nodes[name].masked_input(encode_vector([1, 2, 3, 4])) for name in net.names
    }
    messages["h2"]["masked"] = flip_b64(messages["h2"]["masked"], 5)
    for name, message in messages.items():
        net.agg.add_masked(name, message)
    request = net.agg.unmask_requests()["h1"]
    with pytest.raises(SecAggError, match="not the one h2 sent") as caught:
        net.nodes["h1"].unmask(request)
    assert caught.value.nodes == ("h2",)


def test_a_tampered_share_does_not_decrypt() -> None:
    net = Network.of(3)
    messages = {
        name: net.nodes[name].masked_input(encode_vector([1, 2, 3, 4])) for name in net.names
    }
    messages["h3"]["shares"]["h1"] = flip_b64(messages["h3"]["shares"]["h1"], 20)
    for name, message in messages.items():
        net.agg.add_masked(name, message)
    with pytest.raises(SecAggError, match="share from h3 does not decrypt") as caught:
        net.nodes["h1"].unmask(net.agg.unmask_requests()["h1"])
    assert caught.value.nodes == ("h3",)


def test_a_wrong_length_vector_is_rejected_naming_the_node() -> None:
    net = Network.of(3, length=4)
    message = net.nodes["h2"].masked_input(encode_vector([1, 2, 3]))
    with pytest.raises(SecAggError, match="has 3 elements, not 4") as caught:
        net.agg.add_masked("h2", message)
    assert caught.value.nodes == ("h2",)
    assert "h2" not in net.agg.received


def test_a_round_one_message_replayed_into_another_round_is_rejected() -> None:
    net = Network.of(3)
    old = net.nodes["h1"].masked_input(encode_vector([1, 2, 3, 4]))
    net.start(round=1)
    with pytest.raises(SecAggError, match="another session or round") as caught:
        net.agg.add_masked("h1", old)
    assert caught.value.nodes == ("h1",)


def test_a_round_one_message_replayed_into_another_session_is_rejected() -> None:
    net = Network.of(3)
    old = net.nodes["h1"].masked_input(encode_vector([1, 2, 3, 4]))
    net.start(session="task-2")
    with pytest.raises(SecAggError, match="another session or round"):
        net.agg.add_masked("h1", old)


def test_a_replay_relabelled_for_the_new_round_is_caught_by_the_pair_commitments() -> None:
    net = Network.of(3)
    old = net.nodes["h1"].masked_input(encode_vector([1, 2, 3, 4]))
    net.start(round=1)
    relabelled = {**old, "round": 1, "context": base64.b64encode(net.agg.context.digest).decode()}
    net.agg.add_masked("h1", relabelled)  # the hub cannot tell yet...
    for name in ("h2", "h3"):  # ...but their commitments for this round differ from h1's
        net.agg.add_masked(name, net.nodes[name].masked_input(encode_vector([1, 2, 3, 4])))
    left_out = net.agg.settle()
    assert set(left_out) == {"h1"}  # it disagrees with both others: it goes, not they
    assert "differ from those of h2, h3" in str(left_out["h1"])
    assert left_out["h1"].nodes == ("h1", "h2", "h3")
    assert net.agg.received == frozenset({"h2", "h3"})


def test_a_node_lying_about_every_pair_secret_is_left_out_not_its_honest_peers() -> None:
    # h1 answers first with made-up pair commitments: before, every honest node that
    # came later was left out (and ledgered as at fault) in its place.
    net = Network.of(5)
    lying = net.nodes["h1"].masked_input(encode_vector([1, 1, 1, 1]))
    lying["pair_commitments"] = {
        peer: base64.b64encode(bytes([7]) * 32).decode() for peer in lying["pair_commitments"]
    }
    net.agg.add_masked("h1", lying)
    for name in net.names[1:]:
        net.agg.add_masked(name, net.nodes[name].masked_input(encode_vector([1, 2, 3, 4])))
    assert set(net.agg.settle()) == {"h1"}
    net.round2()
    assert decode_vector(net.agg.total()) == [4.0, 8.0, 12.0, 16.0]


def test_a_replayed_share_fails_to_decrypt_at_its_recipient() -> None:
    net = Network.of(3)
    old = net.nodes["h1"].masked_input(encode_vector([1, 2, 3, 4]))
    net.start(round=1)
    messages = {
        name: net.nodes[name].masked_input(encode_vector([1, 2, 3, 4])) for name in net.names
    }
    messages["h1"]["shares"]["h2"] = old["shares"]["h2"]  # round 0's share, spliced in
    for name, message in messages.items():
        net.agg.add_masked(name, message)
    with pytest.raises(SecAggError, match="share from h1 does not decrypt") as caught:
        net.nodes["h2"].unmask(net.agg.unmask_requests()["h2"])
    assert caught.value.nodes == ("h1",)


def test_a_node_with_a_wrong_peer_key_is_caught_in_round_one() -> None:
    net = Network.of(3)
    publics = net.publics()
    publics["h2"] = X25519PrivateKey.generate().public_key()  # a swapped announcement
    net.nodes["h1"] = MaskingSession(
        "h1", net.keys["h1"], {p: k for p, k in publics.items() if p != "h1"}, "task-1", 0
    )
    net.agg.add_masked("h1", net.nodes["h1"].masked_input(encode_vector([1, 2, 3, 4])))
    net.agg.add_masked("h2", net.nodes["h2"].masked_input(encode_vector([10, 20, 30, 40])))
    net.agg.add_masked("h3", net.nodes["h3"].masked_input(encode_vector([5, 5, 5, 5])))
    left_out = net.agg.settle()
    assert set(left_out) == {"h2"}  # h1 and h2 disagree only with each other: the later
    assert left_out["h2"].nodes == ("h1", "h2")  # which of the two is wrong is unknown
    # h1 reveals the seed it really used with "h2", so the sum is exact
    net.confirm()
    requests = net.agg.unmask_requests()
    assert set(requests) == {"h1", "h3"}
    for name, request in requests.items():
        net.agg.add_unmask(name, net.nodes[name].unmask(request))
    assert decode_vector(net.agg.total()) == [6.0, 7.0, 8.0, 9.0]


def test_a_node_masked_for_other_participants_is_rejected() -> None:
    net = Network.of(4)
    publics = net.publics()
    alone = MaskingSession("h1", net.keys["h1"], {"h2": publics["h2"]}, "task-1", 0)
    with pytest.raises(SecAggError, match="other participants") as caught:
        net.agg.add_masked("h1", alone.masked_input(encode_vector([1, 2, 3, 4])))
    assert caught.value.nodes == ("h1",)


def test_a_bad_self_mask_share_is_traced_to_its_sender() -> None:
    net = Network.of(5)
    net.round1({name: encode_vector([3, 1, 4, 1]) for name in net.names})
    requests = net.agg.unmask_requests()
    for name, request in requests.items():
        reply = net.nodes[name].unmask(request)
        if name == "h4":  # h4 lies about its share of h2's self-mask seed
            reply["self_mask_shares"]["h2"] = base64.b64encode((12345).to_bytes(66, "big")).decode()
        net.agg.add_unmask(name, reply)
    with pytest.raises(InconsistentSharesError, match="withheld") as caught:
        net.agg.total()
    assert caught.value.nodes == ("h4",)


def test_a_bad_share_among_exactly_threshold_replies_is_detected() -> None:
    net = Network.of(5)
    net.round1({name: encode_vector([3, 1, 4, 1]) for name in net.names})
    requests = net.agg.unmask_requests()
    for name in ["h1", "h2", "h3"]:
        reply = net.nodes[name].unmask(requests[name])
        if name == "h3":
            reply["self_mask_shares"]["h1"] = base64.b64encode((99).to_bytes(66, "big")).decode()
        net.agg.add_unmask(name, reply)
    with pytest.raises(InconsistentSharesError) as caught:
        net.agg.total()
    assert "h3" in caught.value.nodes  # which one lied cannot be told with t shares


def test_a_wrong_pair_seed_is_rejected_against_its_commitment() -> None:
    net = Network.of(5)
    net.round1({name: encode_vector([1, 1, 1, 1]) for name in net.names if name != "h3"})
    net.confirm()
    requests = net.agg.unmask_requests()
    reply = net.nodes["h1"].unmask(requests["h1"])
    reply["pair_seeds"]["h3"] = flip_b64(reply["pair_seeds"]["h3"])
    with pytest.raises(InconsistentSharesError, match="does not match") as caught:
        net.agg.add_unmask("h1", reply)
    assert caught.value.nodes == ("h1",)


def test_a_reply_revealing_a_survivors_pair_seed_is_rejected() -> None:
    net = Network.of(4)
    net.round1({name: encode_vector([1, 1, 1, 1]) for name in net.names})
    requests = net.agg.unmask_requests()
    reply = net.nodes["h1"].unmask(requests["h1"])
    reply["pair_seeds"]["h2"] = base64.b64encode(bytes(32)).decode()
    with pytest.raises(SecAggError, match="nothing else") as caught:
        net.agg.add_unmask("h1", reply)
    assert caught.value.nodes == ("h1",)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.pop("masked"),  # a field missing
        lambda m: m.update(masked="not base64!"),  # bad encoding
        lambda m: m.update(format="something-else/1"),  # another message kind
        lambda m: m.update(node="h3"),  # labelled as another node
        lambda m: m["shares"].pop("h2"),  # a share missing
        lambda m: m["pair_commitments"].update(h9=m["pair_commitments"]["h2"]),  # extra peer
        lambda m: m.update(round=True),  # a boolean is not a round number
        lambda m: m["shares"].update(h2=base64.b64encode(b"short").decode()),  # share size
    ],
)
def test_malformed_round_one_messages_are_rejected_naming_the_node(mutate: Any) -> None:
    net = Network.of(3)
    message = net.nodes["h1"].masked_input(encode_vector([1, 2, 3, 4]))
    mutate(message)
    with pytest.raises(SecAggError) as caught:
        net.agg.add_masked("h1", message)
    assert caught.value.nodes == ("h1",)


def test_a_second_message_from_one_node_is_rejected() -> None:
    net = Network.of(3)
    message = net.nodes["h1"].masked_input(encode_vector([1, 2, 3, 4]))
    net.agg.add_masked("h1", message)
    with pytest.raises(SecAggError, match="second masked input"):
        net.agg.add_masked("h1", message)


def test_a_vector_that_is_not_ring_elements_is_refused() -> None:
    net = Network.of(3)
    with pytest.raises(SecAggError, match="encode it with encode_vector"):
        net.nodes["h1"].masked_input([1.5, 2, 3, 4])  # type: ignore[list-item]
    with pytest.raises(SecAggError, match="encode it with encode_vector"):
        net.nodes["h1"].masked_input([-1, 2, 3, 4])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(format="medspace-secagg-masked/1"),  # another message kind
        lambda r: r.update(node="h2"),  # labelled as another node
        lambda r: r.update(round=3),  # another round
        lambda r: r["self_mask_shares"].update(h1="%%%"),  # not base64
        lambda r: r["self_mask_shares"].pop("h2"),  # a survivor's share missing
        lambda r: r["self_mask_shares"].update(  # a share outside the field
            h2=base64.b64encode(b"\xff" * 66).decode()
        ),
        lambda r: r.update(pair_seeds=[]),  # not a map
    ],
)
def test_malformed_unmask_replies_are_rejected_naming_the_node(mutate: Any) -> None:
    net = Network.of(3)
    net.round1({name: encode_vector([1, 2, 3, 4]) for name in net.names})
    reply = net.nodes["h1"].unmask(net.agg.unmask_requests()["h1"])
    mutate(reply)
    with pytest.raises(SecAggError) as caught:
        net.agg.add_unmask("h1", reply)
    assert caught.value.nodes == ("h1",)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("survivors"), "survivors"),  # a field missing
        (lambda r: r.update(session="task-9"), "another session or round"),
        (lambda r: r.update(context=base64.b64encode(bytes(32)).decode()), "other participants"),
        (lambda r: r["shares"].pop("h2"), "exactly one share"),
        (lambda r: r.update(survivors=["h1", "h2", "h3", "h3"]), "repeats a node"),
        (lambda r: r.update(survivors=["h2", "h3"], dropped=["h1"]), "itself as dropped"),
    ],
)
def test_malformed_unmask_requests_are_refused_by_the_node(mutate: Any, message: str) -> None:
    net = Network.of(3)
    net.round1({name: encode_vector([1, 2, 3, 4]) for name in net.names})
    request = net.agg.unmask_requests()["h1"]
    mutate(request)
    with pytest.raises(SecAggError, match=message):
        net.nodes["h1"].unmask(request)
    # a refused request reveals nothing and does not use up the node's one answer
    net.nodes["h1"].unmask(net.agg.unmask_requests()["h1"])
