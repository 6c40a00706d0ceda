"""English personal names (HIPAA identifier A).

Capitalised words are grouped into runs ("Mary Ann O'Brien"). A run is a name when a title
or role stands before it (Dr., Mrs., patient, wife, seen by), a credential or "is a 67-year-
old" follows it, or it has two to four words and starts with a known given name or ends with
a known surname. Runs made only of common clinical words never are. A name found once is
then found wherever else its words occur in the same text.
"""

from __future__ import annotations

import re

from medspace.deid.recognizers.base import alternation, occurrences, register, wordlist, words
from medspace.deid.recognizers.names_zh import AFTER_WORDS, BEFORE_WORDS
from medspace.deid.spans import PERSON, Span

_FIRST = wordlist("en_first_names.txt")
_LAST = wordlist("en_surnames.txt")
_COMMON = wordlist("en_common_words.txt")

# A capitalised word (O'Brien, McDonald, Smith-Jones) or an initial ("J."); both start with
# a capital letter so the engine can skip straight to capitals.
_WORD = r"[A-Z](?:['’][A-Z])?[a-z]+(?:[A-Z][a-z]+)?(?:['’-][A-Z]?[a-z]+)*"
_INITIAL = r"[A-Z]\."
_TOKEN = r"[A-Z](?:\.|(?:['’][A-Z])?[a-z]+(?:[A-Z][a-z]+)?(?:['’-][A-Z]?[a-z]+)*)"
# A run: words or initials separated by one space.
_RUN = re.compile(_TOKEN + r"(?: " + _TOKEN + r")*")
_INITIAL_RE = re.compile(_INITIAL)

_TITLES = words("Mr Mrs Ms Miss Mx Dr Prof Sr Sra Srta Rev Fr Sen Rep Capt Sgt Lt Col Gen Hon")
# fmt: off
_ROLES = [
    "patient", "Patient", "pt", "Pt", "name", "Name", "Patient name", "Patient Name",
    "doctor", "Doctor",
    "nurse", "Nurse", "attending", "Attending", "resident", "Resident", "surgeon", "Surgeon",
    "physician", "Physician", "PCP", "provider", "Provider", "cardiologist", "oncologist",
    "neurologist", "pharmacist", "therapist", "social worker", "case manager", "midwife",
    "wife", "husband", "son", "daughter", "mother", "father", "brother", "sister", "spouse",
    "partner", "friend", "neighbor", "neighbour", "caregiver", "guardian", "grandson",
    "granddaughter", "niece", "nephew", "aunt", "uncle", "fiance", "fiancee", "boyfriend",
    "girlfriend", "contact", "Contact", "emergency contact", "Emergency contact", "next of kin",
    "accompanied by", "seen by", "signed by", "Signed by", "dictated by", "Dictated by",
    "referred by", "Referred by", "reviewed by", "Reviewed by", "examined by", "discussed with",
    "spoke with", "spoke to", "called", "paged", "per", "cc", "CC", "Electronically signed by",
    "Attending physician", "Referring physician", "Primary care physician", "Dear",
]
# fmt: on
_CREDENTIALS = r",?\s+(?:MD|M\.D\.|DO|D\.O\.|RN|NP|PA-C|PA|PhD|MBBS|DDS|PharmD|FACP|FACC|LPN|CNA)\b"
_AFTER = re.compile(
    _CREDENTIALS
    + r"|(?:\s+(?:is|was)|,)\s+an?\s+[0-9]{1,3}[- ](?:year|yr|month|week|day)[- ]old"
    + r"|\s*\((?:DOB|MRN|age|born)"
    + r"|'s\s+(?:wife|husband|son|daughter|mother|father|brother|sister|spouse|partner|family)"
    + r"|,\s*(?:age\s*)?[0-9]{1,3}\s*(?:y/?o|years? old|-year-old)"
    # Latin names in Chinese notes: "Garcia先生", "Brenda Peterson, 女, 62岁".
    + r"|\s?(?:"
    + alternation(AFTER_WORDS)
    + r")"
    + r"|\s?[,(]\s*[男女]"
)


def _cases(phrases: list[str]) -> list[str]:
    # Written, Capitalised and UPPER forms, matched case-sensitively: re.IGNORECASE would
    # stop the engine from skipping ahead to the first letters of the phrases.
    out: set[str] = set()
    for p in phrases:
        out.update((p, p[:1].upper() + p[1:], p.upper(), p.lower()))
    return sorted(out)


def _reversed(phrases: list[str]) -> str:
    return alternation(p[::-1] for p in phrases)


# Context before a name, matched on the *reversed* text at the name's start: one anchored
# match per candidate instead of a scan of the whole note for hundreds of role words.
_CONTEXT_REV = re.compile(
    r"\s+\.?(?:" + _reversed(_cases(list(_TITLES))) + r")(?![A-Za-z])"
    r"|(?:\s+(?:si|saw|deman|fo))?(?:\s*[:,]\s*|\s+)(?:"
    + _reversed(_cases(_ROLES))
    + r")(?![A-Za-z])"
    r"|\s*:?\s*(?:" + _reversed(list(BEFORE_WORDS)) + r")"
)


def _after_context(backwards: str, position: int) -> bool:
    """True when a title or role word ends right before this point (reversed text)."""
    return _CONTEXT_REV.match(backwards, position) is not None


def _is_latin(ch: str) -> bool:
    return "a" <= ch <= "z" or "A" <= ch <= "Z"


def _is_common(word: str) -> bool:
    return word in _COMMON or word.rstrip(".") in _COMMON


def _known(word: str) -> bool:
    return word in _FIRST or word in _LAST


class EnglishNameRecognizer:
    """English names by context and name lists."""

    name = "names-en"
    languages = frozenset({"en"})

    def find(self, text: str) -> list[Span]:
        """Names with context or list support, then their other occurrences."""
        spans: list[Span] = []
        backwards = text[::-1]
        for m in _RUN.finditer(text):
            if m.start() > 0 and _is_latin(text[m.start() - 1]):
                continue
            spans.extend(self._from_run(text, m.start(), m.group(0), backwards))
        return spans + self._propagate(text, spans)

    def _from_run(self, text: str, start: int, run: str, backwards: str) -> list[Span]:
        words: list[tuple[int, str]] = []
        pos = start
        for w in run.split(" "):
            words.append((pos, w))
            pos += len(w) + 1
        # A word is part of a name when it is not a common word, or when it is a listed name
        # next to a word that is (Renee White, Billy May), or right after a title (Mr. White).
        keep = [not _is_common(w) and not _INITIAL_RE.fullmatch(w) for _, w in words]
        for k, (p, w) in enumerate(words):
            if not keep[k] and _known(w):
                beside = (k > 0 and keep[k - 1]) or (k + 1 < len(words) and keep[k + 1])
                if beside or _after_context(backwards, len(text) - p):
                    keep[k] = True
        out: list[Span] = []
        i = 0
        while i < len(words):
            if not keep[i]:
                i += 1
                continue
            j = i
            while (
                j + 1 < len(words)
                and j - i < 3
                and (
                    keep[j + 1]
                    or (
                        _INITIAL_RE.fullmatch(words[j + 1][1])
                        and j + 2 < len(words)
                        and keep[j + 2]
                    )
                )
            ):
                j += 1
            s = words[i][0]
            e = words[j][0] + len(words[j][1])
            stretch = [w for _, w in words[i : j + 1] if not _INITIAL_RE.fullmatch(w)]
            context = _after_context(backwards, len(text) - s) or bool(_AFTER.match(text, e))
            listed = len(stretch) >= 2 and (stretch[0] in _FIRST or stretch[-1] in _LAST)
            if context:
                out.append(Span(s, e, PERSON, 0.9, self.name))
            elif listed:
                out.append(Span(s, e, PERSON, 0.8, self.name))
            elif len(stretch) == 1 and s > 0 and self._after_initial(text, s):
                out.append(Span(s, e, PERSON, 0.7, self.name))
            i = j + 1
        return out

    @staticmethod
    def _after_initial(text: str, s: int) -> bool:
        # "J. Smith": a lone capital initial right before a surname from the list.
        return bool(re.search(r"(?<![A-Za-z])[A-Z]\.\s$", text[max(0, s - 4) : s])) and (
            text[s:].split(" ", 1)[0].strip(".,;:") in _LAST
        )

    def _propagate(self, text: str, spans: list[Span]) -> list[Span]:
        tokens: set[str] = set()
        for s in spans:
            for w in re.findall(_WORD, text[s.start : s.end]):
                if len(w) >= 3 and not _is_common(w):
                    tokens.add(w)
        out: list[Span] = []
        for token in tokens:
            for start in occurrences(text, token):
                end = start + len(token)
                if (start == 0 or not _is_latin(text[start - 1])) and not (
                    end < len(text) and "a" <= text[end] <= "z"
                ):
                    out.append(Span(start, end, PERSON, 0.75, self.name))
        return out


register(EnglishNameRecognizer())
