"""Clinical note templates, Chinese and English, with PHI slots.

Syntax: `{slot}` is replaced by a value; `[ ... ]` is kept only when every slot inside it
has a value (a patient without a phone number gets no "电话" clause). Which slots are
PHI, and of which gold-span type, is decided in `notes.py`, not here.

Each template is tagged with the note kinds it suits: admission, progress, discharge,
oncology (the HCC response visit).
"""

from __future__ import annotations

ADMISSION = "admission"
PROGRESS = "progress"
DISCHARGE = "discharge"
ONCOLOGY = "oncology"
NOTE_KINDS = (ADMISSION, PROGRESS, DISCHARGE, ONCOLOGY)

_ANY = frozenset({ADMISSION, PROGRESS, DISCHARGE})

ZH_TEMPLATES: tuple[tuple[frozenset[str], str], ...] = (
    (
        frozenset({ADMISSION}),
        "入院记录\n姓名：{name}  性别：{sex}  年龄：{age}岁  出生日期：{birth}\n"
        "[身份证号：{rid}  ]病案号：{mrn}\n[联系电话：{phone}\n][现住址：{address}\n]"
        "入院日期：{visit}  科室：{dept}\n主诉：{complaint}。\n"
        "现病史：患者{complaint}，于{visit}来我院就诊，门诊以“{dx1}”收入{dept}。\n"
        "既往史：{history}。\n辅助检查：{labs}。\n初步诊断：{dx_list}。\n诊疗计划：{plan}。\n"
        "医师签名：{doctor}",
    ),
    (
        frozenset({PROGRESS}),
        "门诊病历\n{hospital} {dept}\n患者{name}，{sex}，{age}岁，病案号{mrn}。\n"
        "就诊日期：{visit}\n{complaint}。查体：神志清，精神可。\n检验：{labs}。\n"
        "诊断：{dx_list}。\n处理：{plan}。[嘱{followup}复诊。]\n接诊医师：{doctor}",
    ),
    (
        frozenset({DISCHARGE}),
        "出院小结\n患者{family}{honorific}，{age}岁，因{complaint}于{visit}入住{hospital}{dept}，"
        "[于{end}出院，]住院期间查{labs}，予{drugs}治疗，病情平稳。\n入院诊断：{dx_list}。\n"
        "出院医嘱：继续{drugs}，[{followup}]门诊随访。[患者联系电话：{phone}。]\n"
        "主治医师：{doctor}  上级医师：{doctor2}",
    ),
    (
        frozenset({ADMISSION, DISCHARGE}),
        "转诊记录\n患者{name}（[身份证号{rid}，]病案号{mrn}），{sex}，{age}岁，[住{address}，]"
        "因{complaint}曾就诊于{other_hospital}，于{visit}转入我院{dept}。\n诊断：{dx_list}。\n"
        "当前用药：{drugs}。\n记录者：{doctor}",
    ),
    (
        frozenset({PROGRESS}),
        "病程记录 {visit}\n{name}，{dept}。今日复查{labs}。\n结合病史，考虑{dx1}。"
        "继续{drugs}治疗，[{followup}复查。]\n{doctor}/{hospital}",
    ),
    (
        frozenset({ONCOLOGY}),
        "肿瘤随访记录\n患者：{name}  病案号：{mrn}\n随访日期：{visit}\n"
        "诊断：{dx1}，自{start}起口服{drugs}。\n复查{labs}，疗效评价：{response}。\n"
        "[联系方式：{phone}。][电子邮箱：{email}。]\n随访医师：{doctor}（{hospital}）",
    ),
    (
        frozenset({ONCOLOGY}),
        "{visit} 肝癌靶向治疗随访：{family}{honorific}，{age}岁，[证件号{rid}，]"
        "{start}开始{drugs}治疗。今日{labs}。评估：{response}。{doctor}",
    ),
    (
        _ANY,
        "会诊意见\n{hospital}{dept}会诊：患者{family}{honorific}，{age}岁，出生于{birth}，"
        "[户籍地址：{address}，]{complaint}。\n查体及检验：{labs}。\n"
        "意见：{dx_list}诊断明确，建议{plan}。\n会诊医师：{doctor}  {visit}",
    ),
    (
        frozenset({ADMISSION, DISCHARGE}),
        "急诊记录：{visit}，{name}（{sex}，{age}岁）因{complaint}来诊。[电话{phone}。]"
        "初步诊断{dx1}，予{drugs}，收住{dept}。值班医师{doctor}。",
    ),
    (
        _ANY,
        "患者基本信息\n姓名：{name}\n出生日期：{birth}\n[证件号码：{rid}\n][手机：{phone}\n]"
        "[邮箱：{email}\n][地址：{address}\n]就诊医院：{hospital}\n就诊日期：{visit}\n---\n"
        "{complaint}。诊断：{dx_list}。处方：{drugs}。",
    ),
    (
        _ANY,
        "{visit}，{age}岁{sex}性患者{name}在家属陪同下来{hospital}就诊。患者{complaint}，"
        "既往{history}。检查示{labs}。{doctor}医师诊断为{dx1}，给予{plan}。[{followup}随访。]",
    ),
)

EN_TEMPLATES: tuple[tuple[frozenset[str], str], ...] = (
    (
        frozenset({ADMISSION}),
        "HISTORY AND PHYSICAL\nPatient: {name}    DOB: {birth}    MRN: {mrn}\n[SSN: {rid}\n]"
        "Admitted: {visit} to {dept}, {hospital}\nCC: {complaint}.\n"
        "HPI: {name} is a {age}-year-old {sex} who presents with {complaint}. "
        "Past history: {history}.\nLabs: {labs}.\nAssessment: {dx_list}.\nPlan: {plan}.\n"
        "Attending: Dr. {doctor}",
    ),
    (
        frozenset({PROGRESS}),
        "PROGRESS NOTE - {visit}\n{honorific} {family} ({age} y/o {sex}, MRN {mrn}) seen in "
        "{dept} clinic for follow-up of {dx1}.\nResults: {labs}.\nContinue {drugs}."
        "[ Return visit on {followup}.]\n-- {doctor}, MD",
    ),
    (
        frozenset({DISCHARGE}),
        "DISCHARGE SUMMARY\n{hospital}\nName: {name}  MRN: {mrn}  Age: {age}\n"
        "Admission date: {visit}[  Discharge date: {end}]\nDischarge diagnoses: {dx_list}.\n"
        "Hospital course: admitted for {complaint}; labs showed {labs}. Treated with {drugs} "
        "and improved.\nFollow-up:[ clinic visit {followup};] call {hospital} with questions."
        "[ Patient phone on file: {phone}.]\nDictated by {doctor}, MD; cosigned by {doctor2}, MD",
    ),
    (
        frozenset({ADMISSION, DISCHARGE}),
        "REFERRAL LETTER\nDate: {visit}\nRe: {name}, DOB {birth}[, SSN {rid}]\n"
        "[Address: {address}\n]Dear colleague at {other_hospital},\nI am referring this "
        "{age}-year-old {sex} with {dx1} for further management. Current medications: {drugs}. "
        "Recent labs: {labs}.\nSincerely,\nDr. {doctor}, {dept}, {hospital}",
    ),
    (
        frozenset({ONCOLOGY}),
        "ONCOLOGY FOLLOW-UP {visit}\nPt {name}, MRN {mrn}. On {drugs} since {start} for {dx1}.\n"
        "Today: {labs}. Response assessment: {response}.\n[Contact: {phone}. ][Email: {email}. ]"
        "[Next review {followup}.]\n{doctor}",
    ),
    (
        frozenset({ONCOLOGY}),
        "HCC clinic {visit}: {honorific} {family}, age {age}[, SSN {rid}], started {drugs} on "
        "{start}. Labs today {labs}. Overall: {response}. -- Dr. {doctor}",
    ),
    (
        frozenset({ADMISSION, DISCHARGE}),
        "ED NOTE: {name}, {age}{sex_short}, arrived {visit} with {complaint}. Working diagnosis "
        "{dx1}. Given {drugs}. Admitted to {dept}.[ Callback number {phone}.] "
        "Seen by Dr. {doctor}.",
    ),
    (
        _ANY,
        "PATIENT DEMOGRAPHICS\nName: {name}\nDate of birth: {birth}\n[SSN: {rid}\n]"
        "[Phone: {phone}\n][Email: {email}\n][Home address: {address}\n]Facility: {hospital}\n"
        "Visit: {visit}\n--\nProblems: {dx_list}. Medications: {drugs}.",
    ),
    (
        _ANY,
        "CONSULT NOTE\nRequested by Dr. {doctor2}. {honorific} {family} is a {age} year old {sex} "
        "[living at {address} ]with {history}, now with {complaint}.\nData: {labs}.\n"
        "Impression: {dx_list}. Recommend {plan}.\nThank you for this consult. -- Dr. {doctor}, "
        "{hospital}, {visit}",
    ),
    (
        _ANY,
        "On {visit}, {name}, a {age}-year-old {sex}, came to {hospital} for {complaint}. "
        "Labs: {labs}. Dr. {doctor} diagnosed {dx1} and started {plan}."
        "[ Follow-up scheduled for {followup}.]",
    ),
    (
        frozenset({PROGRESS}),
        "TELEPHONE ENCOUNTER {visit}\nCalled patient {name}[ at {phone}] re: recent results "
        "({labs}). Discussed {dx1}; continue {drugs}. Verified identity with DOB {birth} and "
        "MRN {mrn}.\n{doctor}, RN",
    ),
)
