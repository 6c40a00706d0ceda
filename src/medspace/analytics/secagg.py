"""Secure aggregation (Bonawitz et al., CCS 2017, with the consistency check): the hub learns
the sum of the nodes' vectors and nothing about any one node's vector, even when some
nodes drop out after they sent their masked input. See docs/secure-aggregation.md for
the protocol, the threat model and the threshold.

Node side, per (session, round)::

    peers = verified_peers(announcements, identity_keys, PeerPins(node_dir / "peers.json"))
    session = MaskingSession(node_name, agreement_key, peers, session_id, round_no)
    message = session.masked_input(encode_vector(values))   # round 1, once
    confirmation = session.confirm(survivor_set)             # only when nodes dropped
    reply = session.unmask(request)                          # round 2, at most once

Hub side::

    agg = Aggregator(participants, threshold=None, length=len(values), session=..., round=...)
    agg.add_masked(node, message)                # each round-1 message (SecAggError: leave out)
    checks = agg.survivor_sets(dropped=())       # node -> survivor set; {} if none dropped
    agg.add_confirmation(node, confirmation)     # each reply to a survivor set
    requests = agg.unmask_requests(dropped=())   # node -> round-2 request
    agg.add_unmask(node, reply)                  # each reply
    sums = decode_vector(agg.total())

Public API: `encode_vector`, `decode_vector`, `max_magnitude` (fixed point in
Z_(2^128), 2^-40 resolution by default); `Announcement`, `announce`,
`verify_announcement`, `verified_peers`, `PeerPins`, `agreement_fingerprint` (peer
keys); `MaskingSession`, `AgreementKey` (a node's key with its X25519 secrets remembered),
`Aggregator`, `default_threshold`; errors `SecAggError`
(`.nodes` names the nodes at fault), `FixedPointError`, `PeerKeyChangedError`,
`InconsistentSharesError`. Messages are JSON-able dicts (bytes as base64).
"""

from medspace.analytics.fixedpoint import (
    DEFAULT_SCALE_BITS,
    decode_vector,
    encode_vector,
    max_magnitude,
)
from medspace.analytics.secagg_derive import default_threshold
from medspace.analytics.secagg_errors import (
    FixedPointError,
    InconsistentSharesError,
    PeerKeyChangedError,
    SecAggError,
)
from medspace.analytics.secagg_hub import Aggregator
from medspace.analytics.secagg_node import AgreementKey, MaskingSession
from medspace.analytics.secagg_peers import (
    PINS_FILE,
    Announcement,
    PeerPins,
    agreement_fingerprint,
    announce,
    verified_peers,
    verify_announcement,
)

__all__ = [
    "DEFAULT_SCALE_BITS",
    "PINS_FILE",
    "Aggregator",
    "AgreementKey",
    "Announcement",
    "FixedPointError",
    "InconsistentSharesError",
    "MaskingSession",
    "PeerKeyChangedError",
    "PeerPins",
    "SecAggError",
    "agreement_fingerprint",
    "announce",
    "decode_vector",
    "default_threshold",
    "encode_vector",
    "max_magnitude",
    "verified_peers",
    "verify_announcement",
]
