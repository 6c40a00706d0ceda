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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medspace.lookup.ask import PatientInput

PATIENT_TAG = "[PATIENT]"
_WORD = re.compile(r"[^\W\d_]{2,}")  # letters only, two or more (CJK included)
_LETTERS = re.compile(r"[^\W\d_]+")
_CJK_LETTERS = "\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\u31f0-\u31ff\u1100-\u11ff\uac00-\ud7af"
_CJK = re.compile(f"[{_CJK_LETTERS}]")
"""Han, kana and Hangul: names run into the words around them (no spaces, or particles
attached), so they are matched without word boundaries."""
_NOT_AFTER_LETTER = rf"(?<![^\W\d_{_CJK_LETTERS}])"
_NOT_BEFORE_LETTER = rf"(?![^\W\d_{_CJK_LETTERS}])"
"""Boundaries of a name or month written in letters: not inside a run of letters, but
a digit, "_" or Han/kana/Hangul next to it does not hide it (OKAFOR61, okafor_adaeze,
患者OKAFOR昏迷)."""
_NOT_AFTER_DIGIT = r"(?<!\d)"
_NOT_BEFORE_DIGIT = r"(?!\d)"
"""Number boundaries (ID, phone, date): letters next to them do not hide them (DOB14/03/1961)."""
_DASHES = "\u2010-\u2015\u2212"
_NUMBER_SEPARATORS = rf"[\s().+/:_{_DASHES}\-]*"
_PHONE_TAILS = (10, 7)  # a phone also by its last 10 digits (no country code) and its last 7
_ID_TAIL = 4  # an ID's last 4 digits, only after a cue ("SSN ending 1120")
_TAIL_CUE = (
    rf"(?:{_NOT_AFTER_LETTER}(?:ending|ends|last|final)"
    r"(?:\s*(?:in|with|of|4|four|digits?|ssn|id|mrn|no|number))*[\s:#.]*"
    rf"|{_NOT_AFTER_LETTER}[x*•]{{2}}[x*•\s.\-]{{0,12}})"
)
"""What makes 4 digits an ID's tail: "ending 1120", "last 4 of SSN 1120", "last4 1120",
or the ID written out with its other digits hidden (xxx-xx-1120, ***-**-1120)."""
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
_ONE_FOR_ONE = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ı": "i"})
_SPELLINGS = {
    "ß": "(?:ß|ss)",
    "æ": "(?:æ|ae)",
    "œ": "(?:œ|oe)",
    "þ": "(?:þ|th)",
    "ä": "(?:ae|a)",
    "ö": "(?:oe|o)",
    "ü": "(?:ue|u)",
    "ø": "(?:oe|o)",
}
"""How a letter of a typed name may be spelled in the reason (in capitals, without it)."""
_DIGRAPHS = {"ae": "(?:ae|a)", "oe": "(?:oe|o)", "ue": "(?:ue|u)", "ss": "(?:ss|ß)"}
"""How letters of a typed name that stand for one letter may be written in the reason:
Mueller as Müller, Strauss as Strauß (and a run of a's, Kierkegaard as Kierkegård, in
`_spelled`)."""
_DIGRAPH = re.compile("a{2,}|" + "|".join(_DIGRAPHS))


def _spelled(pair: re.Match[str]) -> str:
    """The pattern of one `_DIGRAPH` match. A run of k a's is each "aa" written as "a"
    or "aa": between ceil(k/2) and k a's, one quantifier (a group per pair made a run
    of 40 a's take seconds, each group backtracking against the others)."""
    text = pair.group()
    if text.startswith("aa"):
        return f"a{{{(len(text) + 1) // 2},{len(text)}}}"
    return _DIGRAPHS[text]


_APOSTROPHE = "['’ʼ]?"
"""After a name's first letter: OBrien typed, O'Brien in the reason."""
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


_ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii")


def scrub_justification(text: str, patient: PatientInput | None = None) -> str:
    """`text` with the typed identity of `patient` masked, then names, IDs, dates and other
    PHI replaced by tags, so that what travels to the hub and other hospitals names
    nobody."""
    from medspace.deid import scrub_text

    text = _visible(text)
    if patient is not None:
        folded = "".join(_fold(c) for c in text)
        text = _mask(text, folded, _identity_patterns(patient, folded))
    return scrub_text(text).text


def identity_matcher(*patients: PatientInput) -> Callable[[str], bool]:
    """Whether a text holds any spelling of these identities that the mask would hide
    (an answering node checks the texts of the summary it sends with it); the patterns
    are worked out once for the many texts of one summary."""
    candidates = tuple(c for patient in patients for c in _candidates(patient))

    def names(text: str) -> bool:
        text = _visible(text)
        folded = "".join(_fold(c) for c in text)
        return _mask(text, folded, _applicable(candidates, folded)) != text

    return names


_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
"""Format characters nobody sees (soft hyphen, zero-width space and joiners, direction
marks): OKA<soft hyphen>FOR must not hide OKAFOR from the mask."""


def _visible(text: str) -> str:
    """`text` composed (a pasted "Jose" + combining accent is "José", one letter to fold)
    and without invisible format characters."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFC", text))


Pattern = tuple[re.Pattern[str], bool]
"""A pattern over the folded reason, and whether a match must be capitalised there."""


@lru_cache(maxsize=8192)
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
    and (letter, its spellings) in order; 'Strauß' -> strau, ß, "". An å is written "aa"
    in the plain stretch (one or two a's, as a typed "aa"), so that a run of å's and a's
    becomes one quantifier (`_spelled`) instead of a group per letter."""
    pieces: list[tuple[str, str | None]] = []
    plain: list[str] = []
    for c in word:
        if c.lower() == "å":
            plain.append("aa")
            continue
        spelling = _SPELLINGS.get(c.lower())
        if spelling is None:
            plain.append(_fold(c))
            continue
        pieces += [("".join(plain), None), (c, spelling)]
        plain = []
    pieces.append(("".join(plain), None))
    return pieces


def _name_pattern(word: str) -> str:
    """A typed name word as a pattern over folded text: 'Strauß' also as STRAUSS and
    'Strauss' as Strauß, 'Kierkegård' also as KIERKEGAARD and back, 'Müller' as MUELLER
    and back, 'OBrien' also as O'Brien. Within a plain stretch each `_DIGRAPHS` pair is
    a group of its own (a letter with other spellings next to an "a" once made
    `a{1,2}{1,2}`, which `re` refuses)."""
    pieces = _pieces(word)
    lead = ""
    if _apostrophe_after_first(word, pieces):
        lead = re.escape(pieces[0][0][0]) + _APOSTROPHE
        pieces[0] = (pieces[0][0][1:], None)
    return lead + "".join(
        spelling or _DIGRAPH.sub(_spelled, re.escape(text)) for text, spelling in pieces
    )


def _apostrophe_after_first(word: str, pieces: list[tuple[str, str | None]]) -> bool:
    """Whether the pattern allows an apostrophe after the word's first letter: a word of
    four letters or more that starts with a plain letter (O'Brien, D'Angelo), not with
    a `_DIGRAPHS` pair (Aase is also Åse, Oehler also Öhler: the pair stays whole)."""
    first = pieces[0][0]
    return len(word) > 3 and first[:1].isalpha() and _DIGRAPH.match(first) is None


def _required(word: str) -> str:
    """A stretch of plain text the folded reason holds wherever `_name_pattern(word)`
    matches: the longest part of the word that neither a letter with other spellings,
    a `_DIGRAPHS` pair nor the apostrophe after the first letter interrupts."""
    pieces = _pieces(word)
    if _apostrophe_after_first(word, pieces):
        pieces[0] = (pieces[0][0][1:], None)
    plain = [text for text, spelling in pieces if spelling is None]
    return max((part for text in plain for part in _DIGRAPH.split(text)), key=len)


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


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One pattern of a patient's identity and the text a folded reason must hold for it
    to match at all: a literal, or characters that must all be there."""

    needs: str | tuple[str, ...] | frozenset[str]  # a literal, literals, or characters
    sources: tuple[str, ...]  # the patterns that need it (the birth date's share one)
    capital: bool = False


def _identity_patterns(patient: PatientInput, folded: str) -> list[Pattern]:
    """The patterns of `patient`'s typed identity that can match `folded` (the folded
    reason)."""
    return _applicable(_candidates(patient), folded)


def _applicable(candidates: tuple[_Candidate, ...], folded: str) -> list[Pattern]:
    """The candidates whose needed text `folded` holds, compiled. A pattern is compiled
    only when the text it must contain is there: compiling every one (a dozen date
    spellings, each name word) took ~4 ms of each lookup, for a reason that names
    nobody (`re` keeps compiled patterns, so one seen before costs a lookup)."""
    present: set[str] | None = None
    found: list[Pattern] = []
    for candidate in candidates:
        if isinstance(candidate.needs, str):
            if candidate.needs not in folded:
                continue
        elif isinstance(candidate.needs, tuple):
            if not all(literal in folded for literal in candidate.needs):
                continue
        else:
            present = set(folded) if present is None else present
            if not candidate.needs <= present:
                continue
        found += ((re.compile(source), candidate.capital) for source in candidate.sources)
    return found


def _candidates(patient: PatientInput) -> tuple[_Candidate, ...]:
    """Every pattern of `patient`'s typed identity, with the text each needs (worked out
    once per patient: an answering node checks a summary's texts with them)."""
    names = [_visible(str(n)) for n in (patient.name, patient.family_name, patient.given_name) if n]
    parts = [_WORD.findall(n) for n in names]
    words = {w for p in parts for w in p} | {"".join(p) for p in parts if len(p) > 1}
    # O'Brien as OBRIEN, Anne-Marie as ANNEMARIE
    words |= {"".join(_LETTERS.findall(t)) for n in names for t in n.split() if len(t) > 2}
    found: list[_Candidate] = []
    for word in sorted(words - {""}, key=len, reverse=True):
        if _CJK.search(word):
            continue  # below, character by character
        spelled = _name_pattern(word)
        common = _fold_word(word) in _COMMON_WORDS or len(word) < 3
        source = f"{_NOT_AFTER_LETTER}{spelled}{_NOT_BEFORE_LETTER}"
        found.append(_Candidate(_required(word), (source,), common))
    found += _cjk_candidates(patient, [*names, *words])
    for number, tails in ((patient.national_id, (_ID_TAIL,)), (patient.phone, _PHONE_TAILS)):
        characters = [_fold(c) for c in str(number or "") if c.isalnum()]
        if len(characters) >= 4:
            spelled = _NUMBER_SEPARATORS.join(re.escape(c) for c in characters)
            source = f"{_NOT_AFTER_DIGIT}{spelled}{_NOT_BEFORE_DIGIT}"
            found.append(_Candidate(frozenset(characters), (source,)))
        for tail in tails:
            if len(characters) <= tail:
                continue
            needs = frozenset(characters[-tail:])
            if tail == _ID_TAIL:  # 4 digits are a dose or a time too: only after a cue
                digits = r"[\s\-]?".join(re.escape(c) for c in characters[-tail:])
                found.append(_Candidate(needs, (rf"{_TAIL_CUE}{digits}{_NOT_BEFORE_DIGIT}",)))
            else:
                digits = _NUMBER_SEPARATORS.join(re.escape(c) for c in characters[-tail:])
                source = f"{_NOT_AFTER_DIGIT}{digits}{_NOT_BEFORE_DIGIT}"
                found.append(_Candidate(needs, (source,)))
    # Every spelling of the birth date holds the year's last two digits and the day's.
    if patient.birth_date is not None:
        born = patient.birth_date
        year_and_day = (f"{born.year:04d}"[2:], str(born.day))
        found.append(_Candidate(year_and_day, tuple(_date_patterns(born))))
    return tuple(found)


def _fold_word(word: str) -> str:
    return "".join(_fold(c) for c in word)


def _cjk_candidates(patient: PatientInput, names: list[str]) -> list[_Candidate]:
    """Han, kana and Hangul names, matched without word boundaries and with any spaces
    between their characters (张伟, 张 伟): each typed name and name word (ヤマダ of
    ヤマダ タロウ), and the family name followed by the given name (registration systems
    keep them apart; a one-character part alone is too common to mask). Two characters
    or more."""
    runs = ["".join(_CJK.findall(n)) for n in names]
    family, given = patient.family_name, patient.given_name
    if family and given:
        runs.append("".join(_CJK.findall(unicodedata.normalize("NFC", f"{family}{given}"))))
    found = []
    for run in sorted({r for r in runs if len(r) >= 2}, key=len, reverse=True):
        letters = [_fold(c) for c in run]  # ダ folds to タ as in the reason
        found.append(_Candidate(letters[0], (r"\s*".join(re.escape(c) for c in letters),)))
    return found


def _date_patterns(day: date) -> Iterator[str]:
    """The birth date as people write it: 1961-03-14, 19610314, 610314, 140361, 14.03.61,
    14. 3. 1961, 3/14/1961, March 14 1961, Sept 14th '61, 14-MAR-1961, the 14th of March,
    1961, 1961-Mar-14, 1961年3月14日 ... Each gap is one character class, so no two
    quantifiers compete for the same spaces (a long run of them stays linear)."""
    y, m, d = f"{day.year:04d}", day.month, day.day
    years = rf"(?:{y}|['’]?{y[2:]})"
    month, dd = rf"0?{m}", rf"0?{d}"
    gap = rf"[\s./{_DASHES}\-]+"  # no comma between numbers: 'pain 5/10, 60 bpm' stays
    word_gap = rf"[\s./,{_DASHES}\-]+"
    numeric = [
        rf"{y}-{m:02d}-{d:02d}t[\d:.]*",  # an ISO date and time
        rf"{y}{gap}{month}{gap}{dd}",
        rf"{y[2:]}{gap}{month}{gap}{dd}",
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
    roman = rf"(?:{spelled}|{_ROMAN[m - 1]})"  # 14 III 1961, between two numbers only
    day_word = rf"{dd}(?:st|nd|rd|th)?"
    for pattern in numeric:
        yield f"{_NOT_AFTER_DIGIT}{pattern}{_NOT_BEFORE_DIGIT}"
    words = [
        rf"{_NOT_AFTER_LETTER}{spelled}{word_gap}(?:the\s+)?{day_word}{word_gap}{years}",
        rf"{_NOT_AFTER_DIGIT}{day_word}{word_gap}(?:day\s+)?(?:of\s+)?{roman}{word_gap}{years}",
        rf"{_NOT_AFTER_DIGIT}{y}{word_gap}{roman}{word_gap}{dd}",
    ]
    for pattern in words:
        yield f"{pattern}{_NOT_BEFORE_DIGIT}"


__all__ = ["PATIENT_TAG", "identity_matcher", "scrub_justification"]
