"""Accumulates the records of one chart while the visits of a patient are played out."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from random import Random

from medspace.model import Code, Condition, Drug, Measurement, Note, Observation, Procedure
from medspace.synth import templates
from medspace.synth.catalog import (
    CONDITIONS,
    DEPARTMENTS,
    DRUGS,
    LABS,
    NOTE_TYPES,
    PROCEDURES,
    Concept,
)
from medspace.synth.chart import GoldNote
from medspace.synth.hospital import Hospital
from medspace.synth.labs import SHORT_EN, lab_value
from medspace.synth.notes import NoteFacts, render_note
from medspace.synth.people import Person, age_on
from medspace.synth.profile import Profile
from medspace.synth.visits import Visit

CHRONIC = (
    "hcc",
    "diabetes",
    "hypertension",
    "hepb",
    "cirrhosis",
    "hyperlipidemia",
    "ckd",
    "copd",
    "af",
    "asthma",
)
_COMPLAINTS: dict[str, dict[str, tuple[str, int, int]]] = {
    "zh": {
        "hcc": ("右上腹隐痛{n}个月", 1, 6),
        "diabetes": ("口干、多饮、多尿{n}年", 1, 10),
        "hypertension": ("反复头晕{n}年", 1, 15),
        "liver": ("乏力、纳差{n}个月", 1, 12),
        "general": ("体检发现指标异常{n}周", 1, 8),
        "mi": ("突发胸痛{n}小时", 1, 12),
        "pneumonia": ("发热、咳嗽{n}天", 2, 10),
        "response": ("肝癌靶向治疗{n}周后复查", 10, 14),
        "routine": ("慢性病规律复诊，近{n}个月无不适", 1, 6),
    },
    "en": {
        "hcc": ("right upper quadrant pain for {n} months", 2, 6),
        "diabetes": ("polyuria and polydipsia for {n} years", 2, 10),
        "hypertension": ("recurrent dizziness for {n} years", 2, 15),
        "liver": ("fatigue and poor appetite for {n} months", 2, 12),
        "general": ("abnormal screening results {n} weeks ago", 2, 8),
        "mi": ("sudden chest pain for {n} hours", 2, 12),
        "pneumonia": ("fever and cough for {n} days", 2, 10),
        "response": ("review after {n} weeks of targeted therapy", 10, 14),
        "routine": ("routine review, no new complaints for {n} months", 2, 6),
    },
}


def _complaint(rng: Random, visit: Visit, language: str) -> str:
    key = visit.main if visit.reason == "index" else visit.reason
    text, low, high = _COMPLAINTS[language][key]
    return text.format(n=rng.randint(low, high))


def department(visit: Visit, language: str) -> str:
    """The department name of a visit in the hospital's language."""
    key = "emergency" if visit.kind == "emergency" else visit.main
    en, zh = DEPARTMENTS[key]
    return zh if language == "zh" else en


@lru_cache(maxsize=512)
def code_of(concept: Concept, language: str) -> Code:
    """The model code of a catalog concept, named in `language` (cached)."""
    return Code(concept.system, concept.code, concept.name(language))


class ChartBuilder:
    """Accumulates one chart's records; one instance per chart."""

    def __init__(
        self,
        rng: Random,
        hospital: Hospital,
        index: int,
        person: Person,
        profile: Profile,
        other_hospital: str,
    ) -> None:
        self.rng = rng
        self.hospital = hospital
        self.language = hospital.language
        self.person = person
        self.profile = profile
        self.pid = hospital.patient_id(index)
        self.mrn = hospital.mrn(index)
        self.conditions: list[Condition] = []
        self.drugs: list[Drug] = []
        self.measurements: list[Measurement] = []
        self.observations: list[Observation] = []
        self.procedures: list[Procedure] = []
        self.notes: list[GoldNote] = []
        self.afp_baseline: float | None = None
        self.other_hospital = other_hospital  # the hospital a referral letter may name

    def condition(self, key: str, visit: Visit, onset: date, status: str) -> None:
        """Record condition `key` (a catalog key) diagnosed at `visit`."""
        self.conditions.append(
            Condition(
                source_id=f"{self.pid}-C{len(self.conditions) + 1}",
                patient_id=self.pid,
                code=code_of(CONDITIONS[key], self.language),
                encounter_id=visit.encounter_id,
                onset=onset,
                recorded=visit.start.date(),
                clinical_status=status,
            )
        )

    def drug(self, key: str, visit: Visit, days: int | None) -> None:
        """Order drug `key` at `visit` for `days` days (None: ongoing)."""
        item = DRUGS[key]
        end = None if days is None else visit.start + timedelta(days=days)
        self.drugs.append(
            Drug(
                source_id=f"{self.pid}-D{len(self.drugs) + 1}",
                patient_id=self.pid,
                code=code_of(item.concept, self.language),
                encounter_id=visit.encounter_id,
                start=visit.start,
                end=end,
                kind="request",
                status="active" if end is None else "completed",
                dose=item.dose,
            )
        )

    def labs(self, visit: Visit, keys: tuple[str, ...], *, follow_up: bool = False) -> list[str]:
        """Record one lab order of `keys` at `visit`; return the results as a note writes
        them ("AFP 812.5 ng/mL")."""
        order = f"{self.pid}-L{visit.number}"
        taken = visit.during(minutes=30)
        lines = []
        for k, key in enumerate(keys, start=1):
            lab = LABS[key]
            value = lab_value(
                self.rng,
                key,
                self.profile,
                self.person.sex,
                afp_baseline=self.afp_baseline if visit.reason == "response" else None,
                follow_up=follow_up,
            )
            if key == "afp" and self.afp_baseline is None:
                self.afp_baseline = value
            self.measurements.append(
                Measurement(
                    source_id=f"{order}-{k}",
                    patient_id=self.pid,
                    code=code_of(lab.concept, self.language),
                    encounter_id=visit.encounter_id,
                    time=taken,
                    value=value,
                    unit=lab.unit,
                    ref_low=lab.low,
                    ref_high=lab.high,
                )
            )
            name = lab.concept.zh if self.language == "zh" else SHORT_EN[key]
            lines.append(f"{name} {value:.{lab.decimals}f} {lab.unit}")
        return lines

    def procedure(self, key: str, visit: Visit) -> None:
        """Record procedure `key` performed at `visit`."""
        self.procedures.append(
            Procedure(
                source_id=f"{self.pid}-X{len(self.procedures) + 1}",
                patient_id=self.pid,
                code=code_of(PROCEDURES[key], self.language),
                encounter_id=visit.encounter_id,
                time=visit.during(minutes=45),
            )
        )

    def note(
        self,
        visit: Visit,
        kind: str,
        *,
        diagnoses: list[str],
        drugs: list[str],
        labs: list[str],
        start_date: date | None = None,
        response: str | None = None,
    ) -> None:
        """Write a note of `kind` for `visit` about the given diagnoses, drugs and labs."""
        rng = self.rng
        identity = self.person.identity
        doctor, doctor2 = rng.sample(self.hospital.doctors, 2)
        history = [
            CONDITIONS[key].name(self.language)
            for key in CHRONIC
            if self.profile.has(key) and CONDITIONS[key].name(self.language) not in diagnoses[:1]
        ]
        facts = NoteFacts(
            language=self.language,
            kind=kind,
            full_name=self.person.full_name,
            family_name=identity.family_name or "",
            sex=self.person.sex,
            age=age_on(self.person.birth_date, visit.start.date()),
            birth_date=self.person.birth_date,
            visit_date=visit.start.date(),
            end_date=visit.end.date() if visit.kind == "inpatient" else None,
            followup_date=(
                (visit.end + timedelta(days=rng.choice((14, 28, 30, 90)))).date()
                if rng.random() < 0.6
                else None
            ),
            start_date=start_date,
            hospital=self.hospital.name,
            other_hospital=self.other_hospital,
            doctor=doctor,
            doctor2=doctor2,
            department=department(visit, self.language),
            mrn=self.mrn,
            national_id=identity.national_id,
            phone=identity.phone,
            email=identity.email,
            address=identity.address,
            complaint=_complaint(rng, visit, self.language),
            diagnoses=tuple(diagnoses),
            history=tuple(history),
            drugs=tuple(drugs),
            labs=tuple(labs[:4]),
            response=response,
        )
        text, spans = render_note(rng, facts)
        note_type = NOTE_TYPES["progress" if kind == templates.ONCOLOGY else kind]
        self.notes.append(
            GoldNote(
                Note(
                    source_id=f"{self.pid}-N{len(self.notes) + 1}",
                    patient_id=self.pid,
                    text=text,
                    encounter_id=visit.encounter_id,
                    time=visit.end if kind == templates.DISCHARGE else visit.start,
                    kind=code_of(note_type, self.language),
                    language=self.language,
                ),
                spans,
            )
        )
