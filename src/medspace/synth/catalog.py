"""The clinical vocabulary the generator draws from: real codes with English and Chinese names.

Systems use MedSpace's short names (`medspace.model.codes`); FHIR and HL7 writers turn them
into URIs and HL7 table 0396 names. Every code here is a published code of its system.
"""

from __future__ import annotations

from dataclasses import dataclass

from medspace.model.codes import ATC, ICD10, LOINC, SNOMED


@dataclass(frozen=True, slots=True)
class Concept:
    """A code with its system and its name in English and Chinese."""

    key: str
    system: str
    code: str
    en: str
    zh: str

    def name(self, language: str) -> str:
        """The display name in "zh" or "en"."""
        return self.zh if language == "zh" else self.en


@dataclass(frozen=True, slots=True)
class LabTest:
    """A LOINC laboratory test with its UCUM unit, reference range and printed precision."""

    concept: Concept
    unit: str
    low: float | None
    high: float | None
    decimals: int


@dataclass(frozen=True, slots=True)
class DrugItem:
    """An ATC-coded drug and its usual order text."""

    concept: Concept
    dose: str


@dataclass(frozen=True, slots=True)
class Allergen:
    """A SNOMED CT substance with its FHIR AllergyIntolerance category."""

    concept: Concept
    category: str  # medication | food | environment


def _index(items: tuple[Concept, ...]) -> dict[str, Concept]:
    return {item.key: item for item in items}


CONDITIONS: dict[str, Concept] = _index(
    (
        Concept("hcc", ICD10, "C22.0", "Liver cell carcinoma", "肝细胞癌"),
        Concept(
            "diabetes",
            ICD10,
            "E11.9",
            "Type 2 diabetes mellitus without complications",
            "2型糖尿病不伴有并发症",
        ),
        Concept("hypertension", ICD10, "I10", "Essential (primary) hypertension", "原发性高血压"),
        Concept("pneumonia", ICD10, "J18.9", "Pneumonia, unspecified", "肺炎"),
        Concept("mi", ICD10, "I21.9", "Acute myocardial infarction, unspecified", "急性心肌梗死"),
        Concept(
            "hepb",
            ICD10,
            "B18.1",
            "Chronic viral hepatitis B without delta-agent",
            "慢性乙型病毒性肝炎",
        ),
        Concept("cirrhosis", ICD10, "K74.6", "Other and unspecified cirrhosis of liver", "肝硬化"),
        Concept("hyperlipidemia", ICD10, "E78.5", "Hyperlipidaemia, unspecified", "高脂血症"),
        Concept("ckd", ICD10, "N18.3", "Chronic kidney disease, stage 3", "慢性肾脏病3期"),
        Concept(
            "copd",
            ICD10,
            "J44.9",
            "Chronic obstructive pulmonary disease, unspecified",
            "慢性阻塞性肺疾病",
        ),
        Concept(
            "af", ICD10, "I48.9", "Atrial fibrillation and atrial flutter, unspecified", "心房颤动"
        ),
        Concept("asthma", ICD10, "J45.9", "Asthma, unspecified", "支气管哮喘"),
    )
)


def _drug(key: str, code: str, en: str, zh: str, dose: str) -> DrugItem:
    return DrugItem(Concept(key, ATC, code, en, zh), dose)


DRUGS: dict[str, DrugItem] = {
    item.concept.key: item
    for item in (
        _drug("sorafenib", "L01EX02", "sorafenib", "索拉非尼", "400 mg bid"),
        _drug("metformin", "A10BA02", "metformin", "二甲双胍", "500 mg bid"),
        _drug("insulin_glargine", "A10AE04", "insulin glargine", "甘精胰岛素", "10 U qn"),
        _drug("amlodipine", "C08CA01", "amlodipine", "氨氯地平", "5 mg qd"),
        _drug("lisinopril", "C09AA03", "lisinopril", "赖诺普利", "10 mg qd"),
        _drug("atorvastatin", "C10AA05", "atorvastatin", "阿托伐他汀", "20 mg qn"),
        _drug("aspirin", "B01AC06", "acetylsalicylic acid", "阿司匹林", "100 mg qd"),
        _drug("clopidogrel", "B01AC04", "clopidogrel", "氯吡格雷", "75 mg qd"),
        _drug("amoxicillin", "J01CA04", "amoxicillin", "阿莫西林", "500 mg tid"),
        _drug("ceftriaxone", "J01DD04", "ceftriaxone", "头孢曲松", "2 g qd"),
        _drug("entecavir", "J05AF10", "entecavir", "恩替卡韦", "0.5 mg qd"),
        _drug("salbutamol", "R03AC02", "salbutamol", "沙丁胺醇", "100 ug prn"),
        _drug("tiotropium", "R03BB04", "tiotropium bromide", "噻托溴铵", "18 ug qd"),
        _drug("furosemide", "C03CA01", "furosemide", "呋塞米", "20 mg qd"),
        _drug("omeprazole", "A02BC01", "omeprazole", "奥美拉唑", "20 mg qd"),
        _drug("warfarin", "B01AA03", "warfarin", "华法林", "3 mg qd"),
    )
}


def _lab(
    key: str,
    code: str,
    en: str,
    zh: str,
    unit: str,
    low: float | None,
    high: float | None,
    decimals: int,
) -> LabTest:
    return LabTest(Concept(key, LOINC, code, en, zh), unit, low, high, decimals)


LABS: dict[str, LabTest] = {
    lab.concept.key: lab
    for lab in (
        _lab(
            "afp",
            "1834-1",
            "Alpha-1-Fetoprotein [Mass/volume] in Serum or Plasma",
            "甲胎蛋白",
            "ng/mL",
            0.0,
            10.0,
            1,
        ),
        _lab(
            "alt",
            "1742-6",
            "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
            "丙氨酸氨基转移酶",
            "U/L",
            7.0,
            40.0,
            0,
        ),
        _lab(
            "ast",
            "1920-8",
            "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
            "天门冬氨酸氨基转移酶",
            "U/L",
            13.0,
            35.0,
            0,
        ),
        _lab(
            "hba1c",
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            "糖化血红蛋白",
            "%",
            4.0,
            6.0,
            1,
        ),
        _lab(
            "glucose",
            "2345-7",
            "Glucose [Mass/volume] in Serum or Plasma",
            "葡萄糖",
            "mg/dL",
            70.0,
            99.0,
            0,
        ),
        _lab(
            "creatinine",
            "2160-0",
            "Creatinine [Mass/volume] in Serum or Plasma",
            "肌酐",
            "mg/dL",
            0.6,
            1.2,
            2,
        ),
        _lab(
            "cholesterol",
            "2093-3",
            "Cholesterol [Mass/volume] in Serum or Plasma",
            "总胆固醇",
            "mg/dL",
            None,
            200.0,
            0,
        ),
        _lab(
            "ldl",
            "2089-1",
            "Cholesterol in LDL [Mass/volume] in Serum or Plasma",
            "低密度脂蛋白胆固醇",
            "mg/dL",
            None,
            100.0,
            0,
        ),
        _lab(
            "hemoglobin",
            "718-7",
            "Hemoglobin [Mass/volume] in Blood",
            "血红蛋白",
            "g/dL",
            12.0,
            17.5,
            1,
        ),
        _lab(
            "troponin",
            "10839-9",
            "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
            "肌钙蛋白I",
            "ng/mL",
            None,
            0.04,
            3,
        ),
        _lab(
            "wbc",
            "6690-2",
            "Leukocytes [#/volume] in Blood by Automated count",
            "白细胞计数",
            "10*3/uL",
            4.0,
            10.0,
            1,
        ),
        _lab(
            "crp",
            "1988-5",
            "C reactive protein [Mass/volume] in Serum or Plasma",
            "C反应蛋白",
            "mg/L",
            None,
            10.0,
            1,
        ),
        _lab(
            "albumin",
            "1751-7",
            "Albumin [Mass/volume] in Serum or Plasma",
            "白蛋白",
            "g/dL",
            3.5,
            5.0,
            1,
        ),
        _lab(
            "bilirubin",
            "1975-2",
            "Bilirubin.total [Mass/volume] in Serum or Plasma",
            "总胆红素",
            "mg/dL",
            0.2,
            1.2,
            1,
        ),
    )
}


def _allergen(key: str, code: str, en: str, zh: str, category: str) -> Allergen:
    return Allergen(Concept(key, SNOMED, code, en, zh), category)


ALLERGENS: dict[str, Allergen] = {
    item.concept.key: item
    for item in (
        _allergen("penicillin", "764146007", "Penicillin", "青霉素", "medication"),
        _allergen("aspirin", "387458008", "Aspirin", "阿司匹林", "medication"),
        _allergen("sulfonamide", "387406002", "Sulfonamide", "磺胺类药物", "medication"),
        _allergen("latex", "111088007", "Latex", "乳胶", "environment"),
        _allergen("peanut", "762952008", "Peanut", "花生", "food"),
        _allergen("fish", "227037002", "Fish - dietary", "鱼类", "food"),
    )
}

#: Allergic reactions (SNOMED CT clinical findings), used as AllergyIntolerance manifestations.
REACTIONS: dict[str, Concept] = _index(
    (
        Concept("rash", SNOMED, "271807003", "Eruption of skin", "皮疹"),
        Concept("hives", SNOMED, "247472004", "Wheal", "荨麻疹"),
        Concept("itching", SNOMED, "418290006", "Itching", "瘙痒"),
        Concept("dyspnea", SNOMED, "267036007", "Dyspnea", "呼吸困难"),
        Concept("nausea", SNOMED, "422587007", "Nausea", "恶心"),
        Concept("anaphylaxis", SNOMED, "39579001", "Anaphylaxis", "过敏性休克"),
    )
)

#: Reaction by its display text in either language (writers need the code back).
REACTION_BY_TEXT: dict[str, Concept] = {
    text: concept for concept in REACTIONS.values() for text in (concept.en, concept.zh)
}

PROCEDURES: dict[str, Concept] = _index(
    (
        Concept(
            "pci", SNOMED, "415070008", "Percutaneous coronary intervention", "经皮冠状动脉介入治疗"
        ),
        Concept("chest_xray", SNOMED, "399208008", "Plain chest X-ray", "胸部X线平片"),
        Concept("ecg", SNOMED, "29303009", "Electrocardiographic procedure", "心电图检查"),
        Concept("ct_abdomen", SNOMED, "169070004", "Computed tomography of abdomen", "腹部CT"),
        Concept("liver_biopsy", SNOMED, "86259008", "Biopsy of liver", "肝穿刺活检"),
        Concept("us_abdomen", SNOMED, "45036003", "Ultrasonography of abdomen", "腹部超声"),
    )
)

#: Note types (LOINC document ontology).
NOTE_TYPES: dict[str, Concept] = _index(
    (
        Concept("admission", LOINC, "34117-2", "History and physical note", "入院记录"),
        Concept("progress", LOINC, "11506-3", "Progress note", "门诊病历"),
        Concept("discharge", LOINC, "18842-5", "Discharge summary", "出院小结"),
    )
)

#: Response of HCC to sorafenib: LOINC 88040-1 valued with SNOMED CT condition-trend findings
#: (the coding the HL7 mCODE CancerDiseaseStatus profile uses).
RESPONSE_CODE = Concept(
    "response", LOINC, "88040-1", "Response to cancer treatment", "肿瘤治疗反应"
)
RESPONSE_VALUES: dict[str, Concept] = _index(
    (
        Concept("improved", SNOMED, "268910001", "Patient's condition improved", "病情好转"),
        Concept("stable", SNOMED, "359746009", "Patient's condition stable", "病情稳定"),
        Concept("worsened", SNOMED, "271299001", "Patient's condition worsened", "病情恶化"),
    )
)

#: Department names per encounter reason; the English ones carry "&" on purpose (HL7 \T\).
DEPARTMENTS: dict[str, tuple[str, str]] = {
    "hcc": ("Hepatobiliary & Pancreatic Surgery", "肝胆胰外科"),
    "diabetes": ("Endocrinology & Metabolism", "内分泌科"),
    "hypertension": ("Cardiology", "心血管内科"),
    "mi": ("Cardiology", "心血管内科"),
    "pneumonia": ("Pulmonary & Critical Care", "呼吸与危重症医学科"),
    "liver": ("Gastroenterology & Hepatology", "消化内科"),
    "general": ("General Internal Medicine", "普通内科"),
    "emergency": ("Emergency Department", "急诊科"),
}
