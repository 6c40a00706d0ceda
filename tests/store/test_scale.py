"""Scale: a 100k-unit ingest stays correct; its throughput is printed, never asserted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from medspace.connectors.base import Outcome
from medspace.node import Node

from .samples import condition, encounter, measurement, note, parsed, patient

PATIENTS = 10_000


def _hospital() -> Iterator[Outcome]:
    for i in range(PATIENTS):
        yield parsed(i, patient(i + 1))
        yield parsed(i, encounter(i, patient_n=i + 1))
        yield parsed(i, condition(i, patient_n=i + 1))
        for j in range(5):
            yield parsed(i, measurement(i * 5 + j, patient_n=i + 1))
        yield parsed(i, note(i, patient_n=i + 1))
        if i % 1000 == 0:
            yield parsed(i, patient(i + 1))  # an identical repeat now and then


@pytest.mark.slow
def test_a_large_ingest_is_complete_and_balanced(
    node: Node, record_property: pytest.RecordProperty
) -> None:
    units = list(_hospital())
    started = time.perf_counter()
    report = node.store.ingest(units, source="scale")
    seconds = time.perf_counter() - started
    rate = report.received / seconds
    record_property("units_per_second", round(rate))
    print(
        f"\n{node.config.db_url.split(':')[0]}: {report.received:,} units in {seconds:.2f} s"
        f" = {rate:,.0f} units/s ({1e6 / rate:.1f} us/unit)"
    )
    assert report.received == len(units)
    assert (report.stored, report.quarantined, report.repeated) == (len(units), 0, 10)
    stats = node.store.stats()
    assert stats.rows["person"] == PATIENTS
    assert stats.rows["measurement"] == PATIENTS * 5
    assert stats.rows["note"] == PATIENTS
    assert stats.rows["data_key"] == PATIENTS
    assert node.store.patient_identity(f"P{PATIENTS}").family_name == f"Family{PATIENTS}"
    again = node.store.ingest(units, source="scale")
    assert again.records == report.records
    assert node.store.stats().rows["measurement"] == PATIENTS * 5
