"""Free-text PHI scrubbing: find PHI with the recognisers (and an optional NER backend),
resolve overlaps, and replace each find as the rule pack says.

`ScrubResult` reports spans by position and type only, never the text they covered, so it
can be logged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Protocol

from medspace.deid import datetext
from medspace.deid.errors import KeyMissingError, UsageError
from medspace.deid.keys import DeidKey, Keyring
from medspace.deid.normalise import fold
from medspace.deid.packs import DEFAULT_PACK, TEXT_MODES, RulePack, get_pack
from medspace.deid.recognizers import Recognizer, recognizers_for
from medspace.deid.spans import AGE, DATE, Span, resolve
from medspace.deid.surrogates import Surrogates

_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]{2}")
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
LANGUAGES = ("auto", "zh", "en")


class NerBackend(Protocol):
    """A statistical recogniser plugged in beside the rules (e.g. a locally installed spaCy or
    transformers model). MedSpace never downloads a model; the caller supplies one."""

    def find(self, text: str, language: str) -> list[Span]:
        """PHI spans in `text` (already folded; offsets are the original's)."""
        ...


@dataclass(frozen=True)
class ScrubResult:
    """Scrubbed text and where PHI was found (positions in the input, types; no values)."""

    text: str
    spans: tuple[Span, ...]
    language: str

    def counts(self) -> dict[str, int]:
        """Number of replaced spans per entity type."""
        return dict(Counter(s.type for s in self.spans))


CHUNK = 200_000
OVERLAP = 2_000


def _pieces(text: str) -> list[tuple[int, int]]:
    """(start, end) of pieces of about CHUNK characters, cut after a line break where there
    is one (a blank line first)."""
    if len(text) <= CHUNK:
        return [(0, len(text))]
    pieces: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + CHUNK)
        if end < len(text):
            cut = text.rfind("\n\n", start + CHUNK // 2, end)
            if cut < 0:
                cut = text.rfind("\n", start + CHUNK // 2, end)
            end = cut + 1 if cut >= 0 else end
        pieces.append((start, end))
        start = end
    return pieces


def detect_language(text: str) -> str:
    """ "zh" when the text has Chinese characters and little Latin, "en" for Latin only,
    "mixed" for both, "none" for neither."""
    sample = text[:20000]
    han = sum(map(len, _HAN_RUN.findall(sample)))
    latin = 2 * len(_LATIN_WORD.findall(sample))
    if han and latin * 2 > han:
        return "mixed"
    if han:
        return "zh"
    return "en" if latin else "none"


class Scrubber:
    """Finds and replaces PHI in notes under one rule pack and key.

    `mode` overrides the pack's replacement style: "tag" ([PERSON]), "surrogate" (consistent
    fake values) or "pseudonym" (reversible tokens). Raises `KeyMissingError` when the pack
    or mode needs a key and none is given.
    """

    def __init__(
        self,
        pack: str | RulePack = DEFAULT_PACK,
        key: DeidKey | None = None,
        *,
        mode: str | None = None,
        ner: NerBackend | None = None,
        recognizers: Sequence[Recognizer] | None = None,
    ) -> None:
        self.pack = get_pack(pack)
        self.mode = mode or self.pack.text_mode
        if self.mode not in TEXT_MODES:
            raise UsageError(
                f"unknown replacement mode {self.mode!r}; use one of {', '.join(TEXT_MODES)}"
            )
        if key is None and self.pack.text_needs_key(self.mode):
            raise KeyMissingError(
                f"rule pack {self.pack.name} with {self.mode} replacement needs a "
                "de-identification key; pass key=DeidKey(...) (CLI: --key-file)"
            )
        self._keys = Keyring(key) if key is not None else None
        self._surrogates = Surrogates(self._keys) if self._keys is not None else None
        self._ner = ner
        self._fixed = list(recognizers) if recognizers is not None else None
        self._this_year = date.today().year

    def _recognizers(self, languages: set[str]) -> list[Recognizer]:
        if self._fixed is not None:
            return [r for r in self._fixed if r.languages & languages]
        return recognizers_for(languages)

    def find(self, text: str, *, lang: str = "auto") -> list[Span]:
        """Disjoint PHI spans in `text`, sorted by position.

        Long texts are read in overlapping pieces of about `CHUNK` characters, so cost
        stays linear and a name found in one part of a huge file is looked for again only
        nearby.
        """
        if lang not in LANGUAGES:
            raise UsageError(f"unknown language {lang!r}; use auto, zh or en")
        if not text:
            return []
        folded = fold(text)
        spans: list[Span] = []
        for start, end in _pieces(folded):
            # Each piece is read with OVERLAP characters of context on both sides and keeps
            # the finds that start inside it, so a find across a cut is still whole.
            lo, hi = max(0, start - OVERLAP), min(len(folded), end + OVERLAP)
            for span in self._find_piece(folded[lo:hi], lang):
                if start <= span.start + lo < end:
                    spans.append(
                        Span(span.start + lo, span.end + lo, span.type, span.score, span.source)
                    )
        return resolve([s for s in spans if 0 <= s.start < s.end <= len(text)])

    def _find_piece(self, folded: str, lang: str) -> list[Span]:
        if lang == "auto":
            languages = set()
            if _HAN.search(folded):
                languages.add("zh")
            if _LATIN.search(folded):
                languages.add("en")
            languages = languages or {"en"}
        else:
            languages = {lang}
        spans: list[Span] = []
        for recognizer in self._recognizers(languages):
            spans.extend(recognizer.find(folded))
        if self._ner is not None:
            for language in sorted(languages):
                spans.extend(self._ner.find(folded, language))
        return spans

    def scrub(
        self,
        text: str,
        *,
        lang: str = "auto",
        patient_id: str | None = None,
        known: Sequence[tuple[str, str]] = (),
    ) -> ScrubResult:
        """Replace every PHI span. `patient_id` scopes surrogates and the date shift.

        `known` lists (value, type) pairs already known to identify this patient (from the
        structured record: names, MRN, phone); every occurrence is replaced as well, which
        catches what no pattern would (unusual names, local number formats).
        """
        spans = self.find(text, lang=lang)
        if known:
            spans = resolve(spans + known_spans(text, known))
        out: list[str] = []
        pos = 0
        kept: list[Span] = []
        for span in spans:
            original = text[span.start : span.end]
            replacement = self._replacement(span, original, patient_id)
            if replacement is None:
                continue
            out.append(text[pos : span.start])
            out.append(replacement)
            pos = span.end
            kept.append(span)
        out.append(text[pos:])
        language = detect_language(text) if lang == "auto" else lang
        return ScrubResult("".join(out), tuple(kept), language)

    def _replacement(self, span: Span, original: str, patient: str | None) -> str | None:
        action = self.pack.text_action(span.type)
        if action == "keep":
            return None
        if span.type == AGE or action == "top-code":
            return self._age(original)
        if span.type == DATE and action in ("year", "shift"):
            if action == "year":
                return self._year(original)
            assert self._keys is not None  # text_needs_key() guarantees a key for "shift"
            days = self._keys.shift_days(patient or "", self.pack.shift_max_days)
            return datetext.shifted(original, days) or "[DATE]"
        if self.mode == "tag":
            return f"[{span.type}]"
        if self.mode == "pseudonym":
            assert self._keys is not None
            value = " ".join(fold(original).split())
            return f"[{span.type}:{self._keys.pseudonym(value, span.type)}]"
        assert self._surrogates is not None
        return self._surrogates.replace(span.type, original, patient)

    def _year(self, original: str) -> str:
        """The year alone, unless it is so long ago that it reveals an age over 89 (a birth
        year of someone now 90 or older; 45 CFR 164.514(b)(2)(i)(C))."""
        parsed = datetext.parse(original)
        top = self.pack.age_top_code
        if parsed is None or not parsed.has_year:
            return "[DATE]"
        if top is not None and parsed.value.year <= self._this_year - top:
            return "[DATE]"
        return parsed.year_text(parsed.value.year)

    def _age(self, original: str) -> str | None:
        top = self.pack.age_top_code
        digits = "".join(ch for ch in fold(original) if ch.isdigit())
        if top is None:
            return None
        if digits and int(digits[:3]) < top:
            return None
        return f"{top}+"


def known_spans(text: str, known: Sequence[tuple[str, str]]) -> list[Span]:
    """Spans of every occurrence of known identifying values (case-insensitive for Latin
    letters; a Latin value must not run on into other letters)."""
    values = {v.strip(): t for v, t in known if v and len(v.strip()) >= 2}
    if not values:
        return []
    by_length = sorted(values, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(v) for v in by_length), re.IGNORECASE)
    lowered = {v.lower(): t for v, t in values.items()}
    out: list[Span] = []
    for m in pattern.finditer(fold(text)):
        s, e = m.span()
        value = m.group(0)
        if (
            value[:1].isascii()
            and value[:1].isalpha()
            and s > 0
            and text[s - 1].isascii()
            and text[s - 1].isalpha()
        ):
            continue
        if (
            value[-1:].isascii()
            and value[-1:].isalpha()
            and e < len(text)
            and text[e].isascii()
            and text[e].isalpha()
        ):
            continue
        out.append(Span(s, e, lowered.get(value.lower(), "ID"), 1.0, "known"))
    return out


@lru_cache(maxsize=32)
def _cached(pack: str, key: DeidKey | None, mode: str | None) -> Scrubber:
    return Scrubber(pack, key, mode=mode)


def scrub_text(
    text: str,
    *,
    lang: str = "auto",
    pack: str | RulePack = DEFAULT_PACK,
    key: DeidKey | None = None,
    mode: str | None = None,
    patient_id: str | None = None,
) -> ScrubResult:
    """Scrub one note. See `Scrubber` for the arguments; scrubbers for named packs are reused."""
    scrubber = _cached(pack, key, mode) if isinstance(pack, str) else Scrubber(pack, key, mode=mode)
    return scrubber.scrub(text, lang=lang, patient_id=patient_id)


def find_phi(text: str, *, lang: str = "auto") -> list[Span]:
    """PHI spans in `text` (types and positions) without replacing anything."""
    return _cached(DEFAULT_PACK, None, "tag").find(text, lang=lang)
