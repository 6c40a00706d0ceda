"""A person's clinical profile: the truth every hospital that knows them records.

The profile is drawn once per person from their own seeded generator, so a patient known
at two hospitals has the same conditions, baseline HbA1c, allergies, MI outcome and
sorafenib response at both; only dates and record ids are hospital-local.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from medspace.synth.people import AGE_REFERENCE_DATE, Person, age_on
from medspace.synth.signals import (
    MI_MODEL,
    P_STABLE_GIVEN_NO_RESPONSE,
    PREVALENCE,
    logistic,
    response_probability,
)

_REACTIONS_BY_ALLERGEN = {
    "penicillin": ("rash", "hives", "anaphylaxis", "itching"),
    "aspirin": ("hives", "dyspnea", "rash"),
    "sulfonamide": ("rash", "itching", "nausea"),
    "latex": ("hives", "itching", "rash"),
    "peanut": ("hives", "anaphylaxis", "dyspnea"),
    "fish": ("hives", "nausea", "itching"),
}


@dataclass(frozen=True, slots=True)
class AllergyFact:
    """One allergy of a person: allergen and reaction keys of `catalog`, and criticality."""

    allergen: str
    reaction: str
    criticality: str  # "high" for anaphylaxis or severe dyspnoea, else "low"


@dataclass(frozen=True, slots=True)
class Profile:
    """A person's clinical truth (see the module docstring)."""

    age: int  # completed years on AGE_REFERENCE_DATE
    conditions: frozenset[str]  # keys of catalog.CONDITIONS, MI included when it happens
    hba1c: float  # baseline HbA1c in %, rounded to 0.1
    mi_probability: float
    hcc_treated: bool
    response_probability: float | None
    response: str | None  # improved | stable | worsened, for treated HCC only
    allergies: tuple[AllergyFact, ...]

    def has(self, condition: str) -> bool:
        """True when the person has the condition (a catalog key)."""
        return condition in self.conditions


def _bernoulli(rng: Random, p: float) -> bool:
    return rng.random() < p


def _age_logit(rng: Random, parameters: tuple[float, float], age: int) -> bool:
    intercept, slope = parameters
    return _bernoulli(rng, logistic(intercept + slope * (age - 55)))


def _clipped_normal(rng: Random, parameters: tuple[float, float, float, float]) -> float:
    mean, sd, low, high = parameters
    return round(min(high, max(low, rng.gauss(mean, sd))), 1)


def make_profile(rng: Random, person: Person) -> Profile:
    """Draw a person's conditions, baseline HbA1c, outcomes and allergies."""
    p = PREVALENCE
    age = age_on(person.birth_date, AGE_REFERENCE_DATE)
    male = person.sex == "male"
    conditions: set[str] = set()
    hcc = _bernoulli(rng, p.hcc_male if male else p.hcc_female)
    if hcc:
        conditions.add("hcc")
    if _bernoulli(rng, p.hepb_given_hcc if hcc else p.hepb_otherwise):
        conditions.add("hepb")
    if _bernoulli(rng, p.cirrhosis_given_hcc if hcc else p.cirrhosis_otherwise):
        conditions.add("cirrhosis")
    for key, parameters in (
        ("diabetes", p.diabetes),
        ("hypertension", p.hypertension),
        ("hyperlipidemia", p.hyperlipidemia),
    ):
        if _age_logit(rng, parameters, age):
            conditions.add(key)
    for key, share in (
        ("pneumonia", p.pneumonia),
        ("ckd", p.ckd),
        ("copd", p.copd),
        ("af", p.af),
        ("asthma", p.asthma),
    ):
        if _bernoulli(rng, share):
            conditions.add(key)
    diabetes = "diabetes" in conditions
    hba1c = _clipped_normal(rng, p.hba1c_diabetic if diabetes else p.hba1c_other)
    mi_p = MI_MODEL.probability(age, person.sex, diabetes, "hypertension" in conditions, hba1c)
    if _bernoulli(rng, mi_p):
        conditions.add("mi")
    treated = hcc and _bernoulli(rng, p.hcc_treated_with_sorafenib)
    response_p = response_probability(age, person.sex) if treated else None
    response = None
    if response_p is not None:
        if _bernoulli(rng, response_p):
            response = "improved"
        else:
            response = "stable" if _bernoulli(rng, P_STABLE_GIVEN_NO_RESPONSE) else "worsened"
    return Profile(
        age=age,
        conditions=frozenset(conditions),
        hba1c=hba1c,
        mi_probability=mi_p,
        hcc_treated=treated,
        response_probability=response_p,
        response=response,
        allergies=_allergies(rng),
    )


def _allergies(rng: Random) -> tuple[AllergyFact, ...]:
    if not _bernoulli(rng, PREVALENCE.any_allergy):
        return ()
    count = 2 if _bernoulli(rng, PREVALENCE.second_allergy) else 1
    allergens = rng.sample(sorted(_REACTIONS_BY_ALLERGEN), count)
    facts = []
    for allergen in allergens:
        reaction = rng.choice(_REACTIONS_BY_ALLERGEN[allergen])
        severe = reaction == "anaphylaxis" or (reaction == "dyspnea" and _bernoulli(rng, 0.5))
        facts.append(AllergyFact(allergen, reaction, "high" if severe else "low"))
    return tuple(facts)
