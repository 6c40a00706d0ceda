"""Unusual-use alerts: too many lookups by one clinician, one patient looked up from many
sites, lookups of patients flagged VIP or staff.

Limits live in the node's `lookup.json` (`{"max_lookups_per_hour": 20,
"many_sites": 3}`; defaults when absent). An alert fires when a count *crosses* its limit
(so a burst gives one alert, not one per lookup) and for every lookup that matches a
flagged patient. Alerts are kept in the node's lookup log (shown by `medspace lookup
review`) and ledgered by the node as `alert` entries with a reason code and a count,
never the patient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from medspace.lookup.errors import ReviewError
from medspace.lookup.review import LookupLog

CONFIG_FILE = "lookup.json"
HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)

RATE = "alert.rate"
MANY_SITES = "alert.many-sites"
FLAGGED = "alert.flagged"


@dataclass(frozen=True, slots=True)
class AlertLimits:
    """When alerts fire: more than `max_lookups_per_hour` lookups by one clinician in an
    hour; one patient asked for by `many_sites` or more distinct nodes in 24 hours."""

    max_lookups_per_hour: int = 20
    many_sites: int = 3

    @classmethod
    def load(cls, directory: Path) -> AlertLimits:
        """The node's limits (defaults without `lookup.json`); raises `ReviewError` for a
        damaged file."""
        path = Path(directory) / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            limits = cls(int(doc.get("max_lookups_per_hour", 20)), int(doc.get("many_sites", 3)))
        except (ValueError, TypeError, AttributeError):
            raise ReviewError(f"{path} is not valid; fix it (see docs/lookup.md)") from None
        if limits.max_lookups_per_hour < 1 or limits.many_sites < 2:
            raise ReviewError(f"{path}: max_lookups_per_hour >= 1 and many_sites >= 2")
        return limits


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: its reason code and the count that crossed the limit."""

    kind: str
    count: int


def clinician_alerts(
    log: LookupLog,
    limits: AlertLimits,
    *,
    requester: str,
    clinician: str,
    role: str,
    now: datetime,
) -> list[Alert]:
    """A rate alert when this lookup (already logged) is the first over the hourly limit."""
    count = log.recent_by_clinician(requester, clinician, role, now, HOUR)
    if count == limits.max_lookups_per_hour + 1:
        return [Alert(RATE, count)]
    return []


def patient_alerts(
    log: LookupLog, limits: AlertLimits, *, pseudonym: str, now: datetime
) -> list[Alert]:
    """Alerts for one matched patient (already logged): many sites, or a flag."""
    alerts = []
    sites = log.sites_for(pseudonym, now, DAY)
    if sites == limits.many_sites:
        alerts.append(Alert(MANY_SITES, sites))
    flag = log.flag_of(pseudonym)
    if flag is not None:
        alerts.append(Alert(f"{FLAGGED}-{flag}", 1))
    return alerts
