"""Secure aggregation cost: 5 nodes masking vectors of 1,000 and 10,000 elements, the
hub unmasking the sum (round 1 + round 2), without and with a dropout; and how the work
grows with the number of nodes.

All in one process, no network: these are the cryptographic and arithmetic costs the
federated query pays on top of the channel round trips (bench/channel.py). "per node"
is one node's work (masking, later answering the unmask request; the slowest node),
the part that runs in parallel across hospitals; "hub" is the Aggregator's checks,
unmasking and decoding, both in CPU time; "round 1 + 2" is everything done one after
another on one core, an upper bound for the critical path (wall clock, and the
process's CPU time, which a busy shared machine inflates less). Encoding and decoding
10,000 values are timed apart, in CPU time.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from bench._metrics import metric

REPEATS = 15


def _one_round(n: int, length: int, dropouts: int) -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from medspace.analytics.secagg import Aggregator, MaskingSession, decode_vector, encode_vector

    names = [f"h{i}" for i in range(1, n + 1)]
    keys = {name: X25519PrivateKey.generate() for name in names}
    publics = {name: key.public_key() for name, key in keys.items()}
    values = {name: [float(i % 97) - 48.5 for i in range(length)] for name in names}
    encoded = {name: encode_vector(v) for name, v in values.items()}
    node_s: list[float] = []
    hub_s = 0.0
    total_started = time.perf_counter()
    cpu_started = time.process_time()
    started = time.process_time()
    hub = Aggregator(names, None, length, "bench", 0)
    hub_s += time.process_time() - started
    sessions: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name in names[: n - dropouts]:
        started = time.process_time()
        peers = {p: k for p, k in publics.items() if p != name}
        sessions[name] = MaskingSession(name, keys[name], peers, "bench", 0)
        messages[name] = sessions[name].masked_input(encoded[name])
        node_s.append(time.process_time() - started)
    started = time.process_time()
    for name, message in messages.items():
        hub.add_masked(name, message)
    checks = hub.survivor_sets()  # the consistency check, only when nodes dropped
    hub_s += time.process_time() - started
    confirmations = {}
    for i, (name, check) in enumerate(checks.items()):
        started = time.process_time()
        confirmations[name] = sessions[name].confirm(check)
        node_s[i] += time.process_time() - started
    started = time.process_time()
    for name, confirmation in confirmations.items():
        hub.add_confirmation(name, confirmation)
    requests = hub.unmask_requests()
    hub_s += time.process_time() - started
    replies = {}
    for i, (name, request) in enumerate(requests.items()):
        started = time.process_time()
        replies[name] = sessions[name].unmask(request)
        node_s[i] += time.process_time() - started
    started = time.process_time()
    for name, reply in replies.items():
        hub.add_unmask(name, reply)
    total = decode_vector(hub.total())
    hub_s += time.process_time() - started
    elapsed = time.perf_counter() - total_started
    cpu = time.process_time() - cpu_started
    survivors = names[: n - dropouts]
    expected = [sum(values[s][i] for s in survivors) for i in range(length)]
    if total != expected:
        raise AssertionError("secure aggregation returned a wrong sum")
    return {"total": elapsed, "cpu": cpu, "node": max(node_s), "hub": hub_s}


def _median(n: int, length: int, dropouts: int, repeats: int = REPEATS) -> dict[str, float]:
    _one_round(n, min(length, 10), dropouts)  # warm up imports and caches
    runs = [_one_round(n, length, dropouts) for _ in range(repeats)]
    return {k: statistics.median(r[k] for r in runs) * 1000 for k in runs[0]}


def _per(started: float) -> float:
    return (time.process_time() - started) / REPEATS * 1000


def run() -> dict[str, Any]:
    """Measure and return the benchmark result (see the module docstring)."""
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    metrics: list[dict[str, Any]] = []
    for length in (1_000, 10_000):
        for dropouts in (0, 1):
            label = f"5 nodes x {length:,}" + (", 1 dropped" if dropouts else "")
            ms = _median(5, length, dropouts)
            metrics.append(metric(f"{label}: round 1 + 2, one core", ms["total"], "ms"))
            metrics.append(metric(f"{label}: round 1 + 2, CPU time", ms["cpu"], "ms"))
            metrics.append(metric(f"{label}: per node (mask + unmask), CPU", ms["node"], "ms"))
            metrics.append(metric(f"{label}: hub (check + unmask + decode), CPU", ms["hub"], "ms"))
    from medspace.analytics.secagg import decode_vector, encode_vector

    values = [float(i % 97) - 48.5 for i in range(10_000)]
    encoded = encode_vector(values)
    started = time.process_time()
    for _ in range(REPEATS):
        encode_vector(values)
    metrics.append(metric("encode 10,000 floats (node), CPU", _per(started), "ms"))
    started = time.process_time()
    for _ in range(REPEATS):
        decode_vector(encoded)
    metrics.append(metric("decode 10,000 sums (hub), CPU", _per(started), "ms"))
    for n in (10, 20):
        ms = _median(n, 1_000, 0, repeats=5)
        metrics.append(metric(f"{n} nodes x 1,000: round 1 + 2, one core", ms["total"], "ms"))
        metrics.append(metric(f"{n} nodes x 1,000: round 1 + 2, CPU time", ms["cpu"], "ms"))
        metrics.append(
            metric(f"{n} nodes x 1,000: per node (mask + unmask), CPU", ms["node"], "ms")
        )
    return {
        "name": "secagg",
        "environment": {
            "protocol": "pairwise + self masks (Bonawitz et al. 2017), Z_2^128, AES-256-CTR "
            "PRG, X25519 + HKDF-SHA256, Shamir over GF(2^521-1), threshold floor(n/2)+1",
            "repeats": REPEATS,
            "statistic": "median",
            "network": "none: one process, messages passed as dicts (JSON-able)",
            "load_average_at_start": round(load, 2),
        },
        "metrics": metrics,
    }
