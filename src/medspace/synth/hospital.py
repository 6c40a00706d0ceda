"""The hospitals of one run: ids, invented names, locales, time zones, staff and MRN scheme."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone
from random import Random

from medspace.synth.errors import SynthError
from medspace.synth.geography import (
    CN_DISTRICTS,
    CN_HOSPITAL_WORDS,
    US_CITIES,
    US_HOSPITAL_WORDS,
)
from medspace.synth.people import EN, LOCALES, ZH, pools
from medspace.synth.randomness import rng_for

#: Fixed UTC offsets (no daylight saving) of the hospitals' local times.
UTC_OFFSETS = {ZH: "+08:00", EN: "-05:00"}
_ZONES = {ZH: timezone(timedelta(hours=8)), EN: timezone(timedelta(hours=-5))}
_STAFF = 40
_MRN_SPACE = 10**8


@dataclass(frozen=True, slots=True)
class Hospital:
    """One synthetic hospital of a run."""

    number: int  # 1-based
    name: str
    locale: str
    doctors: tuple[str, ...]
    mrn_step: int  # MRN = (step * index + offset) mod 10^8: a bijection on 8-digit numbers
    mrn_offset: int

    @property
    def id(self) -> str:
        """The hospital id: h1, h2, ..."""
        return f"h{self.number}"

    @property
    def prefix(self) -> str:
        """The prefix of record ids: H1, H2, ..."""
        return f"H{self.number}"

    @property
    def language(self) -> str:
        """The language its clinicians write: "zh" or "en"."""
        return "zh" if self.locale == ZH else "en"

    @property
    def zone(self) -> timezone:
        """The hospital's fixed-offset local time zone."""
        return _ZONES[self.locale]

    def patient_id(self, index: int) -> str:
        """The hospital-local patient id of the index-th patient (0-based): H1-P000001."""
        return f"{self.prefix}-P{index + 1:06d}"

    def mrn(self, index: int) -> str:
        """The hospital's medical record number of the index-th patient (unique per hospital)."""
        return f"{(self.mrn_step * index + self.mrn_offset) % _MRN_SPACE:08d}"


def hospital_locales(hospitals: int, locale: str) -> list[str]:
    """The locale of each hospital: all the same, or alternating zh_CN/en_US for "mixed"."""
    if locale == "mixed":
        return [ZH if i % 2 == 0 else EN for i in range(hospitals)]
    if locale not in LOCALES:
        raise SynthError(f"unknown locale {locale!r}: use zh_CN, en_US or mixed")
    return [locale] * hospitals


def make_hospitals(seed: int, locales: list[str]) -> tuple[Hospital, ...]:
    """Invent the run's hospitals: unique names, a staff of doctors each, an MRN scheme."""
    made: list[Hospital] = []
    names: set[str] = set()
    for number, locale in enumerate(locales, start=1):
        rng = rng_for(seed, "hospital", number)
        name = ""
        for attempt in range(1000):
            name = _hospital_name(rng, locale, attempt)
            if name not in names:
                break
        names.add(name)
        pool = pools(locale, seed)
        doctors = []
        for _ in range(_STAFF):
            family = rng.choice(pool.family)
            given = rng.choice(pool.given_male if rng.random() < 0.5 else pool.given_female)
            doctors.append(family + given if locale == ZH else f"{given} {family}")
        step = rng.randrange(1, _MRN_SPACE // 10) * 10 + rng.choice((1, 3, 7, 9))
        made.append(Hospital(number, name, locale, tuple(doctors), step, rng.randrange(_MRN_SPACE)))
    return tuple(made)


def _hospital_name(rng: Random, locale: str, attempt: int) -> str:
    suffix = "" if attempt < 50 else f" {attempt}"
    if locale == ZH:
        city = rng.choice(CN_DISTRICTS).city.removesuffix("市")
        kind = rng.choice(("医院", "人民医院", "中心医院", "第二医院"))
        return f"{city}{rng.choice(CN_HOSPITAL_WORDS)}{kind}{suffix}"
    city = rng.choice(US_CITIES).city
    word = rng.choice(US_HOSPITAL_WORDS)
    kind = rng.choice(("Medical Center", "General Hospital", "Community Hospital"))
    return f"{word} {city} {kind}{suffix}"


def external_hospital_name(rng: Random, language: str) -> str:
    """A hospital outside the run, for referral letters."""
    return _hospital_name(rng, ZH if language == "zh" else EN, 0)
