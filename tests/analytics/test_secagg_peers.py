"""Peers' agreement keys: signed announcements, and pinning on first use (peers.json)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medspace.analytics.secagg import (
    PINS_FILE,
    Announcement,
    PeerKeyChangedError,
    PeerPins,
    SecAggError,
    agreement_fingerprint,
    announce,
    verified_peers,
    verify_announcement,
)
from medspace.node import init_node, open_node


def _identity_and_agreement() -> tuple[Ed25519PrivateKey, X25519PrivateKey]:
    return Ed25519PrivateKey.generate(), X25519PrivateKey.generate()


def test_a_nodes_own_keys_make_an_announcement_its_registered_key_verifies(
    tmp_path: Path,
) -> None:
    init_node(tmp_path / "h1", "h1")
    node = open_node(tmp_path / "h1")
    try:
        a = announce(node.name, node.identity_private_key(), node.agreement_private_key())
        verify_announcement(
            Announcement.from_dict(json.loads(json.dumps(a.to_dict()))), node.identity_public_key
        )
        assert agreement_fingerprint(a.public_key()) == agreement_fingerprint(
            node.agreement_private_key().public_key()
        )
    finally:
        node.close()


def test_an_announcement_signed_by_another_identity_is_refused() -> None:
    identity, agreement = _identity_and_agreement()
    a = announce("h1", identity, agreement)
    with pytest.raises(SecAggError, match="not signed by its registered identity key") as caught:
        verify_announcement(a, Ed25519PrivateKey.generate().public_key())
    assert caught.value.nodes == ("h1",)


def test_a_swapped_agreement_key_breaks_the_signature() -> None:
    identity, agreement = _identity_and_agreement()
    a = announce("h1", identity, agreement)
    hubs_key = X25519PrivateKey.generate().public_key().public_bytes_raw()
    forged = Announcement(a.node, hubs_key, a.signature)
    with pytest.raises(SecAggError, match="not signed"):
        verify_announcement(forged, identity.public_key())


def test_an_announcement_relabelled_for_another_node_is_refused() -> None:
    identity, agreement = _identity_and_agreement()
    a = announce("h1", identity, agreement)
    relabelled = Announcement("h2", a.agreement_key, a.signature)
    with pytest.raises(SecAggError, match="not signed"):
        verify_announcement(relabelled, identity.public_key())  # the name is signed too


@pytest.mark.parametrize(
    "doc",
    [
        None,  # not an object
        {"format": "medspace-secagg-announcement/1", "node": "h1"},  # fields missing
        {  # key too short
            "format": "medspace-secagg-announcement/1",
            "node": "h1",
            "agreement_key": "AAAA",
            "signature": "A" * 88,
        },
        {  # not a node name
            "format": "medspace-secagg-announcement/1",
            "node": "H 1",
            "agreement_key": "A" * 44,
            "signature": "A" * 88,
        },
    ],
)
def test_malformed_announcements_are_refused(doc: object) -> None:
    with pytest.raises(SecAggError, match="malformed agreement-key announcement"):
        Announcement.from_dict(doc)


def test_a_key_is_pinned_on_first_use_in_a_private_file(tmp_path: Path) -> None:
    pins = PeerPins(tmp_path / PINS_FILE)
    key = X25519PrivateKey.generate().public_key()
    assert pins.pinned("h2") is None
    pins.pin("h2", key)
    pins.pin("h2", key)  # the same key again is fine
    assert stat.S_IMODE((tmp_path / PINS_FILE).stat().st_mode) == 0o600
    pinned = PeerPins(tmp_path / PINS_FILE).pinned("h2")
    assert pinned is not None and agreement_fingerprint(pinned) == agreement_fingerprint(key)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_changed_peer_key_is_refused_with_how_to_reset(tmp_path: Path) -> None:
    pins = PeerPins(tmp_path / PINS_FILE)
    pins.pin("h2", X25519PrivateKey.generate().public_key())
    new = X25519PrivateKey.generate().public_key()
    with pytest.raises(PeerKeyChangedError, match="remove the entry for h2") as caught:
        pins.pin("h2", new)
    assert caught.value.nodes == ("h2",)
    pins.forget("h2")  # after the operator confirmed the change out of band
    pins.pin("h2", new)


def test_a_group_readable_pin_file_is_refused(tmp_path: Path) -> None:
    pins = PeerPins(tmp_path / PINS_FILE)
    pins.pin("h2", X25519PrivateKey.generate().public_key())
    os.chmod(tmp_path / PINS_FILE, 0o644)
    with pytest.raises(SecAggError, match="chmod 600"):
        pins.pinned("h2")


def test_a_damaged_pin_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / PINS_FILE
    path.write_text('{"format": "medspace-peer-pins/1", "peers": {"h2": {"key": "AAAA"}}}')
    os.chmod(path, 0o600)
    with pytest.raises(SecAggError, match="is damaged"):
        PeerPins(path).pin("h2", X25519PrivateKey.generate().public_key())


def test_verified_peers_checks_and_pins_every_announcement(tmp_path: Path) -> None:
    identities = {n: Ed25519PrivateKey.generate() for n in ("h2", "h3")}
    agreements = {n: X25519PrivateKey.generate() for n in ("h2", "h3")}
    announcements = {n: announce(n, identities[n], agreements[n]).to_dict() for n in identities}
    registered = {n: k.public_key() for n, k in identities.items()}
    pins = PeerPins(tmp_path / PINS_FILE)
    peers = verified_peers(announcements, registered, pins)
    assert {n: agreement_fingerprint(k) for n, k in peers.items()} == {
        n: agreement_fingerprint(k.public_key()) for n, k in agreements.items()
    }
    # later the hub hands out a new (validly signed) key for h3: the pin refuses it
    rotated = announce("h3", identities["h3"], X25519PrivateKey.generate()).to_dict()
    with pytest.raises(PeerKeyChangedError) as caught:
        verified_peers({**announcements, "h3": rotated}, registered, pins)
    assert caught.value.nodes == ("h3",)


def test_verified_peers_refuses_unregistered_and_mislabelled_peers() -> None:
    identity, agreement = _identity_and_agreement()
    a = announce("h2", identity, agreement).to_dict()
    with pytest.raises(SecAggError, match="no registered identity key"):
        verified_peers({"h2": a}, {}, None)
    with pytest.raises(SecAggError, match="made by another node"):
        verified_peers({"h3": a}, {"h3": identity.public_key()}, None)
    with pytest.raises(SecAggError, match="missing or malformed") as caught:
        verified_peers({"h4": None}, {"h4": identity.public_key()}, None)  # type: ignore[dict-item]
    assert caught.value.nodes == ("h4",)


def test_three_node_directories_sum_through_verified_announcements(tmp_path: Path) -> None:
    from medspace.analytics.secagg import Aggregator, MaskingSession, decode_vector, encode_vector

    names = ["h1", "h2", "h3"]
    for name in names:
        init_node(tmp_path / name, name)
    nodes = {name: open_node(tmp_path / name) for name in names}
    try:
        # what the hub relays: each node's announcement and registered identity key
        announcements = {
            n: announce(n, node.identity_private_key(), node.agreement_private_key()).to_dict()
            for n, node in nodes.items()
        }
        registered = {n: node.identity_public_key for n, node in nodes.items()}
        hub = Aggregator(names, None, 2, "study-1", 0)
        sessions = {}
        for n, node in nodes.items():
            others = {p: a for p, a in announcements.items() if p != n}
            peers = verified_peers(others, registered, PeerPins(node.directory / PINS_FILE))
            sessions[n] = MaskingSession(n, node.agreement_private_key(), peers, "study-1", 0)
            hub.add_masked(n, sessions[n].masked_input(encode_vector([len(n), 0.25])))
        for n, request in hub.unmask_requests().items():
            hub.add_unmask(n, sessions[n].unmask(request))
        assert decode_vector(hub.total()) == [6.0, 0.75]
        for node in nodes.values():
            assert stat.S_IMODE((node.directory / PINS_FILE).stat().st_mode) == 0o600
    finally:
        for node in nodes.values():
            node.close()
