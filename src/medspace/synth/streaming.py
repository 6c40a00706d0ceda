"""Stream a hospital's charts to disk, in one process or split into ranges across several.

A range of patients [start, stop) is self-contained: every patient's data comes from
generators seeded by (seed, hospital, index), so ranges can be written in any order by any
process. Parallel ranges write their stream files into `.parts/<start>/` and are then
appended in index order, so the files are byte-identical whatever the number of workers.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from medspace.synth.chart import Chart
from medspace.synth.clinic import build_chart
from medspace.synth.hospital import Hospital, external_hospital_name
from medspace.synth.linkage import LinkagePlan, apply_noise
from medspace.synth.notes import SPAN_TYPES
from medspace.synth.people import make_person, pools
from medspace.synth.profile import make_profile
from medspace.synth.randomness import rng_for
from medspace.synth.write_csv import CsvWriter
from medspace.synth.write_fhir import RESOURCE_TYPES, FhirWriter
from medspace.synth.write_hl7 import Hl7Writer

GOLD_FILE = "notes_gold.jsonl"
#: Stream files of a hospital (relative paths) that ranges append to, in this order.
STREAM_FILES: tuple[str, ...] = (
    *(f"fhir/ndjson/{kind}.ndjson" for kind in RESOURCE_TYPES),
    "hl7v2/adt_a01.hl7",
    "hl7v2/oru_r01.hl7",
    "csv/patients.csv",
    "csv/encounters.csv",
    "csv/diagnoses.csv",
    "csv/drugs.csv",
    "csv/labs.csv",
    "csv/observations.csv",
    "csv/procedures.csv",
    "csv/allergies.csv",
    "csv/notes.csv",
    GOLD_FILE,
)


@dataclass(frozen=True, slots=True)
class Run:
    """Everything a range needs besides its bounds: the seed, the hospitals and the plan."""

    seed: int
    hospitals: tuple[Hospital, ...]
    plan: LinkagePlan

    def hospital(self, number: int) -> Hospital:
        """The hospital with this 1-based number."""
        return self.hospitals[number - 1]


@dataclass(slots=True)
class Tally:
    """Realised counts of a range or a hospital, for ground_truth.json and the summary."""

    counts: dict[str, int] = field(default_factory=dict)
    expected_responders: float = 0.0
    expected_mi: float = 0.0
    spans: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPAN_TYPES, 0))
    #: index of a shared person -> (noise kind applied, field changed)
    applied: dict[int, tuple[str, str]] = field(default_factory=dict)

    def _add(self, key: str, amount: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + amount

    def add(self, chart: Chart, shared: bool) -> None:
        """Count one written chart."""
        profile = chart.profile
        self._add("patients")
        self._add("shared_patients", int(shared))
        self._add("records", chart.record_count)
        self._add("notes", len(chart.notes))
        for key in ("hcc", "diabetes", "hypertension", "mi"):
            self._add(key, int(profile.has(key)))
        self._add("hcc_treated", int(profile.hcc_treated))
        self._add("responders", int(profile.response == "improved"))
        self._add("age_over_89", int(profile.age > 89))
        self.expected_responders += profile.response_probability or 0.0
        self.expected_mi += profile.mi_probability
        for gold in chart.notes:
            for span in gold.spans:
                self.spans[span.type] += 1

    def merge(self, other: Tally) -> None:
        """Add another range's counts to this one."""
        for key, value in other.counts.items():
            self._add(key, value)
        self.expected_responders += other.expected_responders
        self.expected_mi += other.expected_mi
        for key, value in other.spans.items():
            self.spans[key] += value
        self.applied.update(other.applied)

    def document(self) -> dict[str, Any]:
        """The JSON form written to ground_truth.json under `realized`."""
        return {
            **{key: self.counts[key] for key in sorted(self.counts)},
            "expected_responders": round(self.expected_responders, 3),
            "expected_mi": round(self.expected_mi, 3),
            "gold_spans": dict(self.spans),
        }


def _referral_names(run: Run, hospital: Hospital) -> tuple[str, ...]:
    peers = [h.name for h in run.hospitals if h.language == hospital.language and h != hospital]
    rng = rng_for(run.seed, "referrals", hospital.number)
    outside = [external_hospital_name(rng, hospital.language) for _ in range(3)]
    return tuple(dict.fromkeys(peers + outside))


def charts(
    run: Run, hospital: Hospital, start: int, stop: int, tally: Tally | None = None
) -> Iterator[tuple[Chart, bool]]:
    """Yield (chart, is shared person) for patients start..stop-1 of `hospital`.

    Noise applied to shared persons is recorded in `tally.applied` when a tally is given.
    """
    seed, plan = run.seed, run.plan
    referrals = _referral_names(run, hospital)
    for index in range(start, stop):
        slot = plan.slot(hospital.number, index)
        shared = None if slot is None else plan.persons[slot[0]]
        locale = hospital.locale if shared is None else shared.locale
        path: tuple[object, ...] = (hospital.number, index) if shared is None else (shared.key,)
        rng = rng_for(seed, "person", *path)
        person = make_person(rng, locale, pools(locale, seed))
        profile = make_profile(rng, person)
        chart_rng = rng_for(seed, "chart", hospital.number, index)
        if slot is not None and shared is not None and slot[1] == shared.noise_at and shared.noise:
            pool = pools(locale, seed)
            person, kind, changed = apply_noise(chart_rng, person, shared.noise, pool)
            if tally is not None:
                tally.applied[slot[0]] = (kind, changed)
        referral = chart_rng.choice(referrals)
        yield build_chart(chart_rng, hospital, index, person, profile, referral), shared is not None


def _write_gold(handle: BinaryIO, chart: Chart) -> None:
    for gold in chart.notes:
        note = gold.note
        line = {
            "note_id": note.source_id,
            "patient_id": note.patient_id,
            "hospital": chart.hospital.id,
            "language": note.language,
            "text": note.text,
            "spans": [{"start": s.start, "end": s.end, "type": s.type} for s in gold.spans],
        }
        handle.write(orjson.dumps(line) + b"\n")


def write_range(
    run: Run,
    number: int,
    start: int,
    stop: int,
    target: Path,
    bundles: Path,
    progress: Any = None,
    every: int = 100,
) -> Tally:
    """Write patients start..stop-1 of hospital `number`: stream files under `target`,
    bundles into `bundles`. Calls `progress(n)` every `every` patients when given."""
    hospital = run.hospital(number)
    tally = Tally()
    fhir = FhirWriter(target, bundles)
    hl7 = Hl7Writer(target)
    tables = CsvWriter(target, hospital.locale)
    gold = open(target / GOLD_FILE, "ab")  # noqa: SIM115
    pending = 0
    try:
        for chart, shared in charts(run, hospital, start, stop, tally):
            fhir.write(chart, chart_number(chart))
            hl7.write(chart)
            tables.write(chart)
            _write_gold(gold, chart)
            tally.add(chart, shared)
            pending += 1
            if progress is not None and pending >= every:
                progress(pending)
                pending = 0
        if progress is not None and pending:
            progress(pending)
    finally:
        fhir.close()
        hl7.close()
        tables.close()
        gold.close()
    return tally


def chart_number(chart: Chart) -> int:
    """The 1-based number of the chart's patient in its hospital (from H1-P000042)."""
    return int(chart.patient.source_id.rsplit("-P", 1)[1])


# --- parallel ranges -------------------------------------------------------------------

_RUN: Run | None = None


def init_worker(run: Run) -> None:
    """Process-pool initializer: keep the run in the worker (sent once, not per range)."""
    global _RUN
    _RUN = run


def part_dir(root: Path, start: int) -> Path:
    """Where a parallel range starting at `start` writes its stream files."""
    return root / ".parts" / f"{start:09d}"


def write_part(number: int, start: int, stop: int, root: str) -> Tally:
    """Worker entry: write one range of hospital `number` into its part directory."""
    if _RUN is None:
        raise RuntimeError("write_part runs only in a worker set up by init_worker")
    base = Path(root)
    target = part_dir(base, start)
    target.mkdir(parents=True)
    return write_range(_RUN, number, start, stop, target, base / "fhir" / "bundles")


def join_parts(root: Path, starts: list[int]) -> None:
    """Append every part's stream files to the hospital's files in index order, then
    remove the parts."""
    for relative in STREAM_FILES:
        with open(root / relative, "ab") as joined:
            for start in sorted(starts):
                with open(part_dir(root, start) / relative, "rb") as part:
                    shutil.copyfileobj(part, joined, 1 << 20)
    shutil.rmtree(root / ".parts")
