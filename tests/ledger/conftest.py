"""Fixtures for ledger tests: keys, entries, a log on SQLite or PostgreSQL, witnesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from medspace.ledger import (
    Cosigner,
    Entry,
    KeyRing,
    Log,
    NoteSigner,
    Quorum,
    SignedEntry,
    Witness,
    sign_entry,
)

ORIGIN = "medspace.test/ledger"
ACTORS = ("hub", "h1", "h2", "alice")


@dataclass
class Parties:
    """Entry signers, the key ring that knows them, and the log's checkpoint signer."""

    signers: dict[str, Ed25519PrivateKey]
    ring: KeyRing
    log_signer: NoteSigner

    def entry(
        self, n: int, actor: str = "h1", project: str | None = "p1", **kw: object
    ) -> SignedEntry:
        """A valid signed entry, distinct for each n."""
        fields: dict[str, object] = {
            "type": "compute",
            "actor": actor,
            "time": f"2025-03-01T10:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000000:06d}Z",
            "node": "h1",
            "project": project,
            "artefacts": {"query": "sha256:" + format(n, "064x")},
            "details": {"count": n},
        }
        fields.update(kw)
        return sign_entry(Entry(**fields), self.signers[actor])  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def parties() -> Parties:
    signers = {actor: Ed25519PrivateKey.generate() for actor in ACTORS}
    ring = KeyRing()
    for actor, key in signers.items():
        ring.add(actor, key.public_key())
    return Parties(signers, ring, NoteSigner(ORIGIN, Ed25519PrivateKey.generate()))


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_schema_url: str) -> Iterator[Engine]:
    """A private schema in the shared test database (see tests/conftest.py), dropped after."""
    engine = sa.create_engine(pg_schema_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The log's database: each test using it runs on SQLite and on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)


@pytest.fixture
def log(sqlite_engine: Engine, parties: Parties) -> Log:
    return Log.create(sqlite_engine, ORIGIN, parties.ring)


@dataclass
class Witnesses:
    """Three node witnesses with state files and the quorum (majority: 2) they form."""

    nodes: list[Witness]
    quorum: Quorum
    make: Callable[[int], Witness]


@pytest.fixture
def witnesses(tmp_path: Path, parties: Parties) -> Witnesses:
    cosigners = [Cosigner(f"witness.h{n}.test", Ed25519PrivateKey.generate()) for n in (1, 2, 3)]

    def make(n: int) -> Witness:
        path = tmp_path / f"witness{n}.json"
        return Witness(cosigners[n], [parties.log_signer.verifier], path)

    return Witnesses([make(n) for n in range(3)], Quorum([c.verifier for c in cosigners]), make)
