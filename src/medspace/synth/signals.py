"""The clinical signals planted in the synthetic data, with their exact parameters.

`ground_truth()` documents every number used here in `ground_truth.json`, so later
analyses (federated statistics, federated learning) can be checked against the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from medspace.model import Sex
from medspace.synth.catalog import (
    CONDITIONS,
    DRUGS,
    LABS,
    RESPONSE_CODE,
    RESPONSE_VALUES,
)
from medspace.synth.errors import SynthError
from medspace.synth.people import AGE_REFERENCE_DATE

#: Index (first) encounters fall in this window; follow-up lasts FOLLOW_UP_DAYS after it.
INDEX_FIRST = date(2021, 1, 1)
INDEX_LAST = date(2022, 12, 31)
FOLLOW_UP_DAYS = 730

#: Age bands of the sorafenib response signal: (label, lowest age, highest age).
AGE_BANDS: tuple[tuple[str, int, int], ...] = (("<40", 0, 39), ("40-59", 40, 59), ("60+", 60, 200))

#: True probability that an HCC patient on sorafenib responds, by age band and sex.
RESPONSE_PROBABILITY: dict[tuple[str, Sex], float] = {
    ("<40", "male"): 0.45,
    ("<40", "female"): 0.55,
    ("40-59", "male"): 0.35,
    ("40-59", "female"): 0.45,
    ("60+", "male"): 0.20,
    ("60+", "female"): 0.30,
}
#: Non-responders are recorded as "stable" with this probability, else "worsened".
P_STABLE_GIVEN_NO_RESPONSE = 0.5


@dataclass(frozen=True, slots=True)
class MiModel:
    """True logistic model of myocardial infarction within follow-up."""

    intercept: float = -3.2
    age_per_decade: float = 0.45
    male: float = 0.5
    diabetes: float = 0.7
    hypertension: float = 0.6
    hba1c_per_percent: float = 0.35
    age_centre: float = 60.0
    hba1c_centre: float = 6.0

    def logit(self, age: int, sex: Sex, diabetes: bool, hypertension: bool, hba1c: float) -> float:
        """The linear predictor for one patient's features (see `ground_truth()`)."""
        return (
            self.intercept
            + self.age_per_decade * (age - self.age_centre) / 10.0
            + self.male * (sex == "male")
            + self.diabetes * diabetes
            + self.hypertension * hypertension
            + self.hba1c_per_percent * (hba1c - self.hba1c_centre)
        )

    def probability(
        self, age: int, sex: Sex, diabetes: bool, hypertension: bool, hba1c: float
    ) -> float:
        """P(MI within follow-up) for one patient."""
        return 1.0 / (1.0 + math.exp(-self.logit(age, sex, diabetes, hypertension, hba1c)))


MI_MODEL = MiModel()


def logistic(x: float) -> float:
    """1 / (1 + e^-x)."""
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True, slots=True)
class Prevalence:
    """How the generator draws conditions (independently per person, given age and sex)."""

    hcc_male: float = 0.26
    hcc_female: float = 0.14
    hcc_treated_with_sorafenib: float = 0.8
    hepb_given_hcc: float = 0.6
    hepb_otherwise: float = 0.06
    cirrhosis_given_hcc: float = 0.5
    cirrhosis_otherwise: float = 0.02
    # logit(p) = a + b * (age - 55)
    diabetes: tuple[float, float] = (-1.5, 0.04)
    hypertension: tuple[float, float] = (-0.9, 0.06)
    hyperlipidemia: tuple[float, float] = (-1.4, 0.03)
    pneumonia: float = 0.08
    ckd: float = 0.05
    copd: float = 0.04
    af: float = 0.04
    asthma: float = 0.03
    any_allergy: float = 0.2
    second_allergy: float = 0.25
    # Baseline HbA1c (%) ~ Normal(mean, sd) clipped to [low, high], rounded to 0.1
    hba1c_diabetic: tuple[float, float, float, float] = (7.6, 1.1, 5.7, 13.0)
    hba1c_other: tuple[float, float, float, float] = (5.4, 0.35, 4.2, 6.4)


PREVALENCE = Prevalence()


def age_band(age: int) -> str:
    """The response signal's age band label of an age in completed years."""
    for label, low, high in AGE_BANDS:
        if low <= age <= high:
            return label
    raise SynthError("an age is outside every response age band: AGE_BANDS must cover 0-200")


def response_probability(age: int, sex: Sex) -> float:
    """True probability of response to sorafenib for an HCC patient."""
    return RESPONSE_PROBABILITY[(age_band(age), sex)]


def _code(concept_key: str) -> dict[str, str]:
    concept = CONDITIONS[concept_key]
    return {"system": concept.system, "code": concept.code, "display": concept.en}


def ground_truth() -> dict[str, Any]:
    """The signals, feature definitions and generation parameters, as JSON-ready data."""
    improved = RESPONSE_VALUES["improved"]
    sorafenib = DRUGS["sorafenib"].concept
    hba1c = LABS["hba1c"].concept
    return {
        "age_definition": (
            f"completed years between Patient.birthDate and {AGE_REFERENCE_DATE.isoformat()}"
        ),
        "age_reference_date": AGE_REFERENCE_DATE.isoformat(),
        "index_window": [INDEX_FIRST.isoformat(), INDEX_LAST.isoformat()],
        "follow_up_days": FOLLOW_UP_DAYS,
        "sorafenib_response": {
            "population": (
                f"patients with a {_code('hcc')['code']} condition and a {sorafenib.code} "
                "(ATC) drug order"
            ),
            "condition": _code("hcc"),
            "drug": {"system": sorafenib.system, "code": sorafenib.code, "display": sorafenib.en},
            "observation": {
                "system": RESPONSE_CODE.system,
                "code": RESPONSE_CODE.code,
                "display": RESPONSE_CODE.en,
            },
            "responder_value": {
                "system": improved.system,
                "code": improved.code,
                "display": improved.en,
            },
            "non_responder_values": [
                {"system": v.system, "code": v.code, "display": v.en}
                for key, v in RESPONSE_VALUES.items()
                if key != "improved"
            ],
            "non_responder_stable_probability": P_STABLE_GIVEN_NO_RESPONSE,
            "age_bands": [
                {"label": label, "min_age": low, "max_age": high} for label, low, high in AGE_BANDS
            ],
            "probability": [
                {"age_band": band, "sex": sex, "p_response": p}
                for (band, sex), p in RESPONSE_PROBABILITY.items()
            ],
            "treated_share_of_hcc": PREVALENCE.hcc_treated_with_sorafenib,
        },
        "myocardial_infarction": {
            "outcome": (
                f"mi = 1 when the patient has a {_code('mi')['code']} condition; it is recorded "
                f"only within {FOLLOW_UP_DAYS} days after the index encounter, never before"
            ),
            "outcome_condition": _code("mi"),
            "model": "logit P(mi = 1) = intercept + sum of coefficient * feature",
            "coefficients": {
                "intercept": MI_MODEL.intercept,
                "age": MI_MODEL.age_per_decade,
                "male": MI_MODEL.male,
                "diabetes": MI_MODEL.diabetes,
                "hypertension": MI_MODEL.hypertension,
                "hba1c": MI_MODEL.hba1c_per_percent,
            },
            "features": {
                "age": f"(age - {MI_MODEL.age_centre:g}) / 10, age as in age_definition",
                "male": "1 when Patient.gender is male, else 0",
                "diabetes": f"1 when the patient has a {_code('diabetes')['code']} condition",
                "hypertension": (
                    f"1 when the patient has a {_code('hypertension')['code']} condition"
                ),
                "hba1c": (
                    f"value of the patient's earliest {hba1c.code} (LOINC) measurement in % "
                    f"minus {MI_MODEL.hba1c_centre:g}; every patient has one at the index encounter"
                ),
            },
        },
        "prevalence": {
            "hcc_probability": {"male": PREVALENCE.hcc_male, "female": PREVALENCE.hcc_female},
            "hepb_given_hcc": PREVALENCE.hepb_given_hcc,
            "hepb_otherwise": PREVALENCE.hepb_otherwise,
            "cirrhosis_given_hcc": PREVALENCE.cirrhosis_given_hcc,
            "cirrhosis_otherwise": PREVALENCE.cirrhosis_otherwise,
            "diabetes_logit": _linear(PREVALENCE.diabetes),
            "hypertension_logit": _linear(PREVALENCE.hypertension),
            "hyperlipidemia_logit": _linear(PREVALENCE.hyperlipidemia),
            "pneumonia": PREVALENCE.pneumonia,
            "ckd": PREVALENCE.ckd,
            "copd": PREVALENCE.copd,
            "atrial_fibrillation": PREVALENCE.af,
            "asthma": PREVALENCE.asthma,
            "hba1c_diabetic": _normal(PREVALENCE.hba1c_diabetic),
            "hba1c_other": _normal(PREVALENCE.hba1c_other),
        },
        "codes": {key: _code(key) for key in CONDITIONS},
    }


def _linear(parameters: tuple[float, float]) -> str:
    return f"{parameters[0]:g} + {parameters[1]:g} * (age - 55)"


def _normal(parameters: tuple[float, float, float, float]) -> dict[str, float]:
    mean, sd, low, high = parameters
    return {"mean": mean, "sd": sd, "min": low, "max": high, "rounded_to": 0.1}
