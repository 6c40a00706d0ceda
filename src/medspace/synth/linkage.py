"""Which patients are the same person at several hospitals, and how their records differ.

A share of each hospital's patients (default 15 %) is a *shared person* known at two
(80 %) or three (20 %, when three hospitals of their locale have room) hospitals.
Partners are hospitals of the person's own locale; only a hospital with no same-locale
hospital left to share with pairs across locales (a visitor from abroad, who keeps
their home identity). A share of shared persons (30 %) has realistic noise at one
hospital that is not their first: a typo in the name, a missing ID or phone, or a new
address.

With three or more hospitals, one shared person is the *showcase* of the emergency lookup
(`make demo`): known at three hospitals, at the last of them with a typo in the name AND
no ID, so only a fuzzy linkage token can find them there. It is the first person the plan
puts at three hospitals whose name takes a typo clearly (not a one-character Chinese
given name, where a typo replaces half the name); only when the plan has no such person
(e.g. three hospitals of mixed locales) is the plan drawn again with the showcase's three
appearances reserved. Marked `"showcase": true` in linkage_truth.json.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from random import Random
from typing import Any

from medspace.synth.hospital import Hospital
from medspace.synth.people import ZH, Person, Pools, make_person, name_typo, new_address, pools
from medspace.synth.randomness import rng_for

NOISE_SHARE = 0.3
NOISE_KINDS = ("name_typo", "missing_id", "missing_phone", "new_address")
P_THREE_HOSPITALS = 0.2
SHOWCASE_NOISE = "name_typo+missing_id"
_SHOWCASE_TRIES = 50


@dataclass(frozen=True, slots=True)
class SharedPerson:
    """One person known at several hospitals: (hospital number, 0-based local index) pairs,
    the first being their home; noise goes to appearance `noise_at` (an index into
    `appearances`) when `noise` is set."""

    key: str  # S000001
    locale: str
    appearances: tuple[tuple[int, int], ...]
    noise_at: int | None
    noise: str | None
    showcase: bool = False


@dataclass(frozen=True, slots=True)
class LinkagePlan:
    """All shared persons of a run and, per hospital, which local slots they fill."""

    persons: tuple[SharedPerson, ...]
    slots: dict[int, dict[int, tuple[int, int]]]  # hospital number -> local index -> (person, n)

    def slot(self, hospital: int, index: int) -> tuple[int, int] | None:
        """(index into `persons`, appearance number) of the shared person in this slot."""
        return self.slots.get(hospital, {}).get(index)


def shared_per_hospital(hospitals: int, patients: int, shared_share: float) -> int:
    """How many of each hospital's patients are shared persons."""
    if hospitals < 2:
        return 0
    return min(patients, round(shared_share * patients))


def _showcase_members(
    hospitals: tuple[Hospital, ...], remaining: dict[int, int]
) -> list[int] | None:
    """Three hospitals with room for the showcase: of one locale if three exist (h1's
    first), else the first three."""
    open_ = [h for h in hospitals if remaining[h.number] > 0]
    locales = dict.fromkeys(h.locale for h in open_)
    for locale in locales:
        same = [h.number for h in open_ if h.locale == locale]
        if len(same) >= 3:
            return same[:3]
    return [h.number for h in open_[:3]] if len(open_) >= 3 else None


def _clear_typo(seed: int, key: str, locale: str) -> bool:
    """True when a typo in this person's name still leaves most of it: not a Chinese name
    with a one-character given name, where a typo replaces half the name (the showcase
    must be found by a fuzzy match under any linkage key, with a margin)."""
    if locale != ZH:
        return True
    person = make_person(rng_for(seed, "person", key), locale, pools(locale, seed))
    return len(person.identity.given_name or "") >= 2


def _showcase_index(
    seed: int, groups: list[tuple[str, list[int]]], reserved: int | None
) -> int | None:
    """Which group is the showcase: the reserved one, else the first group at three
    hospitals whose name takes a typo clearly (None when there is none)."""
    if reserved is not None:
        return reserved
    triples = [i for i, (_, members) in enumerate(groups) if len(members) == 3]
    for i in triples[:_SHOWCASE_TRIES]:
        if _clear_typo(seed, f"S{i + 1:06d}", groups[i][0]):
            return i
    return None


def plan_linkage(
    seed: int, hospitals: tuple[Hospital, ...], patients: int, shared_share: float
) -> LinkagePlan:
    """Decide, from the seed alone, who is shared, where, and with what noise."""
    plan = _plan(seed, hospitals, patients, shared_share, reserve_showcase=False)
    if len(hospitals) >= 3 and not any(p.showcase for p in plan.persons):
        plan = _plan(seed, hospitals, patients, shared_share, reserve_showcase=True)
    return plan


def _plan(
    seed: int,
    hospitals: tuple[Hospital, ...],
    patients: int,
    shared_share: float,
    *,
    reserve_showcase: bool,
) -> LinkagePlan:
    rng = rng_for(seed, "linkage")
    remaining = {
        h.number: shared_per_hospital(len(hospitals), patients, shared_share) for h in hospitals
    }
    locale = {h.number: h.locale for h in hospitals}
    groups: list[tuple[str, list[int]]] = []
    reserved = _showcase_members(hospitals, remaining) if reserve_showcase else None
    if reserved is not None:
        for n in reserved:
            remaining[n] -= 1
    while True:
        open_ = [n for n, left in remaining.items() if left > 0]
        if len(open_) < 2:
            break
        order = sorted(open_, key=lambda n: (-remaining[n], rng.random()))
        home = order[0]
        same = [n for n in order[1:] if locale[n] == locale[home]]
        # Cross-locale sharing only when no hospital of the person's locale has room left.
        partners = same or order[1:]
        size = 3 if len(same) >= 2 and rng.random() < P_THREE_HOSPITALS else 2
        members = [home, *partners[: size - 1]]
        for n in members:
            remaining[n] -= 1
        groups.append((locale[home], members))
    reserved_at = None
    if reserved is not None:
        # At the first position whose person takes a typo clearly (keys are positional).
        showcase_locale = locale[reserved[0]]
        reserved_at = next(
            (
                i
                for i in range(min(len(groups), _SHOWCASE_TRIES) + 1)
                if _clear_typo(seed, f"S{i + 1:06d}", showcase_locale)
            ),
            0,
        )
        groups.insert(reserved_at, (showcase_locale, reserved))
    showcase = _showcase_index(seed, groups, reserved_at)
    # Place each hospital's appearances on random local slots.
    wanted: dict[int, int] = {h.number: 0 for h in hospitals}
    for _, members in groups:
        for n in members:
            wanted[n] += 1
    free = {n: iter(rng.sample(range(patients), count)) for n, count in wanted.items()}
    persons: list[SharedPerson] = []
    slots: dict[int, dict[int, tuple[int, int]]] = {h.number: {} for h in hospitals}
    for number, (person_locale, members) in enumerate(groups):
        appearances = tuple((n, next(free[n])) for n in members)
        noisy = rng.random() < NOISE_SHARE
        person = SharedPerson(
            key=f"S{number + 1:06d}",
            locale=person_locale,
            appearances=appearances,
            noise_at=rng.randrange(1, len(appearances)) if noisy else None,
            noise=rng.choice(NOISE_KINDS) if noisy else None,
        )
        if number == showcase:
            # Overridden after the draws, so everyone else's noise stays as drawn.
            person = dataclasses.replace(person, noise_at=2, noise=SHOWCASE_NOISE, showcase=True)
        persons.append(person)
        for position, (n, local) in enumerate(appearances):
            slots[n][local] = (number, position)
    return LinkagePlan(tuple(persons), slots)


def apply_noise(rng: Random, person: Person, kind: str, pool: Pools) -> tuple[Person, str, str]:
    """Apply one kind of noise; returns (person, kind actually applied, field changed).

    A missing ID or phone that is already missing becomes a name typo instead, so the
    recorded noise always changed something. The showcase's noise (a name typo and no ID)
    names both fields, joined by "+".
    """
    identity = person.identity
    if kind == SHOWCASE_NOISE:
        typo, field = name_typo(rng, person)
        without_id = dataclasses.replace(typo.identity, national_id=None)
        return dataclasses.replace(typo, identity=without_id), kind, f"{field}+national_id"
    if kind == "missing_id" and identity.national_id:
        changed = dataclasses.replace(identity, national_id=None)
        return dataclasses.replace(person, identity=changed), kind, "national_id"
    if kind == "missing_phone" and identity.phone:
        changed = dataclasses.replace(identity, phone=None)
        return dataclasses.replace(person, identity=changed), kind, "phone"
    if kind == "new_address":
        return new_address(rng, person, pool), kind, "address"
    typo, field = name_typo(rng, person)
    return typo, "name_typo", field


def linkage_truth(
    plan: LinkagePlan,
    hospitals: tuple[Hospital, ...],
    applied: dict[int, tuple[str, str]],
    shared_share: float,
) -> dict[str, Any]:
    """The linkage ground truth: which hospital-local patient ids are one person."""
    by_number = {h.number: h for h in hospitals}
    persons = []
    for index, person in enumerate(plan.persons):
        records = [
            {"hospital": by_number[n].id, "patient_id": by_number[n].patient_id(local)}
            for n, local in person.appearances
        ]
        noise = None
        if person.noise_at is not None and index in applied:
            kind, field = applied[index]
            noise = {**records[person.noise_at], "kind": kind, "field": field}
        entry: dict[str, Any] = {
            "person": person.key,
            "locale": person.locale,
            "records": records,
            "noise": noise,
        }
        if person.showcase:
            entry["showcase"] = True
        persons.append(entry)
    cross = sum(1 for p in plan.persons if len({by_number[n].locale for n, _ in p.appearances}) > 1)
    return {
        "description": (
            "Each person lists the hospital-local patient ids that are the same real person. "
            "Patients not listed are known at one hospital only. Noise, when present, was "
            "applied to the identity recorded at that one hospital; the person's other "
            "records carry their true identity."
        ),
        "shared_share": shared_share,
        "noise_share": NOISE_SHARE,
        "noise_kinds": list(NOISE_KINDS),
        "three_hospital_share": P_THREE_HOSPITALS,
        "showcase": next((p.key for p in plan.persons if p.showcase), None),
        "persons_total": len(plan.persons),
        "cross_locale_persons": cross,
        "persons": persons,
    }
