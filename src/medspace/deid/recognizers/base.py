"""The recogniser extension point, its registry, and shared pattern helpers.

A recogniser finds one or more kinds of PHI in *folded* text (see `medspace.deid.normalise`):
full-width forms and foreign digits are already ASCII, and offsets equal the original's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any, Protocol

from medspace.deid.spans import Span


class Recognizer(Protocol):
    """Finds PHI spans in folded text. `languages` says which scripts it reads ("zh", "en")."""

    name: str
    languages: frozenset[str]

    def find(self, text: str) -> list[Span]:
        """Return every PHI span found; overlaps are resolved later by the scrubber."""
        ...


_REGISTRY: dict[str, Recognizer] = {}


def register(recognizer: Recognizer) -> Recognizer:
    """Add a recogniser under its declared name (a second one with the same name replaces it)."""
    _REGISTRY[recognizer.name] = recognizer
    return recognizer


def registered() -> dict[str, Recognizer]:
    """All registered recognisers by name."""
    return dict(_REGISTRY)


def recognizers_for(languages: Iterable[str]) -> list[Recognizer]:
    """The registered recognisers that read any of `languages`, in registration order."""
    wanted = set(languages)
    return [r for r in _REGISTRY.values() if r.languages & wanted]


@cache
def wordlist(name: str) -> frozenset[str]:
    """Words of a packaged list in `medspace/deid/data/` (whitespace-separated, '#' comments)."""
    text = (
        resources.files("medspace.deid").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    )
    words: set[str] = set()
    for line in text.splitlines():
        words.update(line.split("#", 1)[0].split())
    return frozenset(words)


def words(text: str) -> tuple[str, ...]:
    """Split a whitespace-separated word list written in code."""
    return tuple(text.split())


def alternation(phrases: Iterable[str]) -> str:
    """A regex matching any of `phrases` literally, longest first, built as a trie.

    The trie matters for speed: at each position the engine compares one character per
    distinct first letter instead of trying every phrase in turn.
    """
    trie: dict[str, Any] = {}
    for phrase in set(phrases):
        if not phrase:
            continue
        node = trie
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _trie_regex(trie) or "(?!)"


def _trie_regex(node: dict[str, Any]) -> str:
    ends_here = "" in node
    leaves = sorted(ch for ch, child in node.items() if ch and set(child) == {""})
    inner = sorted((ch, child) for ch, child in node.items() if ch and set(child) != {""})
    branches = [re.escape(ch) + _trie_regex(child) for ch, child in inner]
    if len(leaves) == 1:
        branches.append(re.escape(leaves[0]))
    elif leaves:
        branches.append("[" + "".join(re.escape(ch) for ch in leaves) + "]")
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends_here:
        return ("(?:" + body + ")?") if len(branches) == 1 and len(body) > 1 else body + "?"
    return body


def occurrences(text: str, value: str) -> Iterator[int]:
    """Start of every occurrence of `value` in `text` (str.find: no pattern to compile)."""
    start = text.find(value)
    while start >= 0:
        yield start
        start = text.find(value, start + 1)


Validator = Callable[[re.Match[str]], bool]


class PatternRecognizer:
    """A recogniser made of regular expressions, each with a type, score and optional check.

    `group` picks the capturing group that is the PHI (0: the whole match), so context words
    can be matched without being scrubbed. `not_after` is a character class the match must
    not follow (a word boundary): it is checked here rather than as a leading look-behind,
    because a pattern that starts with a plain character lets the regex engine skip ahead
    to candidate positions, which is most of the recognisers' speed. A match that fails
    `not_after` or `check` is retried one character later, so no overlapping find is lost.
    """

    def __init__(self, name: str, languages: Iterable[str]) -> None:
        self.name = name
        self.languages = frozenset(languages)
        self._patterns: list[
            tuple[
                re.Pattern[str],
                str,
                float,
                int,
                Validator | None,
                re.Pattern[str] | None,
                tuple[str, ...],
            ]
        ] = []

    def add(
        self,
        pattern: str,
        type_: str,
        *,
        score: float = 0.9,
        group: int | str = 0,
        check: Validator | None = None,
        not_after: str | None = None,
        needs: tuple[str, ...] = (),
        flags: int = 0,
    ) -> PatternRecognizer:
        """Add one pattern; returns self so patterns chain. `needs` lists substrings of which
        the text must hold at least one for the pattern to be tried (a cheap gate)."""
        compiled = re.compile(pattern, flags)
        index = compiled.groupindex[group] if isinstance(group, str) else group
        before = re.compile(not_after) if not_after else None
        self._patterns.append((compiled, type_, score, index, check, before, needs))
        return self

    def find(self, text: str) -> list[Span]:
        """Every match of every pattern that passes its boundary and check."""
        out: list[Span] = []
        for pattern, type_, score, group, check, before, needs in self._patterns:
            if needs and not any(n in text for n in needs):
                continue
            search = pattern.search
            pos = 0
            while (m := search(text, pos)) is not None:
                s = m.start()
                if (before is not None and s > 0 and before.match(text, s - 1)) or (
                    check is not None and not check(m)
                ):
                    pos = s + 1
                    continue
                start, end = m.span(group)
                if end > start:
                    out.append(Span(start, end, type_, score, self.name))
                pos = m.end() if m.end() > s else s + 1
        return out
