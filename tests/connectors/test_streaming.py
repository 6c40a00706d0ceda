"""Readers stream: peak memory while reading a file does not grow with the file's size.

Each reader goes through a small and a ten times larger generated file; peak traced
memory (tracemalloc) must stay well below the tenfold growth a reader holding the file
would show. Only memory is compared, never time.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medspace.connectors import (
    CsvMappingConnector,
    FhirBundleConnector,
    FhirNdjsonConnector,
    Hl7v2Connector,
    Parsed,
)
from medspace.connectors._dates import parse_fhir_datetime, parse_hl7_datetime
from medspace.connectors.csvmap._fields import parse_date

#: Bytes of the small file per reader; the large one is ten times that.
FHIR_SIZE, SLOW_SIZE = 400_000, 200_000
START = datetime(2000, 1, 1)


def condition(n: int, subject: str) -> dict[str, Any]:
    when = (START + timedelta(minutes=37 * n)).isoformat() + "+08:00"
    return {
        "resourceType": "Condition",
        "id": f"H1-C{n:08d}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/sid/icd-10",
                    "code": f"E{n % 100:02d}.{n % 10}",
                    "display": "x" * 400,
                }
            ]
        },
        "subject": {"reference": subject},
        "encounter": {"reference": f"Encounter/H1-E{n // 5:08d}"},
        "onsetDateTime": when,
        "recordedDate": when,
    }


def write_ndjson(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        n = 0
        while f.tell() < size:
            f.write(json.dumps(condition(n, "Patient/H1-P1")).encode() + b"\n")
            n += 1
    return path


def write_bundle(path: Path, size: int) -> Path:
    patient_url = "urn:uuid:6a1f3e2c-0000-4000-8000-000000000001"
    with path.open("wb") as f:
        f.write(b'{"resourceType": "Bundle", "type": "transaction", "entry": [\n')
        f.write(
            json.dumps(
                {"fullUrl": patient_url, "resource": {"resourceType": "Patient", "id": "H1-P1"}}
            ).encode()
        )
        n = 0
        while f.tell() < size:
            entry = {
                "fullUrl": f"urn:uuid:{n:08d}-0000-4000-8000-000000000000",
                "resource": condition(n, patient_url),
            }
            f.write(b",\n" + json.dumps(entry).encode())
            n += 1
        f.write(b"\n]}\n")
    return path


def write_hl7(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        n = 0
        while f.tell() < size:
            when = (START + timedelta(minutes=37 * n)).strftime("%Y%m%d%H%M%S")
            f.write(
                "\r".join(
                    [
                        f"MSH|^~\\&|LIS|H1|MS|H1|{when}||ORU^R01|M{n}|P|2.5.1",
                        f"PID|1||H1-P{n % 500:06d}^^^H1^MR||NAME^GIVEN||19800101|F",
                        f"OBR|1|O{n}||24323-8^CMP^LN|||{when}",
                        *(
                            f"OBX|{i}|NM|2345-7^Glucose^LN||{5 + i / 10}|mmol/L|3.9-6.1|||F"
                            for i in range(1, 9)
                        ),
                    ]
                ).encode()
                + b"\r"
            )
            n += 1
    return path


def write_csv(folder: Path, size: int) -> Path:
    folder.mkdir()
    (folder / "mapping.yaml").write_text(
        "version: 1\ntables:\n  labs.csv:\n    kind: measurement\n    columns:\n"
        "      source_id: ID\n      patient_id: PAT\n      code.system: {value: LOINC}\n"
        "      code.code: CODE\n      value: VAL\n      unit: UNIT\n      time: TIME\n"
    )
    with (folder / "labs.csv").open("wb") as f:
        f.write(b"ID,PAT,CODE,VAL,UNIT,TIME\n")
        n = 0
        while f.tell() < size:
            when = (START + timedelta(minutes=37 * n)).strftime("%Y-%m-%d %H:%M:%S")
            f.write(f"L{n},H1-P{n % 500},2345-7,{n % 97 / 10},mmol/L,{when}\n".encode())
            n += 1
    return folder


def peak_while_reading(outcomes: Callable[[], Iterable[Any]]) -> tuple[int, int]:
    """(peak traced bytes, units read), starting from empty caches."""
    for cached in (parse_fhir_datetime, parse_hl7_datetime, parse_date):
        cached.cache_clear()
    gc.collect()
    tracemalloc.start()
    units = 0
    try:
        for outcome in outcomes():
            assert isinstance(outcome, Parsed), outcome
            units += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, units


SLOW = pytest.mark.slow  # tracemalloc makes these two slow; `make test-all` runs them
READERS = [
    ("fhir-ndjson", lambda p, s: write_ndjson(p / "c.ndjson", s), FhirNdjsonConnector, FHIR_SIZE),
    ("fhir-bundle", lambda p, s: write_bundle(p / "b.json", s), FhirBundleConnector, FHIR_SIZE),
    pytest.param(
        "hl7v2", lambda p, s: write_hl7(p / "m.hl7", s), Hl7v2Connector, SLOW_SIZE, marks=SLOW
    ),
    pytest.param(
        "csv-mapping",
        lambda p, s: write_csv(p / "csv", s),
        CsvMappingConnector,
        SLOW_SIZE,
        marks=SLOW,
    ),
]


@pytest.mark.parametrize(("fmt", "write", "connector", "size"), READERS)
def test_peak_memory_does_not_grow_with_file_size(
    tmp_path: Path, fmt: str, write: Callable[[Path, int], Path], connector: type, size: int
) -> None:
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small = write(tmp_path / "small", size)
    large = write(tmp_path / "large", 10 * size)
    small_peak, small_units = peak_while_reading(lambda: connector().read(small))
    large_peak, large_units = peak_while_reading(lambda: connector().read(large))
    assert large_units > 8 * small_units  # the large file really is about ten times larger
    # A reader that held the file (or its outcomes) would need about 10x; allow noise.
    assert large_peak < 2 * small_peak + 256 * 1024, (fmt, small_peak, large_peak)
