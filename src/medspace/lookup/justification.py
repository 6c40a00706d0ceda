"""The justification as it leaves the asking node: nothing in it names the patient.

The clinician types a reason ("unconscious, ID card says JOHNATHAN SMITH ..."). The PHI
scrubber finds most names, IDs and dates, but not all (a name in capitals, "smith
johnathan 14.03.61"). The asking node knows exactly what it is looking for, so it first
masks what the clinician typed as the patient's identity, wherever and however it
appears in the reason (any case, with or without accents; the ID and phone with or
without separators; the birth date in the usual spellings), then runs the scrubber
over the rest.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medspace.lookup.ask import PatientInput

PATIENT_TAG = "[PATIENT]"
_WORD = re.compile(r"[^\W\d_]{2,}")  # letters only, two or more (CJK included)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_DASHES = "\u2010-\u2015\u2212"
_NUMBER_SEPARATORS = rf"[\s().+/:_{_DASHES}\-]*"
_PHONE_DIGITS = 10  # a phone is also matched by its last 10 digits (no country code)
_ID_TAIL = 4  # an ID's last 4 digits, only after a cue ("SSN ending 1120")
_TAIL_CUE = r"(?:ending|ends|last|final)(?:\s+(?:in|with|4|four|digits?))*[\s:#]*"
_COMMON_WORDS = frozenset(
    (
        "may",
        "will",
        "rose",
        "pain",
        "dr",
        "mr",
        "mrs",
        "ms",
        "as",
        "an",
        "al",
        "et",
        "de",
        "la",
        "le",
        "di",
        "da",
        "du",
        "van",
        "von",
        "bill",
        "mark",
        "grace",
        "hope",
        "faith",
        "joy",
        "sue",
        "pat",
        "dawn",
        "young",
        "white",
        "brown",
        "black",
        "green",
        "king",
        "long",
        "little",
        "major",
        "chase",
        "hunter",
        "rich",
        "case",
        "fall",
        "ward",
        "cross",
        "hall",
        "head",
        "bell",
        "page",
        "hart",
        "heart",
    )
)
"""Name words that are also everyday or clinical words: masked only where the reason
writes them as a name (capitalised), so 'may need', 'pain 5/10' and 'et al' stay."""
_ONE_FOR_ONE = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d"})
_SPELLINGS = {"ß": "(?:ß|ss)", "æ": "(?:æ|ae)", "œ": "(?:œ|oe)", "þ": "(?:þ|th)", "å": "a{1,2}"}
"""How a letter of a typed name may be spelled in the reason (in capitals, without it)."""
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def scrub_justification(text: str, patient: PatientInput | None = None) -> str:
    """`text` with the typed identity of `patient` masked, then names, IDs, dates and other
    PHI replaced by tags, so that what travels to the hub and other hospitals names
    nobody."""
    from medspace.deid import scrub_text

    if patient is not None:
        folded = "".join(_fold(c) for c in text)
        text = _mask(text, folded, list(_identity_patterns(patient, folded)))
    return scrub_text(text).text


Pattern = tuple[re.Pattern[str], bool]
"""A pattern over the folded reason, and whether a match must be capitalised there."""


def _fold(character: str) -> str:
    """One character, lower-cased and without accents (é -> e, Ñ -> n, Ø -> o); one
    character out for one in, so positions in the folded text are positions in the
    original."""
    base = "".join(
        c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c)
    )
    folded = base.casefold().translate(_ONE_FOR_ONE)
    return folded if len(folded) == 1 else character.lower()[:1] or character


def _pieces(word: str) -> list[tuple[str, str | None]]:
    """`word` folded and cut at its letters with other spellings: (plain stretch, None)
    and (letter, its spellings) in order; 'Kierkegård' -> kierkeg, å, rd."""
    pieces: list[tuple[str, str | None]] = []
    plain: list[str] = []
    for c in word:
        spelling = _SPELLINGS.get(c.lower())
        if spelling is None:
            plain.append(_fold(c))
            continue
        pieces += [("".join(plain), None), (c, spelling)]
        plain = []
    pieces.append(("".join(plain), None))
    return pieces


def _name_pattern(word: str) -> str:
    """A typed name word as a pattern over folded text: 'Strauß' also as STRAUSS,
    'Kierkegård' also as KIERKEGAARD, 'Kierkegaard' also as Kierkegård. The "aa" of a
    plain stretch is one or two a's (a letter with other spellings next to an "a" once
    made `a{1,2}{1,2}`, which `re` refuses)."""
    return "".join(
        spelling or re.escape(text).replace("aa", "a{1,2}") for text, spelling in _pieces(word)
    )


def _required(word: str) -> str:
    """The longest stretch of `_name_pattern(word)` that is plain text: the folded reason
    holds it wherever the pattern matches (the letters with other spellings, and an "aa"
    that may be written as one "a", cut the word into such stretches)."""
    plain = [text for text, spelling in _pieces(word) if spelling is None]
    return max((part for text in plain for part in text.split("aa")), key=len)


def _mask(text: str, folded: str, patterns: list[Pattern]) -> str:
    """`text` with every match of `patterns` in `folded` (its folded form) replaced by
    the tag."""
    spans = sorted(
        m.span()
        for pattern, capital in patterns
        for m in pattern.finditer(folded)
        if m.end() > m.start() and (not capital or text[m.start()].isupper())
    )
    out, position = [], 0
    for start, end in spans:
        if start < position:  # overlaps one already masked
            start = position
            if start >= end:
                continue
        out.append(text[position:start])
        out.append(PATIENT_TAG)
        position = end
    out.append(text[position:])
    return "".join(out)


def _identity_patterns(patient: PatientInput, folded: str) -> Iterator[Pattern]:
    """The patterns of `patient`'s typed identity that can match `folded` (the folded
    reason). A pattern is compiled only when the text it must contain is there: compiling
    every one (a dozen date spellings, each name word) took ~4 ms of each lookup, for a
    reason that names nobody."""
    names = [str(n) for n in (patient.name, patient.family_name, patient.given_name) if n]
    parts = [_WORD.findall(n) for n in names]
    words = {w for p in parts for w in p} | {"".join(p) for p in parts if len(p) > 1}
    # O'Brien as OBRIEN, Anne-Marie as ANNEMARIE
    words |= {"".join(_WORD.findall(t)) for n in names for t in n.split() if len(t) > 2}
    for word in sorted(words - {""}, key=len, reverse=True):
        if _required(word) not in folded:
            continue
        spelled = _name_pattern(word)
        if _CJK.search(word):  # written without spaces: no word boundary to look for
            yield re.compile(spelled), False
        else:
            common = _fold_word(word) in _COMMON_WORDS or len(word) < 3
            yield re.compile(rf"(?<!\w){spelled}(?!\w)"), common
    present = set(folded)
    for number, tail in ((patient.national_id, _ID_TAIL), (patient.phone, _PHONE_DIGITS)):
        characters = [_fold(c) for c in str(number or "") if c.isalnum()]
        if len(characters) >= 4 and set(characters) <= present:
            spelled = _NUMBER_SEPARATORS.join(re.escape(c) for c in characters)
            yield re.compile(rf"(?<!\w){spelled}(?!\w)"), False
        if len(characters) > tail and set(characters[-tail:]) <= present:
            if tail == _ID_TAIL:  # 4 digits are a dose or a time too: only after a cue
                digits = r"[\s\-]?".join(re.escape(c) for c in characters[-tail:])
                yield re.compile(rf"(?<!\w){_TAIL_CUE}{digits}(?!\w)"), False
            else:
                digits = _NUMBER_SEPARATORS.join(re.escape(c) for c in characters[-tail:])
                yield re.compile(rf"(?<!\w){digits}(?!\w)"), False
    # Every spelling of the birth date holds the year's last two digits.
    if patient.birth_date is not None and f"{patient.birth_date.year:04d}"[2:] in folded:
        yield from ((p, False) for p in _date_patterns(patient.birth_date))


def _fold_word(word: str) -> str:
    return "".join(_fold(c) for c in word)


def _date_patterns(day: date) -> Iterator[re.Pattern[str]]:
    """The birth date as people write it: 1961-03-14, 19610314, 610314, 140361, 14.03.61,
    14. 3. 1961, 3/14/1961, March 14 1961, Sept 14th '61, 14-MAR-1961, the 14th of March,
    1961, 1961-Mar-14, 1961年3月14日 ... Each gap is one character class, so no two
    quantifiers compete for the same spaces (a long run of them stays linear)."""
    y, m, d = f"{day.year:04d}", day.month, day.day
    years = rf"(?:{y}|'?{y[2:]})"
    month, dd = rf"0?{m}", rf"0?{d}"
    gap = rf"[\s./{_DASHES}\-]+"  # no comma between numbers: 'pain 5/10, 60 bpm' stays
    word_gap = rf"[\s./,{_DASHES}\-]+"
    numeric = [
        rf"{y}-{m:02d}-{d:02d}t[\d:.]*",  # an ISO date and time
        rf"{y}{gap}{month}{gap}{dd}",
        rf"{y[2:]}{gap}{m:02d}{gap}{d:02d}",
        rf"{dd}{gap}{month}{gap}{years}",
        rf"{month}{gap}{dd}{gap}{years}",
        rf"{y}{m:02d}{d:02d}",
        rf"{y[2:]}{m:02d}{d:02d}",
        rf"{d:02d}{m:02d}{years}",
        rf"{m:02d}{d:02d}{years}",
        rf"{y}\s*年\s*{month}\s*月\s*{dd}\s*日?",
    ]
    name = _MONTHS[m - 1]
    spelled = rf"(?:{name}|{name[:4]}|{name[:3]})"
    day_word = rf"{dd}(?:st|nd|rd|th)?"
    words = [
        rf"{spelled}{word_gap}{day_word}{word_gap}{years}",
        rf"{day_word}{word_gap}(?:of\s+)?{spelled}{word_gap}{years}",
        rf"{y}{word_gap}{spelled}{word_gap}{dd}",
    ]
    for pattern in (*numeric, *words):
        yield re.compile(rf"(?<!\w){pattern}(?!\w)")


__all__ = ["PATIENT_TAG", "scrub_justification"]
