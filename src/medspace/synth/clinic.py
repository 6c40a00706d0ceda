"""What happens at each visit, and `build_chart`, which plays a patient's visits out."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from random import Random

from medspace.model import Allergy, Encounter, Observation, Patient
from medspace.synth import templates
from medspace.synth.builder import CHRONIC, ChartBuilder, code_of, department
from medspace.synth.catalog import (
    ALLERGENS,
    CONDITIONS,
    DRUGS,
    REACTIONS,
    RESPONSE_CODE,
    RESPONSE_VALUES,
    Concept,
)
from medspace.synth.chart import Chart
from medspace.synth.hospital import Hospital
from medspace.synth.people import Person
from medspace.synth.profile import Profile
from medspace.synth.visits import Visit, plan_visits

_CHRONIC_DRUGS = {
    "diabetes": ("metformin",),
    "hyperlipidemia": ("atorvastatin",),
    "hepb": ("entecavir",),
    "copd": ("tiotropium",),
    "asthma": ("salbutamol",),
    "af": ("warfarin",),
}
_PANELS = {
    "index": ("glucose", "hba1c", "creatinine", "alt", "ast", "hemoglobin", "cholesterol", "ldl"),
    "liver": ("afp", "albumin", "bilirubin"),
    "response": ("afp", "alt", "ast", "albumin"),
    "mi": ("troponin", "glucose", "creatinine", "hemoglobin", "ldl"),
    "pneumonia": ("wbc", "crp", "hemoglobin", "creatinine"),
    "routine": ("glucose", "hba1c", "creatinine", "alt"),
}
_NO_DIAGNOSIS = {"zh": "健康体检", "en": "general medical examination"}
_RESPONSE_TEXT = {
    "zh": {"improved": "病情好转", "stable": "病情稳定", "worsened": "病情进展"},
    "en": {
        "improved": "partial response, condition improved",
        "stable": "stable disease",
        "worsened": "progressive disease",
    },
}


def _name(concept: Concept, language: str) -> str:
    return concept.name(language)


def _index_visit(b: ChartBuilder, visit: Visit, visits: list[Visit]) -> None:
    rng, profile, language = b.rng, b.profile, b.language
    chronic = [key for key in CHRONIC if profile.has(key)]
    for key in chronic:
        days = rng.randint(0, 60) if key == "hcc" else rng.randint(30, 3650)
        b.condition(key, visit, visit.start.date() - timedelta(days=days), "active")
    for key in chronic:
        for drug in _CHRONIC_DRUGS.get(key, ()):
            b.drug(drug, visit, None)
        if key == "hypertension":
            b.drug("amlodipine" if rng.random() < 0.6 else "lisinopril", visit, None)
        if key == "diabetes" and profile.hba1c > 8.5 and rng.random() < 0.5:
            b.drug("insulin_glargine", visit, None)
        if key == "ckd" and rng.random() < 0.3:
            b.drug("furosemide", visit, None)
    if profile.hcc_treated:
        response_visit = next(v for v in visits if v.reason == "response")
        b.drug("sorafenib", visit, (response_visit.start - visit.start).days)
    liver = profile.has("hcc") or profile.has("hepb") or profile.has("cirrhosis")
    labs = b.labs(visit, _PANELS["index"] + (_PANELS["liver"] if liver else ()))
    if profile.has("hcc"):
        b.procedure("ct_abdomen", visit)
        if rng.random() < 0.4:
            b.procedure("liver_biopsy", visit)
    elif liver and rng.random() < 0.6:
        b.procedure("us_abdomen", visit)
    if (profile.has("hypertension") or profile.has("af")) and rng.random() < 0.4:
        b.procedure("ecg", visit)
    lead = [key for key in chronic if key == visit.main] + [k for k in chronic if k != visit.main]
    diagnoses = [_name(CONDITIONS[key], language) for key in lead] or [_NO_DIAGNOSIS[language]]
    b.note(
        visit,
        templates.ADMISSION if visit.kind == "inpatient" else templates.PROGRESS,
        diagnoses=diagnoses,
        drugs=[drug.code.display or "" for drug in b.drugs],
        labs=labs,
    )


def _response_visit(b: ChartBuilder, visit: Visit, visits: list[Visit]) -> None:
    profile, language = b.profile, b.language
    labs = b.labs(visit, _PANELS["response"], follow_up=True)
    response = profile.response or "stable"
    b.observations.append(
        Observation(
            source_id=f"{b.pid}-R{visit.number}-1",
            patient_id=b.pid,
            code=code_of(RESPONSE_CODE, language),
            encounter_id=visit.encounter_id,
            time=visit.during(minutes=40),
            value_code=code_of(RESPONSE_VALUES[response], language),
        )
    )
    if b.rng.random() < 0.9:
        b.procedure("ct_abdomen", visit)
    b.note(
        visit,
        templates.ONCOLOGY,
        diagnoses=[_name(CONDITIONS["hcc"], language)],
        drugs=[_name(DRUGS["sorafenib"].concept, language)],
        labs=labs,
        start_date=visits[0].start.date(),
        response=_RESPONSE_TEXT[language][response],
    )


def _mi_visit(b: ChartBuilder, visit: Visit, visits: list[Visit]) -> None:
    language = b.language
    b.condition("mi", visit, visit.start.date(), "active")
    ordered = {drug.code.code for drug in b.drugs}
    for key in ("aspirin", "clopidogrel", "atorvastatin"):
        if DRUGS[key].concept.code not in ordered:
            b.drug(key, visit, None)
    labs = b.labs(visit, _PANELS["mi"])
    b.procedure("ecg", visit)
    if b.rng.random() < 0.7:
        b.procedure("pci", visit)
    b.note(
        visit,
        templates.DISCHARGE,
        diagnoses=[_name(CONDITIONS["mi"], language)],
        drugs=[_name(DRUGS[key].concept, language) for key in ("aspirin", "clopidogrel")],
        labs=labs,
    )


def _pneumonia_visit(b: ChartBuilder, visit: Visit, visits: list[Visit]) -> None:
    language = b.language
    onset = visit.start.date() - timedelta(days=b.rng.randint(1, 5))
    b.condition("pneumonia", visit, onset, "resolved")
    antibiotic = "ceftriaxone" if visit.kind == "inpatient" else "amoxicillin"
    b.drug(antibiotic, visit, 7)
    labs = b.labs(visit, _PANELS["pneumonia"])
    b.procedure("chest_xray", visit)
    b.note(
        visit,
        templates.DISCHARGE if visit.kind == "inpatient" else templates.PROGRESS,
        diagnoses=[_name(CONDITIONS["pneumonia"], language)],
        drugs=[_name(DRUGS[antibiotic].concept, language)],
        labs=labs,
    )


def _routine_visit(b: ChartBuilder, visit: Visit, visits: list[Visit]) -> None:
    keys = _PANELS["routine"] + (("ldl",) if b.profile.has("hyperlipidemia") else ())
    labs = b.labs(visit, keys, follow_up=True)
    if b.rng.random() < 0.3:
        chronic = [CONDITIONS[key].name(b.language) for key in CHRONIC if b.profile.has(key)]
        b.note(
            visit,
            templates.PROGRESS,
            diagnoses=chronic or [_NO_DIAGNOSIS[b.language]],
            drugs=[drug.code.display or "" for drug in b.drugs if drug.end is None],
            labs=labs,
        )


_VISITS = {
    "index": _index_visit,
    "response": _response_visit,
    "mi": _mi_visit,
    "pneumonia": _pneumonia_visit,
    "routine": _routine_visit,
}


def build_chart(
    rng: Random,
    hospital: Hospital,
    index: int,
    person: Person,
    profile: Profile,
    other_hospital: str,
) -> Chart:
    """Build the index-th patient's chart at `hospital` (0-based index).

    `person` is the identity as this hospital recorded it (linkage noise applied);
    `other_hospital` is the name a referral letter may mention.
    """
    b = ChartBuilder(rng, hospital, index, person, profile, other_hospital)
    visits = plan_visits(rng, b.pid, profile, hospital.zone)
    for visit in visits:
        _VISITS[visit.reason](b, visit, visits)
    language = hospital.language
    first_day = visits[0].start.date()
    allergies = tuple(
        Allergy(
            source_id=f"{b.pid}-A{number}",
            patient_id=b.pid,
            code=code_of(ALLERGENS[fact.allergen].concept, language),
            reaction=REACTIONS[fact.reaction].name(language),
            criticality=fact.criticality,
            recorded=first_day,
        )
        for number, fact in enumerate(profile.allergies, start=1)
    )
    encounters = tuple(
        Encounter(
            source_id=visit.encounter_id,
            patient_id=b.pid,
            kind=visit.kind,
            start=visit.start,
            end=visit.end,
        )
        for visit in visits
    )
    patient = Patient(
        source_id=b.pid,
        sex=person.sex,
        birth_date=person.birth_date,
        identity=dataclasses.replace(person.identity, mrn=b.mrn),
    )
    return Chart(
        hospital=hospital,
        person_locale=person.locale,
        patient=patient,
        encounters=encounters,
        departments=tuple(department(visit, language) for visit in visits),
        conditions=tuple(b.conditions),
        drugs=tuple(b.drugs),
        measurements=tuple(b.measurements),
        observations=tuple(b.observations),
        procedures=tuple(b.procedures),
        allergies=allergies,
        notes=tuple(b.notes),
        profile=profile,
    )
