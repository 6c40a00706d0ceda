"""`generate()`: write synthetic hospitals in FHIR R4, HL7 v2.5 and CSV with ground truth.

Patients are streamed, so memory holds one chart per process (plus the linkage plan, a
few integers per shared person). Large runs are split into ranges written by worker
processes and joined in order (see `streaming.py`); the files are the same either way.
The output appears under `out` only when everything was written: work happens in a hidden
sibling directory that is renamed at the end, and removed if anything fails.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faker

import medspace
from medspace.synth.chart import Chart
from medspace.synth.errors import SynthError
from medspace.synth.hospital import UTC_OFFSETS, hospital_locales, make_hospitals
from medspace.synth.linkage import linkage_truth, plan_linkage
from medspace.synth.notes import SPAN_TYPES
from medspace.synth.signals import ground_truth
from medspace.synth.streaming import (
    Run,
    Tally,
    charts,
    init_worker,
    join_parts,
    write_part,
    write_range,
)
from medspace.synth.write_csv import encoding_for, write_headers, write_mapping
from medspace.synth.write_fhir import IDENTIFIER_SYSTEMS, MRN_SYSTEM

_MAX_PATIENTS = 10**8  # MRNs are 8 digits and unique per hospital
_CHUNK = 2000  # patients per parallel range
_MAX_WORKERS = 8

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class HospitalSummary:
    """What was written for one hospital."""

    id: str
    name: str
    locale: str
    patients: int
    shared_patients: int
    records: int
    notes: int


@dataclass(frozen=True, slots=True)
class SynthSummary:
    """What `generate()` wrote. `str()` gives a one-line account without patient data."""

    out: Path
    seed: int
    hospitals: tuple[HospitalSummary, ...]
    shared_persons: int
    workers: int
    seconds: float

    @property
    def patients(self) -> int:
        """Patients over all hospitals (a shared person counts once per hospital)."""
        return sum(h.patients for h in self.hospitals)

    @property
    def shared_patients(self) -> int:
        """Patients known at two or more hospitals, counted per hospital."""
        return sum(h.shared_patients for h in self.hospitals)

    @property
    def records(self) -> int:
        """Model records over all hospitals, patients included."""
        return sum(h.records for h in self.hospitals)

    @property
    def notes(self) -> int:
        """Clinical notes over all hospitals."""
        return sum(h.notes for h in self.hospitals)

    def __str__(self) -> str:
        return (
            f"{len(self.hospitals)} hospitals, {self.patients:,} patients "
            f"({self.shared_patients:,} known at 2+ hospitals), {self.records:,} records, "
            f"{self.notes:,} notes"
        )


def _check(hospitals: int, patients: int, seed: int, shared_share: float) -> None:
    if isinstance(hospitals, bool) or not isinstance(hospitals, int) or hospitals < 1:
        raise SynthError("hospitals must be a whole number of at least 1")
    if isinstance(patients, bool) or not isinstance(patients, int) or patients < 1:
        raise SynthError("patients must be a whole number of at least 1 (per hospital)")
    if patients > _MAX_PATIENTS:
        raise SynthError(f"patients per hospital can be at most {_MAX_PATIENTS:,}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SynthError("seed must be a whole number")
    if (
        isinstance(shared_share, bool)
        or not isinstance(shared_share, int | float)
        or not math.isfinite(shared_share)
        or not 0.0 <= shared_share <= 1.0
    ):
        raise SynthError("shared_share must be a number between 0 and 1, e.g. 0.15")


def _prepare(out: Path) -> Path:
    if out.exists():
        if not out.is_dir():
            raise SynthError("the output path is a file: give a directory that does not exist")
        if any(out.iterdir()):
            raise SynthError(
                "the output directory is not empty: choose a new --out or remove it first"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))


def _publish(work: Path, out: Path) -> None:
    work.chmod(0o755)
    if out.exists():
        out.rmdir()
    work.rename(out)


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _setup_hospital(work: Path, run: Run, number: int) -> Path:
    hospital = run.hospital(number)
    root = work / hospital.id
    for folder in ("fhir/bundles", "fhir/ndjson", "hl7v2", "csv"):
        (root / folder).mkdir(parents=True)
    write_mapping(root, hospital.locale)
    write_headers(root, hospital.locale)
    return root


def _ranges(patients: int) -> list[tuple[int, int]]:
    return [(start, min(patients, start + _CHUNK)) for start in range(0, patients, _CHUNK)]


def _resolve_workers(workers: int | None, hospitals: int, patients: int) -> int:
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise SynthError("workers must be a whole number of at least 1")
        return workers
    if hospitals * patients < 2 * _CHUNK:
        return 1  # starting processes costs more than it saves
    return max(1, min(os.cpu_count() or 1, _MAX_WORKERS))


def _process_context() -> multiprocessing.context.BaseContext:
    # Forking is safe only while this process runs one thread (a thread holding a lock at
    # fork time would leave the lock held in the child); with more threads (a progress bar,
    # a server), spawn starts clean workers, which needs the usual `__main__` guard.
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _write_parallel(
    work: Path, run: Run, patients: int, workers: int, progress: Progress | None
) -> dict[int, Tally]:
    roots = {h.number: _setup_hospital(work, run, h.number) for h in run.hospitals}
    context = _process_context()
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=init_worker, initargs=(run,)
    )
    tallies = {h.number: Tally() for h in run.hospitals}
    try:
        futures: dict[Future[Tally], tuple[int, int, int]] = {}
        for h in run.hospitals:
            for start, stop in _ranges(patients):
                future = pool.submit(write_part, h.number, start, stop, str(roots[h.number]))
                futures[future] = (h.number, start, stop)
        for future in as_completed(futures):
            number, start, stop = futures[future]
            tallies[number].merge(future.result())
            if progress is not None:
                progress(stop - start)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for h in run.hospitals:
        join_parts(roots[h.number], [start for start, _ in _ranges(patients)])
    return tallies


def _write_sequential(
    work: Path, run: Run, patients: int, progress: Progress | None
) -> dict[int, Tally]:
    tallies = {}
    for h in run.hospitals:
        root = _setup_hospital(work, run, h.number)
        tallies[h.number] = write_range(
            run, h.number, 0, patients, root, root / "fhir" / "bundles", progress
        )
    return tallies


def _truth_document(
    run: Run, locale: str, patients: int, shared_share: float, tallies: dict[int, Tally]
) -> dict[str, Any]:
    return {
        "generator": "medspace.synth",
        "medspace_version": medspace.__version__,
        "faker_version": faker.VERSION,
        "seed": run.seed,
        "locale": locale,
        "hospitals": len(run.hospitals),
        "patients_per_hospital": patients,
        "shared_share": shared_share,
        "linkage_truth": "linkage_truth.json",
        "identifier_systems": {
            "fhir": {**IDENTIFIER_SYSTEMS, "MRN": MRN_SYSTEM},
            "hl7v2_pid3": {"CN-RID": "CN-RID^NI", "US-SSN": "US-SSN^SS", "MRN": "<H1>^MR"},
        },
        "gold_span_types": list(SPAN_TYPES),
        "gold_span_notes": (
            "AGE spans only ages over 89 (HIPAA Safe Harbor); younger ages appear untagged."
        ),
        "signals": ground_truth(),
        "realized": {run.hospital(n).id: tally.document() for n, tally in tallies.items()},
    }


def _make_run(hospitals: int, patients: int, seed: int, locale: str, shared_share: float) -> Run:
    _check(hospitals, patients, seed, shared_share)
    made = make_hospitals(seed, hospital_locales(hospitals, locale))
    return Run(seed, made, plan_linkage(seed, made, patients, shared_share))


def iter_charts(
    *,
    hospitals: int,
    patients: int,
    seed: int = 0,
    locale: str = "mixed",
    shared_share: float = 0.15,
) -> Iterator[Chart]:
    """Yield, without writing anything, the charts `generate()` with the same arguments
    writes: hospital by hospital, patient by patient. Raises `SynthError` like it."""
    run = _make_run(hospitals, patients, seed, locale, shared_share)
    for hospital in run.hospitals:
        for chart, _ in charts(run, hospital, 0, patients):
            yield chart


def generate(
    out: Path,
    *,
    hospitals: int,
    patients: int,
    seed: int = 0,
    locale: str = "mixed",
    shared_share: float = 0.15,
    progress: Progress | None = None,
    workers: int | None = None,
) -> SynthSummary:
    """Write `hospitals` synthetic hospitals of `patients` patients each under `out`.

    The same arguments (and the same Faker version) write byte-identical files, whatever
    `workers` is. `locale` is zh_CN, en_US or mixed (h1 zh_CN, h2 en_US, ...);
    `shared_share` of each hospital's patients are known at 2+ hospitals; `progress(n)` is
    called with the number of patients written since its previous call; `workers` is the
    number of processes (default: one per CPU, up to 8, for runs of 4,000+ patients;
    a caller that runs threads must guard its `__main__`, as for any spawned process).
    Raises `SynthError` for bad arguments or a non-empty `out`; on any failure nothing is
    left under `out`.
    """
    started = time.perf_counter()
    run = _make_run(hospitals, patients, seed, locale, shared_share)
    workers = _resolve_workers(workers, hospitals, patients)
    out = Path(out)
    work = _prepare(out)
    try:
        if workers > 1:
            tallies = _write_parallel(work, run, patients, workers, progress)
        else:
            tallies = _write_sequential(work, run, patients, progress)
        _write_json(
            work / "hospitals.json",
            [
                {
                    "id": h.id,
                    "name": h.name,
                    "locale": h.locale,
                    "patients": patients,
                    "utc_offset": UTC_OFFSETS[h.locale],
                    "csv_encoding": encoding_for(h.locale),
                }
                for h in run.hospitals
            ],
        )
        _write_json(
            work / "ground_truth.json",
            _truth_document(run, locale, patients, shared_share, tallies),
        )
        applied: dict[int, tuple[str, str]] = {}
        for tally in tallies.values():
            applied.update(tally.applied)
        truth = linkage_truth(run.plan, run.hospitals, applied, shared_share)
        _write_json(work / "linkage_truth.json", truth)
        _publish(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    summaries = tuple(
        HospitalSummary(
            id=h.id,
            name=h.name,
            locale=h.locale,
            patients=patients,
            shared_patients=tallies[h.number].counts.get("shared_patients", 0),
            records=tallies[h.number].counts.get("records", 0),
            notes=tallies[h.number].counts.get("notes", 0),
        )
        for h in run.hospitals
    )
    return SynthSummary(
        out, seed, summaries, len(run.plan.persons), workers, time.perf_counter() - started
    )
