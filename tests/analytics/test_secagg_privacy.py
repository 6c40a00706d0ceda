"""The privacy property of secure aggregation: the hub's view of a node's message does
not depend on that node's data.

Statistical tests over many sessions, with thresholds set so that a correct
implementation fails with probability below 1e-8 (no test depends on timing). Each test
also runs a control that must fail the same check, so the check can tell.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medspace.analytics import shamir
from medspace.analytics.fixedpoint import RING, max_magnitude
from medspace.analytics.secagg import Aggregator, MaskingSession, encode_vector
from medspace.analytics.secagg_derive import pair_seed, prg
from medspace.analytics.secagg_ring import add, from_bytes, from_ints, sub, to_ints

NAMES = ["h1", "h2", "h3", "h4"]
LENGTH = 16
SESSIONS = 300
KEYS = {name: X25519PrivateKey.generate() for name in NAMES}
PUBLICS = {name: key.public_key() for name, key in KEYS.items()}
Z = 6.0  # one-sided normal quantile: P(Z > 6) ~ 1e-9


def chi2_critical(df: int, z: float = Z) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile."""
    a = 2 / (9 * df)
    return df * (1 - a + z * math.sqrt(a)) ** 3


def session_for(name: str, session: str) -> MaskingSession:
    peers = {p: k for p, k in PUBLICS.items() if p != name}
    return MaskingSession(name, KEYS[name], peers, session, 0)


def masked_bytes(name: str, vector: Sequence[int], session: str) -> bytes:
    message = session_for(name, session).masked_input(vector)
    return base64.b64decode(message["masked"])


def byte_histogram(data: bytes) -> npt.NDArray[np.int64]:
    return np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256).astype(np.int64)


def chi2_uniform(counts: npt.NDArray[np.int64]) -> float:
    expected = counts.sum() / len(counts)
    return float(((counts - expected) ** 2 / expected).sum())


def chi2_two_sample(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> float:
    total = a + b
    keep = total > 0
    na, nb = a.sum(), b.sum()
    return float(
        (((a * math.sqrt(nb / na) - b * math.sqrt(na / nb)) ** 2)[keep] / total[keep]).sum()
    )


def bit_bias(data: bytes) -> float:
    """Largest deviation, in standard deviations, of any of the 128 bit positions from 1/2."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8).reshape(-1, 16), axis=1)
    n = bits.shape[0]
    return float(np.abs(bits.sum(axis=0) - n / 2).max() / (math.sqrt(n) / 2))


def many(view: Callable[[int], bytes]) -> bytes:
    return b"".join(view(i) for i in range(SESSIONS))


def test_a_nodes_masked_input_looks_uniform_whatever_its_data() -> None:
    zero = encode_vector([0] * LENGTH)
    big = encode_vector(
        [max_magnitude() - 1] * (LENGTH // 2) + [1 - max_magnitude()] * (LENGTH // 2)
    )
    # everything but the data is the same: keys, peers, session ids, round
    seen_zero = many(lambda i: masked_bytes("h2", zero, f"uniform-{i}"))
    seen_big = many(lambda i: masked_bytes("h2", big, f"uniform-{i}"))
    critical = chi2_critical(255)
    for seen in (seen_zero, seen_big):
        assert chi2_uniform(byte_histogram(seen)) < critical
        assert bit_bias(seen) < Z
    # and the two views cannot be told apart
    assert chi2_two_sample(byte_histogram(seen_zero), byte_histogram(seen_big)) < critical
    # control: the same checks reject the unmasked encodings
    plain = b"".join(v.to_bytes(16, "little") for v in big) * SESSIONS
    assert chi2_uniform(byte_histogram(plain)) > critical
    assert bit_bias(plain) > Z


def _mask_and_predictors(session: str) -> tuple[list[int], list[int], list[int], list[int]]:
    """One round among all nodes with random data; for h1: its mask m = y - x, and two
    predictions of m by a hub that knows every other node's data:

    - from the others' masked inputs alone: the pairwise masks cancel in the total, so
      m_h1 = -(sum of the others' masks) + (sum of all self-masks);
    - with every other node colluding and handing over its agreement key: the hub knows
      h1's pairwise masks; what remains is h1's self-mask PRG(b_h1).

    Also returns the exact mask a hub could compute if it also had b_h1 (control).
    """
    rng = np.random.default_rng()
    data = {n: encode_vector(rng.integers(-1000, 1000, LENGTH).tolist()) for n in NAMES}
    sessions = {n: session_for(n, session) for n in NAMES}
    messages = {n: sessions[n].masked_input(data[n]) for n in NAMES}
    masks = {
        n: to_ints(sub(from_bytes(base64.b64decode(m["masked"]), LENGTH), _lanes(data[n])))
        for n, m in messages.items()
    }
    others_total = [sum(masks[n][k] for n in NAMES if n != "h1") % RING for k in range(LENGTH)]
    from_totals = [(-v) % RING for v in others_total]
    context = sessions["h1"].context
    pair_part = _lanes([0] * LENGTH)
    for peer in NAMES[1:]:
        seed = pair_seed(KEYS[peer].exchange(PUBLICS["h1"]), context, "h1", peer)
        pair_part = add(pair_part, prg(seed, LENGTH))  # h1 is first: every peer is later
    colluders = to_ints(pair_part)
    # control: after round 2 the hub holds the survivors' self-mask seeds
    hub = Aggregator(NAMES, None, LENGTH, session, 0)
    for n, m in messages.items():
        hub.add_masked(n, m)
    requests = hub.unmask_requests()
    replies = {n: sessions[n].unmask(r) for n, r in requests.items()}
    points = {
        context.position(n): int.from_bytes(base64.b64decode(r["self_mask_shares"]["h1"]), "big")
        for n, r in replies.items()
    }
    b = shamir.interpolate(points).to_bytes(32, "big")
    exact = to_ints(add(pair_part, prg(b, LENGTH)))
    return masks["h1"], from_totals, colluders, exact


def _lanes(values: Sequence[int]) -> npt.NDArray[np.uint64]:
    return from_ints(values)


def _unit(values: list[int]) -> npt.NDArray[np.float64]:
    """Ring elements as points in [0, 1)."""
    return np.array([v / RING for v in values])


def test_a_hub_knowing_all_other_data_cannot_predict_a_nodes_mask() -> None:
    actual: list[int] = []
    predicted_from_totals: list[int] = []
    predicted_by_colluders: list[int] = []
    exact: list[int] = []
    for i in range(SESSIONS // 3):
        m, p1, p2, e = _mask_and_predictors(f"predict-{i}")
        actual += m
        predicted_from_totals += p1
        predicted_by_colluders += p2
        exact += e
    n = len(actual)
    bound = Z / math.sqrt(n)  # |r| of independent samples is ~ N(0, 1/n)
    x = _unit(actual)
    for guess in (predicted_from_totals, predicted_by_colluders):
        r = float(np.corrcoef(x, _unit(guess))[0, 1])
        assert abs(r) < bound
        # the difference is uniform too: no bias a hub could exploit
        diff = [(a - g) % RING for a, g in zip(actual, guess, strict=True)]
        assert bit_bias(b"".join(v.to_bytes(16, "little") for v in diff)) < Z
    # control: with h1's self-mask seed as well (what only `threshold` nodes can give),
    # the mask is known exactly; the check above would have failed
    assert exact == actual
    assert float(np.corrcoef(x, _unit(exact))[0, 1]) > 0.99


def test_masks_of_one_node_are_unrelated_across_rounds() -> None:
    x = encode_vector([5] * LENGTH)
    first = many(lambda i: masked_bytes("h3", x, f"rounds-{i}"))
    again = many(lambda i: masked_bytes("h3", x, f"rounds-{i}"))  # same session ids again
    a = np.frombuffer(first, dtype=np.uint8).astype(float)
    b = np.frombuffer(again, dtype=np.uint8).astype(float)
    assert abs(float(np.corrcoef(a, b)[0, 1])) < Z / math.sqrt(len(a))
    assert first != again  # a fresh self-mask every time, even for a repeated session id


def test_the_unmask_view_with_a_dropout_hides_the_dropped_nodes_data() -> None:
    """When h4 dropped after round 1 the hub holds y_h4 and the pair seeds of h4 with
    every survivor, but no share of h4's self-mask: y_h4 minus everything it can remove
    is still uniform."""
    leftover = b""
    for i in range(SESSIONS // 3):
        session = f"drop-{i}"
        sessions = {n: session_for(n, session) for n in NAMES}
        x4 = encode_vector([123_456] * LENGTH)
        messages = {n: sessions[n].masked_input(x4) for n in NAMES}
        hub = Aggregator(NAMES, None, LENGTH, session, 0)
        for n, m in messages.items():
            hub.add_masked(n, m)
        checks = hub.survivor_sets(dropped=["h4"])  # a late node, dropped by the hub
        for n, check in checks.items():
            hub.add_confirmation(n, sessions[n].confirm(check))
        requests = hub.unmask_requests(dropped=["h4"])
        replies = {n: sessions[n].unmask(r) for n, r in requests.items()}
        assert all("h4" not in r["self_mask_shares"] for r in replies.values())
        y4 = from_bytes(base64.b64decode(messages["h4"]["masked"]), LENGTH)
        rest = sub(y4, _lanes(x4))
        for r in replies.values():
            seed = base64.b64decode(r["pair_seeds"]["h4"])
            # h4 is last: it subtracted PRG(s) for every earlier peer
            rest = add(rest, prg(seed, LENGTH))
        leftover += b"".join(v.to_bytes(16, "little") for v in to_ints(rest))
    assert chi2_uniform(byte_histogram(leftover)) < chi2_critical(255)
    assert bit_bias(leftover) < Z
