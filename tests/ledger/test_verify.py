"""audit_verify: a clean log verifies; every kind of direct database tampering is found."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.ledger import (
    KeyRing,
    Log,
    SignedCheckpoint,
    TrustedHead,
    Verdict,
    audit_verify,
    request_cosignature,
)
from medspace.ledger.merkle import leaf_hash

from .conftest import ORIGIN, Parties, Witnesses

SIZES = (10, 25, 40)


@dataclass
class Audited:
    engine: Engine
    log: Log
    parties: Parties
    witnesses: Witnesses
    held: list[SignedCheckpoint]  # what the witnesses hold in their state files

    def verify(self, **kw: object) -> Verdict:
        options = {
            "keys": self.parties.ring,
            "log_key": self.parties.log_signer.verifier,
            "quorum": self.witnesses.quorum,
            **kw,
        }
        return audit_verify(self.engine, **options)  # type: ignore[arg-type]

    def sql(self, statement: str, **params: object) -> None:
        schema = self.engine.get_execution_options().get("schema_translate_map", {}).get(None)
        with self.engine.begin() as conn:
            if schema:  # the PostgreSQL fixture keeps each test in its own schema
                conn.execute(sa.text(f'set local search_path to "{schema}"'))
            conn.execute(sa.text(statement), params)


def build(engine: Engine, parties: Parties, witnesses: Witnesses) -> Audited:
    log = Log.create(engine, ORIGIN, parties.ring)
    actors = ("h1", "h2", "alice", "hub")
    done = 0
    for size in SIZES:
        log.append([parties.entry(n, actor=actors[n % 4]) for n in range(done, size)])
        done = size
        signed = log.checkpoint(parties.log_signer)
        for w in witnesses.nodes:
            cosignature = request_cosignature(log, signed, w, w.latest_size(ORIGIN))
            log.add_cosignature(size, cosignature, w.verifier)
    held = [w.latest(ORIGIN) for w in witnesses.nodes]
    return Audited(engine, log, parties, witnesses, held)  # type: ignore[arg-type]


@pytest.fixture
def audited(sqlite_engine: Engine, parties: Parties, witnesses: Witnesses) -> Audited:
    return build(sqlite_engine, parties, witnesses)


def errors(verdict: Verdict) -> list[str]:
    return [str(f) for f in verdict.findings if f.severity == "error"]


def test_an_untouched_log_verifies(audited: Audited) -> None:
    verdict = audited.verify(witnessed=audited.held)
    assert verdict.ok, verdict.findings
    assert (verdict.entries, verdict.checkpoints, verdict.final_size) == (40, 3, 40)
    assert verdict.signatures_checked == 40
    assert verdict.findings == ()
    assert verdict.trusted_head == TrustedHead(40, audited.log.root())
    assert verdict.summary().startswith("VERIFIED: 40 entries, 3 checkpoints")


def change_body(audited: Audited, index: int, old: bytes, new: bytes) -> None:
    body = audited.log.entry(index).signed.body
    assert old in body
    audited.sql(
        "update ledger_entries set body = :b where idx = :i", b=body.replace(old, new), i=index
    )


def test_a_changed_byte_in_an_entry_is_found(audited: Audited) -> None:
    change_body(audited, 7, b'"count":7', b'"count":8')
    found = errors(audited.verify())
    assert "entry 7: leaf hash does not match its content" in found
    assert "entry 7: signature does not verify" in found
    assert "checkpoint at size 10: root does not match the entries" in found


def test_a_changed_entry_with_recomputed_hashes_is_still_found(audited: Audited) -> None:
    body = audited.log.entry(7).signed.body.replace(b'"count":7', b'"count":8')
    audited.sql(
        "update ledger_entries set body = :b, leaf_hash = :h where idx = 7",
        b=body,
        h=leaf_hash(body),
    )
    found = errors(audited.verify())
    assert "entry 7: signature does not verify" in found
    assert "entry 7: stored tree nodes do not match the entries" in found or any(
        "checkpoint at size 10: root" in f for f in found
    )
    assert "checkpoint at size 40: root does not match the entries" in found


def test_a_deleted_entry_is_found(audited: Audited) -> None:
    audited.sql("delete from ledger_entries where idx = 12")
    found = errors(audited.verify())
    assert "entry 12: missing (next stored: 13)" in found
    assert "log: its head says 40 entries but 39 are stored" in found
    assert "checkpoint at size 25: root does not match the entries" in found
    assert any(f.startswith("checkpoint at size 40: covers more entries") for f in found)


def test_deleting_the_newest_entries_is_found(audited: Audited) -> None:
    audited.sql("delete from ledger_entries where idx >= 30")
    audited.sql("update ledger_head set size = 30")
    found = errors(audited.verify(witnessed=audited.held))
    assert any(f.startswith("checkpoint at size 40: covers more entries") for f in found)
    assert any(
        f.startswith("witnessed checkpoint at size 40: the log now holds only 30") for f in found
    )


def test_two_swapped_entries_are_found(audited: Audited) -> None:
    audited.sql("update ledger_entries set idx = -1 where idx = 3")
    audited.sql("update ledger_entries set idx = 3 where idx = 4")
    audited.sql("update ledger_entries set idx = 4 where idx = -1")
    found = errors(audited.verify())
    assert "entry 3: stored tree nodes do not match the entries" in found
    assert "checkpoint at size 10: root does not match the entries" in found


def test_an_inserted_entry_is_found(audited: Audited) -> None:
    # A validly signed entry slipped in at index 20, later entries shifted up by one.
    extra = audited.parties.entry(999, actor="alice")
    audited.sql("update ledger_entries set idx = idx + 1000 where idx >= 20")
    audited.sql("update ledger_entries set idx = idx - 999 where idx >= 1000")
    audited.sql(
        "insert into ledger_entries (idx, leaf_hash, nodes, body, type, actor, node, project, time)"
        " values (20, :h, x'', :b, 'compute', 'alice', 'h1', 'p1', :t)",
        h=leaf_hash(extra.body),
        b=extra.body,
        t=extra.entry.time,
    )
    found = errors(audited.verify())
    assert "checkpoint at size 25: root does not match the entries" in found
    assert "log: its head says 40 entries but 41 are stored" in found


def test_a_changed_checkpoint_is_found(audited: Audited) -> None:
    note = audited.log.checkpoint_at(25).to_text().split("\n\n")[0]
    forged = note.replace("\n25\n", "\n24\n")
    audited.sql(
        "update ledger_checkpoints set note = replace(note, :a, :b) where size = 25",
        a=note,
        b=forged,
    )
    audited.sql("update ledger_checkpoints set root = :r where size = 40", r=b"\0" * 32)
    found = errors(audited.verify())
    assert any(
        f.startswith("checkpoint at size 25: note or log signature is invalid") for f in found
    )
    assert "checkpoint at size 40: stored size or root differs from the signed note" in found


def test_a_tampered_or_missing_cosignature_is_found(audited: Audited) -> None:
    name = audited.witnesses.nodes[0].name
    line = audited.log.checkpoint_at(40).to_text().splitlines()[-3]
    assert name in line
    tampered = line[:-6] + ("A" if line[-6] != "A" else "B") + line[-5:]
    audited.sql(
        "update ledger_cosignatures set line = :l where size = 40 and witness = :w",
        l=tampered + "\n",
        w=name,
    )
    audited.sql("delete from ledger_cosignatures where size = 25")
    verdict = audited.verify()
    found = errors(verdict)
    assert f"checkpoint at size 40: cosignatures that do not verify, from {name}" in found
    assert verdict.final_size == 10
    warnings = [str(f) for f in verdict.findings if f.severity == "warning"]
    assert warnings == ["log: entries 10..39 are not yet covered by a final checkpoint"]


def test_lookup_columns_that_disagree_with_the_entry_are_found(audited: Audited) -> None:
    audited.sql("update ledger_entries set project = 'p9' where idx = 5")
    found = errors(audited.verify())
    assert found == [
        "entry 5: lookup columns (type, actor, node, project, time) do not match its content"
    ]


def test_damaged_tree_nodes_are_found(audited: Audited) -> None:
    audited.sql("update ledger_entries set nodes = :n where idx = 15", n=b"\1" * 128)
    found = errors(audited.verify())
    assert "entry 15: stored tree nodes do not match the entries" in found


def test_entries_by_unknown_keys_are_found(audited: Audited) -> None:
    ring = KeyRing(k for k in audited.parties.ring if k.principal != "alice")
    found = errors(audited.verify(keys=ring))
    assert len(found) == 10  # every fourth of 40 entries was alice's
    assert all("signed by unknown key" in f for f in found)


def test_a_rewritten_log_is_caught_by_what_the_witnesses_hold(
    audited: Audited, tmp_path, parties: Parties
) -> None:
    """The log operator rebuilds the whole history with one entry dropped and re-signs
    every checkpoint with the log key. Its own signatures all check out; the witnesses'
    checkpoints and the missing quorum give it away."""
    other = sa.create_engine(f"sqlite:///{tmp_path / 'rewritten.db'}")
    log = Log.create(other, ORIGIN, parties.ring)
    entries = [e.signed for e in audited.log.entries() if e.index != 12]
    log.append(entries[:10])
    log.checkpoint(parties.log_signer)
    log.append(entries[10:])
    log.checkpoint(parties.log_signer)
    rewritten = Audited(other, log, parties, audited.witnesses, audited.held)
    verdict = rewritten.verify(witnessed=audited.held)
    found = errors(verdict)
    assert not verdict.ok
    assert any(
        f.startswith("witnessed checkpoint at size 40: the log now holds only 39") for f in found
    )
    assert verdict.final_size is None
    other.dispose()


def test_a_trusted_head_skips_old_signatures_but_not_hashing(audited: Audited) -> None:
    first = audited.verify()
    again = audited.verify(trusted=first.trusted_head)
    assert again.ok and again.signatures_checked == 0
    change_body(audited, 7, b'"count":7', b'"count":8')
    found = errors(audited.verify(trusted=first.trusted_head))
    assert "entry 7: leaf hash does not match its content" in found
    assert any(f.startswith("trusted head: the entries no longer lead to the root") for f in found)


def test_missing_tables_are_a_finding_not_a_crash(
    sqlite_engine: Engine, parties: Parties, witnesses: Witnesses
) -> None:
    verdict = audit_verify(
        sqlite_engine,
        keys=parties.ring,
        log_key=parties.log_signer.verifier,
        quorum=witnesses.quorum,
    )
    assert not verdict.ok
    assert [str(f) for f in verdict.findings] == [
        "log: the ledger tables are missing or unreadable"
    ]


def test_worker_processes_reach_the_same_verdict(audited: Audited) -> None:
    change_body(audited, 33, b'"count":33', b'"count":34')
    seen: list[tuple[int, int]] = []
    inline = audited.verify()
    pooled = audited.verify(workers=2, progress=lambda done, total: seen.append((done, total)))
    assert pooled.findings == inline.findings
    assert pooled.signatures_checked == inline.signatures_checked == 40
    assert seen[-1] == (40, 40)


@pytest.mark.postgres
def test_tampering_is_found_on_postgresql(
    pg_engine: Engine, parties: Parties, witnesses: Witnesses
) -> None:
    audited = build(pg_engine, parties, witnesses)
    assert audited.verify().ok
    audited.sql("delete from ledger_entries where idx = 12")
    assert "entry 12: missing (next stored: 13)" in errors(audited.verify())


def test_a_body_stored_as_text_is_a_finding_not_a_crash(audited: Audited) -> None:
    audited.sql("update ledger_entries set body = 'not bytes' where idx = 2")
    found = errors(audited.verify())
    assert "entry 2: stored body is not binary data" in found
    assert "entry 2: body is not a signed ledger entry" in found
