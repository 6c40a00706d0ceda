"""Linkage quality on synthetic hospitals: precision and recall against linkage_truth.json.

The generator (`medspace synth`) records which hospital-local patients are one person and
what noise one of their records got (name typo, missing ID, missing phone, new address).
Here every hospital's patients are read from their FHIR export (through the connector, as
a node would ingest them), tokenised under a fresh key and written to an index of the same
shape as a node's; then, for every pair of hospitals, every patient of the one is probed
in the other with the real `probe`. A predicted pair is a true pair when the truth lists
both records under one person. Three ways are measured:

- exact: the exact token alone (a national ID on both sides);
- fuzzy: no ID sent: the CLK with the phone and address tokens as evidence
  (`medspace.linkage.evidence`), at each threshold;
- fuzzy, name only: the CLK alone (no ID, phone or address sent), the hardest case;
- combined: what a lookup does: exact when it matches, CLK otherwise.

Recall per noise kind is given for both fuzzy ways; false pairs have no noise kind (they
are different people), so precision is per way.

Recall counts every true cross-hospital pair, including those a way cannot see (the exact
token cannot find a record whose ID is missing): that is the point of measuring.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from medspace.connectors import Parsed, read_any
from medspace.linkage.bloom import DEFAULT_SCHEMA, ClkSchema
from medspace.linkage.errors import LinkageInputError
from medspace.linkage.index import DEFAULT_THRESHOLD, ensure_table, probe, write_tokens
from medspace.linkage.key import LinkageKey
from medspace.linkage.tokens import LinkageTokens, TokenMaker, tokens_for_patients
from medspace.model import Patient

Pair = tuple[tuple[str, str], tuple[str, str]]  # ((hospital, patient id), (hospital, id))
#: Thresholds reported beside the chosen one, to show the trade-off.
CURVE = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
_FLOOR = min(CURVE)


@dataclass(frozen=True, slots=True)
class Quality:
    """Pairs predicted, of which true, against the pairs the truth lists."""

    predicted: int
    true_positives: int
    truth: int

    @property
    def precision(self) -> float:
        """True predicted pairs / predicted pairs (1.0 when nothing was predicted)."""
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        """True predicted pairs / true pairs (1.0 when the truth is empty)."""
        return self.true_positives / self.truth if self.truth else 1.0

    def to_json(self) -> dict[str, Any]:
        """Counts with precision and recall rounded to 5 digits."""
        return {
            "predicted": self.predicted,
            "true_positives": self.true_positives,
            "truth_pairs": self.truth,
            "precision": round(self.precision, 5),
            "recall": round(self.recall, 5),
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of `evaluate`: quality per way, and the fuzzy trade-off per threshold."""

    threshold: float
    hospitals: int
    patients: int
    truth_pairs: int
    exact: Quality
    fuzzy: Quality
    combined: Quality
    fuzzy_curve: dict[float, Quality]
    by_noise: dict[str, Quality]
    name_only: Quality
    name_only_curve: dict[float, Quality]
    name_only_by_noise: dict[str, Quality]
    encode_seconds: float
    probe_seconds: float
    probes: int
    schema: str = field(default=DEFAULT_SCHEMA.tag)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (counts, precision, recall; no patient data)."""
        return {
            "threshold": self.threshold,
            "clk_schema": self.schema,
            "hospitals": self.hospitals,
            "patients": self.patients,
            "truth_pairs": self.truth_pairs,
            "exact": self.exact.to_json(),
            "fuzzy": self.fuzzy.to_json(),
            "combined": self.combined.to_json(),
            "fuzzy_by_threshold": {f"{t:.2f}": q.to_json() for t, q in self.fuzzy_curve.items()},
            "fuzzy_recall_by_noise": {k: q.to_json() for k, q in sorted(self.by_noise.items())},
            "fuzzy_name_only": self.name_only.to_json(),
            "fuzzy_name_only_by_threshold": {
                f"{t:.2f}": q.to_json() for t, q in self.name_only_curve.items()
            },
            "fuzzy_name_only_recall_by_noise": {
                k: q.to_json() for k, q in sorted(self.name_only_by_noise.items())
            },
            "encodings_per_second": round(self.patients / self.encode_seconds)
            if self.encode_seconds
            else None,
            "probes": self.probes,
            "probe_ms_mean": round(1000 * self.probe_seconds / self.probes, 3)
            if self.probes
            else None,
        }


def _hospital_ids(synth_dir: Path) -> list[str]:
    try:
        listed = json.loads((synth_dir / "hospitals.json").read_text(encoding="utf-8"))
        return [str(h["id"]) for h in listed]
    except (OSError, ValueError, KeyError, TypeError):
        raise LinkageInputError(
            f"{synth_dir} is not a synthetic hospitals folder (hospitals.json missing or "
            "damaged): make one with `medspace synth --out DIR`"
        ) from None


def _patients(synth_dir: Path, hospital: str) -> Iterator[Patient]:
    path = synth_dir / hospital / "fhir" / "ndjson" / "Patient.ndjson"
    if not path.is_file():
        raise LinkageInputError(f"{hospital} has no fhir/ndjson/Patient.ndjson under {synth_dir}")
    for outcome in read_any(path, "fhir-ndjson"):
        if isinstance(outcome, Parsed):
            yield from (r for r in outcome.records if isinstance(r, Patient))


def _truth(synth_dir: Path) -> tuple[set[Pair], dict[Pair, str]]:
    try:
        doc = json.loads((synth_dir / "linkage_truth.json").read_text(encoding="utf-8"))
        persons = doc["persons"]
    except (OSError, ValueError, KeyError, TypeError):
        raise LinkageInputError(
            f"{synth_dir} has no readable linkage_truth.json: give the folder `medspace "
            "synth` wrote"
        ) from None
    pairs: set[Pair] = set()
    noisy: dict[Pair, str] = {}
    for person in persons:
        records = sorted((r["hospital"], r["patient_id"]) for r in person["records"])
        noise = person.get("noise")
        for a, b in combinations(records, 2):
            pairs.add((a, b))
            if noise and (noise["hospital"], noise["patient_id"]) in (a, b):
                noisy[(a, b)] = str(noise["kind"])
    return pairs, noisy


def _memory_index() -> Engine:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    ensure_table(engine)
    return engine


def _quality(predicted: set[Pair], truth: set[Pair]) -> Quality:
    return Quality(len(predicted), len(predicted & truth), len(truth))


def _curve(scores: dict[Pair, float], truth: set[Pair], threshold: float) -> dict[float, Quality]:
    return {
        t: _quality({p for p, s in scores.items() if s >= t}, truth)
        for t in sorted({*CURVE, threshold})
    }


def _by_noise(
    scores: dict[Pair, float], noisy: dict[Pair, str], threshold: float
) -> dict[str, Quality]:
    by_noise: dict[str, Quality] = {}
    for kind in sorted(set(noisy.values())):
        wanted = {p for p, k in noisy.items() if k == kind}
        found = {p for p in wanted if scores.get(p, 0.0) >= threshold}
        by_noise[kind] = Quality(len(found), len(found), len(wanted))
    return by_noise


def evaluate(
    synth_dir: Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    schema: ClkSchema = DEFAULT_SCHEMA,
    key: LinkageKey | None = None,
) -> Evaluation:
    """Measure exact, fuzzy and combined linkage on a `medspace synth` output folder.

    Raises `LinkageInputError` when the folder is not one.
    """
    synth_dir = Path(synth_dir)
    hospitals = _hospital_ids(synth_dir)
    truth, noisy = _truth(synth_dir)
    maker = TokenMaker(key or LinkageKey.generate(), schema)
    tokens: dict[str, list[tuple[str, LinkageTokens]]] = {}
    indexes: dict[str, Engine] = {}
    encode_seconds = 0.0
    patients = 0
    for hospital in hospitals:
        people = list(_patients(synth_dir, hospital))
        started = time.perf_counter()
        made = tokens_for_patients(maker, people)
        encode_seconds += time.perf_counter() - started
        patients += len(people)
        mine = [(p.source_id, t) for p, t in zip(people, made, strict=True) if t is not None]
        tokens[hospital] = mine
        indexes[hospital] = _memory_index()
        with indexes[hospital].begin() as conn:
            write_tokens(conn, mine)
    exact: set[Pair] = set()
    combined: set[Pair] = set()
    fuzzy_scores: dict[Pair, float] = {}
    name_scores: dict[Pair, float] = {}
    probes = 0
    probe_seconds = 0.0
    for first, second in combinations(hospitals, 2):
        with indexes[second].connect() as conn:
            for source_id, mine_tokens in tokens[first]:
                a = (first, source_id)
                started = time.perf_counter()
                for match in probe(conn, mine_tokens, threshold=threshold, schema=schema):
                    combined.add((a, (second, match.person_source_id)))
                probe_seconds += time.perf_counter() - started
                probes += 1
                if mine_tokens.exact is not None:
                    only_exact = replace(mine_tokens, clk=None, blocks={})
                    for match in probe(conn, only_exact, schema=schema):
                        exact.add((a, (second, match.person_source_id)))
                if mine_tokens.clk is not None:
                    no_id = replace(mine_tokens, exact=None)
                    for match in probe(conn, no_id, threshold=_FLOOR, schema=schema):
                        fuzzy_scores[(a, (second, match.person_source_id))] = match.score
                    name_only = replace(no_id, phone=None, address=None)
                    for match in probe(conn, name_only, threshold=_FLOOR, schema=schema):
                        name_scores[(a, (second, match.person_source_id))] = match.score
    curve = _curve(fuzzy_scores, truth, threshold)
    name_curve = _curve(name_scores, truth, threshold)
    return Evaluation(
        threshold=threshold,
        hospitals=len(hospitals),
        patients=patients,
        truth_pairs=len(truth),
        exact=_quality(exact, truth),
        fuzzy=curve[threshold],
        combined=_quality(combined, truth),
        fuzzy_curve=curve,
        by_noise=_by_noise(fuzzy_scores, noisy, threshold),
        name_only=name_curve[threshold],
        name_only_curve=name_curve,
        name_only_by_noise=_by_noise(name_scores, noisy, threshold),
        encode_seconds=encode_seconds,
        probe_seconds=probe_seconds,
        probes=probes,
        schema=schema.tag,
    )
