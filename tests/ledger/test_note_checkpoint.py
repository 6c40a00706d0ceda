"""Signed notes, checkpoints and cosignatures against the C2SP specs and Go's reference
vectors (golang.org/x/mod/sumdb/note, c2sp.org/tlog-checkpoint, c2sp.org/tlog-cosignature)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.ledger import (
    Checkpoint,
    CheckpointError,
    CosignatureVerifier,
    Cosigner,
    NoteSigner,
    NoteVerifier,
    SignedCheckpoint,
    sign_checkpoint,
)
from medspace.ledger.checkpoint import Cosignature, cosigned_message
from medspace.ledger.note import Note, NoteSignature, key_id

# The reference key pair and note of Go's sumdb/note tests.
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
    "qfqdngotpRZb6KE6RyyBwJnAM=\n"
)

# The example checkpoint with a cosignature from c2sp.org/tlog-cosignature.
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7"
    "u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def test_signing_reproduces_the_go_reference_note_byte_for_byte() -> None:
    signer = NoteSigner.from_skey(SKEY)
    assert signer.verifier.vkey == VKEY
    assert signer.sign(TEXT).line() == SIG
    note = Note.from_text(TEXT + "\n" + SIG)
    NoteVerifier.from_vkey(VKEY).verify(note)
    assert note.to_text() == TEXT + "\n" + SIG


def test_an_altered_note_fails_and_other_keys_are_ignored() -> None:
    verifier = NoteVerifier.from_vkey(VKEY)
    altered = Note.from_text((TEXT + "\n" + SIG).replace("cryptography", "cryptographY"))
    with pytest.raises(CheckpointError, match="does not verify"):
        verifier.verify(altered)
    other = NoteSigner("PeterNeumann", Ed25519PrivateKey.generate())  # same name, other key
    note = Note(TEXT, (other.sign(TEXT),))
    with pytest.raises(CheckpointError, match="no signature by PeterNeumann"):
        verifier.verify(note)
    # An unknown signature next to the right one is ignored.
    NoteVerifier.from_vkey(VKEY).verify(
        Note(TEXT, (other.sign(TEXT), *Note.from_text(TEXT + "\n" + SIG).signatures))
    )


@pytest.mark.parametrize(
    "vkey",
    [
        VKEY.replace("c74f20a3", "c74f20a4"),  # key ID does not match
        VKEY.replace("+ARpc", "+AhpT"),  # another signature type byte
        "PeterNeumann+c74f20a3",  # no key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
        VKEY[:-4],  # truncated key
    ],
)
def test_malformed_vkeys_are_refused(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        NoteVerifier.from_vkey(vkey)


@pytest.mark.parametrize(
    ("note", "match"),
    [
        (TEXT + SIG, "blank line"),  # no separating blank line
        (TEXT + "\n", "no signature"),
        (TEXT + "\n" + SIG.replace("\u2014", "--"), "em dash"),
        (TEXT + "\n" + SIG.replace("x08go", "x08g!"), "base64"),
        (TEXT + "\n" + "\u2014 k AAAA\n", "shorter"),
        (TEXT.replace("\n", "\r\n", 1) + "\n" + SIG, "control character"),
        (TEXT + "\n" + SIG * 101, "more than 100"),
    ],
)
def test_malformed_notes_are_refused(note: str, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        Note.from_text(note)


def test_the_spec_example_checkpoint_and_cosignature_parse() -> None:
    signed = SignedCheckpoint.from_text(SPEC_CHECKPOINT)
    assert signed.checkpoint.origin == "example.com/behind-the-sofa"
    assert signed.checkpoint.size == 20852163
    assert signed.checkpoint.body() == SPEC_CHECKPOINT.split("\n\n")[0] + "\n"
    cosignature = Cosignature.from_note_signature(signed.note.signatures[1])
    # The timestamp of the spec's example message ("time 1679315147").
    assert cosignature.timestamp == 1679315147
    assert cosignature.line() == SPEC_CHECKPOINT.splitlines(keepends=True)[-1]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("o\n007\n" + base64.b64encode(bytes(32)).decode() + "\n", "leading zeroes"),
        ("o\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
        ("o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n", "32-byte"),
        ("o\n1\nnot base64!\n", "base64"),
        ("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\next\n", "extension"),
        ("o\n1\n" + base64.b64encode(bytes(32)).decode(), "exactly"),
        ("o o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", "origin"),
    ],
)
def test_malformed_checkpoint_bodies_are_refused(body: str, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        Checkpoint.from_body(body)


def test_checkpoints_are_signed_by_the_log_and_checked_against_its_key() -> None:
    signer = NoteSigner("medspace.test/log", Ed25519PrivateKey.generate())
    checkpoint = Checkpoint("medspace.test/log", 5, bytes(range(32)))
    signed = sign_checkpoint(checkpoint, signer)
    assert signed.to_text().startswith("medspace.test/log\n5\nAAECAwQF")
    parsed = SignedCheckpoint.from_text(signed.to_text())
    parsed.verify(signer.verifier)
    intruder = NoteSigner("medspace.test/log", Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match="no signature"):
        parsed.verify(intruder.verifier)
    with pytest.raises(CheckpointError, match="origin"):
        sign_checkpoint(Checkpoint("other.test/log", 5, bytes(32)), signer)
    forged = SignedCheckpoint.from_text(signed.to_text().replace("\n5\n", "\n6\n"))
    with pytest.raises(CheckpointError, match="does not verify"):
        forged.verify(signer.verifier)


def test_cosignatures_follow_tlog_cosignature_v1() -> None:
    cosigner = Cosigner("witness.h1.test", Ed25519PrivateKey.generate())
    verifier = cosigner.verifier
    raw = verifier.public_key.public_bytes_raw()
    assert verifier.key_id == key_id("witness.h1.test", 0x04, raw)
    assert CosignatureVerifier.from_vkey(verifier.vkey) == verifier
    checkpoint = Checkpoint("medspace.test/log", 9, bytes(32))
    cosignature = cosigner.cosign(checkpoint, timestamp=1700000000)
    assert cosigned_message(checkpoint, 1700000000) == (
        b"cosignature/v1\ntime 1700000000\n" + checkpoint.body().encode()
    )
    line = cosignature.line()
    blob = base64.b64decode(line.split(" ")[2])
    assert blob[:4] == verifier.key_id
    assert int.from_bytes(blob[4:12], "big") == 1700000000
    assert len(blob) == 4 + 8 + 64
    verifier.verify(checkpoint, cosignature)
    with pytest.raises(CheckpointError, match="does not verify"):
        verifier.verify(Checkpoint("medspace.test/log", 10, bytes(32)), cosignature)
    late = Cosignature(cosignature.name, cosignature.key_id, 1700000001, cosignature.signature)
    with pytest.raises(CheckpointError, match="does not verify"):
        verifier.verify(checkpoint, late)
    # An Ed25519 note key (type 0x01) with the same name and key is a different key ID.
    assert NoteVerifier("witness.h1.test", verifier.public_key).key_id != verifier.key_id


def test_cosignature_lines_survive_a_round_trip_through_text() -> None:
    signer = NoteSigner("medspace.test/log", Ed25519PrivateKey.generate())
    cosigners = [Cosigner(f"w{n}.test", Ed25519PrivateKey.generate()) for n in range(3)]
    signed = sign_checkpoint(Checkpoint("medspace.test/log", 3, bytes(32)), signer)
    cosignatures = [c.cosign(signed.checkpoint) for c in cosigners]
    both = signed.with_cosignatures(cosignatures).with_cosignatures(cosignatures[:1])
    parsed = SignedCheckpoint.from_text(both.to_text())
    assert len(parsed.note.signatures) == 4  # no duplicate lines
    for cosigner, cosignature in zip(cosigners, cosignatures, strict=True):
        assert parsed.cosignatures(cosigner.verifier) == [cosignature]
    assert (
        NoteSignature.from_line(cosignatures[0].line().rstrip("\n"))
        == cosignatures[0].to_note_signature()
    )
