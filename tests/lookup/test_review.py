"""The node's lookup log: replays, review verdicts, alerts that fire once per crossing,
flags and the outbox of signed entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from medspace.lookup.alerts import (
    MANY_SITES,
    RATE,
    AlertLimits,
    clinician_alerts,
    patient_alerts,
)
from medspace.lookup.errors import RequestRejected, ReviewError
from medspace.lookup.review import ANSWERED, LookupLog

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _event(log: LookupLog, n: int, *, requester: str = "h1", glass: bool = False) -> int:
    return log.record(
        request=f"00000000-0000-4000-8000-{n:012d}",
        role=ANSWERED,
        now=NOW + timedelta(seconds=n),
        clinician="dr-h1",
        requester=requester,
        purpose="BTG" if glass else "ETREAT",
        break_glass=glass,
        justification="a [PERSON] collapsed",
        justification_sha256="0" * 64,
        status="received",
    )


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LookupLog]:
    opened = LookupLog(tmp_path)
    yield opened
    opened.close()


def test_the_log_file_is_private(tmp_path: Path, log: LookupLog) -> None:
    assert (tmp_path / "lookup.db").stat().st_mode & 0o077 == 0


def test_a_request_is_logged_once_per_role(log: LookupLog) -> None:
    _event(log, 1)
    with pytest.raises(RequestRejected, match="seen before"):
        _event(log, 1)


def test_the_rate_alert_fires_once_when_the_limit_is_crossed(log: LookupLog) -> None:
    limits = AlertLimits(max_lookups_per_hour=3)
    fired = []
    for n in range(6):
        _event(log, n)
        fired += clinician_alerts(
            log,
            limits,
            requester="h1",
            clinician="dr-h1",
            role=ANSWERED,
            now=NOW + timedelta(seconds=n),
        )
    assert [(a.kind, a.count) for a in fired] == [(RATE, 4)]


def test_a_patient_looked_up_from_many_sites_raises_one_alert(log: LookupLog) -> None:
    limits = AlertLimits(many_sites=3)
    fired = []
    for n, site in enumerate(["h1", "h2", "h2", "h3", "h4"]):
        event = _event(log, n, requester=site)
        log.finish(event, "match", [("pseudo-1", "exact")], now=NOW, requester=site)
        fired += patient_alerts(log, limits, pseudonym="pseudo-1", now=NOW)
    assert [(a.kind, a.count) for a in fired] == [(MANY_SITES, 3)]


def test_a_flagged_patient_alerts_on_every_match(log: LookupLog) -> None:
    log.set_flag("pseudo-2", "staff")
    kinds = [a.kind for a in patient_alerts(log, AlertLimits(), pseudonym="pseudo-2", now=NOW)]
    assert kinds == ["alert.flagged-staff"]


def test_only_break_glass_events_can_be_marked(log: LookupLog) -> None:
    _event(log, 1)
    _event(log, 2, glass=True)
    with pytest.raises(ReviewError, match="no break-glass event"):
        log.mark("00000000-0000-4000-8000-000000000001", "justified", "", NOW)
    with pytest.raises(ReviewError, match="justified"):
        log.mark("00000000-0000-4000-8000-000000000002", "fine", "", NOW)
    marked = log.mark("00000000-0000-4000-8000-000000000002", "unjustified", "no note", NOW)
    assert marked.verdict == "unjustified"
    assert [e.verdict for e in log.events(break_glass_only=True)] == ["unjustified"]


def test_queued_entries_stay_until_delivered(log: LookupLog) -> None:
    log.queue([b"one", b"two"])
    queued = log.outbox()
    assert [b for _, b in queued] == [b"one", b"two"]
    log.delivered([queued[0][0]])
    assert [b for _, b in log.outbox()] == [b"two"]


@pytest.mark.parametrize(
    "doc",
    [
        {"max_lookups_per_hour": 0},  # below 1
        {"many_sites": 1},  # one site is not "many"
        {"max_lookups_per_hour": "many"},  # not a number
    ],
)
def test_bad_alert_limits_are_refused(tmp_path: Path, doc: dict[str, object]) -> None:
    (tmp_path / "lookup.json").write_text(json.dumps(doc))
    with pytest.raises(ReviewError):
        AlertLimits.load(tmp_path)
