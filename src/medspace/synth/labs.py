"""Plausible laboratory values given a person's clinical profile."""

from __future__ import annotations

import math
from random import Random

from medspace.model import Sex
from medspace.synth.catalog import LABS
from medspace.synth.errors import SynthError
from medspace.synth.profile import Profile

#: Short English names clinicians write in notes (Chinese notes use the catalog names).
SHORT_EN = {
    "afp": "AFP",
    "alt": "ALT",
    "ast": "AST",
    "hba1c": "HbA1c",
    "glucose": "glucose",
    "creatinine": "creatinine",
    "cholesterol": "total cholesterol",
    "ldl": "LDL",
    "hemoglobin": "hemoglobin",
    "troponin": "troponin I",
    "wbc": "WBC",
    "crp": "CRP",
    "albumin": "albumin",
    "bilirubin": "total bilirubin",
}

#: AFP at the response visit relative to baseline, by response.
_AFP_FACTOR = {"improved": 0.3, "stable": 1.0, "worsened": 2.0}


def _normal(rng: Random, mean: float, sd: float, low: float, high: float) -> float:
    return min(high, max(low, rng.gauss(mean, sd)))


def _lognormal(rng: Random, median: float, sigma: float, low: float, high: float) -> float:
    return min(high, max(low, median * math.exp(rng.gauss(0.0, sigma))))


def lab_value(
    rng: Random,
    key: str,
    profile: Profile,
    sex: Sex,
    *,
    afp_baseline: float | None = None,
    follow_up: bool = False,
) -> float:
    """A value of lab `key` (a `catalog.LABS` key), rounded to the lab's precision.

    At the index visit HbA1c is exactly the profile's baseline; at later visits it drifts.
    `afp_baseline` makes the AFP of a response visit follow the recorded response.
    """
    has = profile.has
    liver = has("hcc") or has("hepb") or has("cirrhosis")
    male = sex == "male"
    value: float
    if key == "hba1c":
        value = profile.hba1c
        if follow_up:
            value = _normal(rng, profile.hba1c - 0.2, 0.4, 4.0, 14.0)
    elif key == "glucose":
        value = _normal(rng, 150, 35, 80, 400) if has("diabetes") else _normal(rng, 92, 9, 65, 125)
    elif key == "creatinine":
        mean = 1.8 if has("ckd") else (0.95 if male else 0.75)
        value = _normal(rng, mean, 0.15 if not has("ckd") else 0.3, 0.4, 6.0)
    elif key == "alt":
        value = _lognormal(rng, 58, 0.5, 10, 900) if liver else _normal(rng, 24, 8, 5, 80)
    elif key == "ast":
        value = _lognormal(rng, 62, 0.5, 12, 900) if liver else _normal(rng, 22, 6, 8, 70)
    elif key == "hemoglobin":
        value = _normal(rng, 14.5 if male else 13.0, 1.1, 7.0, 19.0) - (1.0 if has("hcc") else 0)
    elif key == "cholesterol":
        value = _normal(rng, 240 if has("hyperlipidemia") else 180, 25, 100, 400)
    elif key == "ldl":
        value = _normal(rng, 160 if has("hyperlipidemia") else 100, 20, 40, 300)
    elif key == "afp":
        if afp_baseline is not None and profile.response is not None:
            value = afp_baseline * _AFP_FACTOR[profile.response] * math.exp(rng.gauss(0, 0.1))
        elif has("hcc"):
            value = _lognormal(rng, 200, 1.5, 2, 60000)
        else:
            value = _lognormal(rng, 3, 0.5, 0.5, 30)
    elif key == "albumin":
        value = _normal(rng, 3.3, 0.4, 1.8, 5.2) if liver else _normal(rng, 4.3, 0.3, 3.0, 5.4)
    elif key == "bilirubin":
        value = (
            _normal(rng, 1.8, 0.6, 0.3, 8) if has("cirrhosis") else _normal(rng, 0.7, 0.2, 0.2, 2)
        )
    elif key == "troponin":
        value = (
            _lognormal(rng, 3.0, 1.0, 0.08, 80)
            if has("mi")
            else _normal(rng, 0.01, 0.005, 0.001, 0.03)
        )
    elif key == "wbc":
        value = _normal(rng, 14, 3, 8, 30) if has("pneumonia") else _normal(rng, 7, 1.5, 3.5, 11)
    elif key == "crp":
        value = (
            _lognormal(rng, 80, 0.6, 12, 300)
            if has("pneumonia")
            else _lognormal(rng, 3, 0.6, 0.2, 15)
        )
    else:
        raise SynthError(f"no value model for lab {key!r}: add one to labs.lab_value")
    decimals = LABS[key].decimals
    smallest = 10.0**-decimals
    return max(smallest, round(value, decimals))
