"""A patient's encounters at one hospital: when, why and what kind.

Every patient has an index encounter in the index window. Treated HCC patients come back
about 12 weeks later for a response assessment; MI and pneumonia get their own encounter
within follow-up; about half the others come back for a routine review.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from random import Random

from medspace.synth.profile import Profile
from medspace.synth.signals import FOLLOW_UP_DAYS, INDEX_FIRST, INDEX_LAST

_MAIN_ORDER = ("hcc", "diabetes", "hypertension", "hepb", "cirrhosis")
RESPONSE_VISIT_DAYS = 84


@dataclass(frozen=True, slots=True)
class Visit:
    """One encounter: `reason` is index | response | mi | pneumonia | routine; `main` is
    the condition key that leads it (or "general")."""

    number: int
    encounter_id: str
    reason: str
    main: str
    kind: str  # inpatient | outpatient | emergency
    start: datetime
    end: datetime

    def during(self, minutes: int) -> datetime:
        """A time `minutes` after the start, or the midpoint of a shorter visit."""
        return min(
            self.start + timedelta(minutes=minutes), self.start + (self.end - self.start) / 2
        )


def main_condition(profile: Profile) -> str:
    """The condition that brings the patient in at the index encounter."""
    for key in _MAIN_ORDER:
        if profile.has(key):
            return "liver" if key in ("hepb", "cirrhosis") else key
    return "general"


def _at(day: datetime, rng: Random) -> datetime:
    return day.replace(hour=rng.randint(8, 16), minute=rng.randrange(60))


def _end(rng: Random, start: datetime, kind: str) -> datetime:
    if kind == "inpatient":
        day = start + timedelta(days=rng.randint(3, 14))
        return day.replace(hour=10, minute=rng.randrange(60))
    if kind == "emergency":
        return start + timedelta(hours=rng.randint(3, 10))
    return start + timedelta(minutes=rng.randint(15, 90))


def plan_visits(rng: Random, patient_id: str, profile: Profile, zone: timezone) -> list[Visit]:
    """The patient's encounters in chronological order, numbered from 1."""
    window = (INDEX_LAST - INDEX_FIRST).days + 1
    index_day = datetime.combine(INDEX_FIRST, time(0, 0), zone) + timedelta(
        days=rng.randrange(window)
    )
    main = main_condition(profile)
    plans: list[tuple[datetime, str, str, str]] = []
    index_kind = "inpatient" if profile.hcc_treated or rng.random() < 0.2 else "outpatient"
    plans.append((_at(index_day, rng), "index", main, index_kind))
    if profile.hcc_treated:
        offset = RESPONSE_VISIT_DAYS + rng.randint(-14, 14)
        plans.append(
            (_at(index_day + timedelta(days=offset), rng), "response", "hcc", "outpatient")
        )
    if profile.has("mi"):
        offset = rng.randint(30, FOLLOW_UP_DAYS)
        plans.append((_at(index_day + timedelta(days=offset), rng), "mi", "mi", "inpatient"))
    if profile.has("pneumonia"):
        offset = rng.randint(20, FOLLOW_UP_DAYS)
        kind = "emergency" if rng.random() < 0.5 else "inpatient"
        plans.append((_at(index_day + timedelta(days=offset), rng), "pneumonia", "pneumonia", kind))
    if rng.random() < 0.5:
        offset = rng.randint(150, 600)
        plans.append((_at(index_day + timedelta(days=offset), rng), "routine", main, "outpatient"))
    plans.sort(key=lambda plan: plan[0])
    visits = []
    for number, (start, reason, lead, kind) in enumerate(plans, start=1):
        visits.append(
            Visit(
                number, f"{patient_id}-E{number}", reason, lead, kind, start, _end(rng, start, kind)
            )
        )
    return visits
