"""Length-preserving normalisation so one set of patterns sees one form of each character.

Full-width ASCII (ＡＢＣ１２３：，), the ideographic space, every Unicode decimal digit and
the dash family map to plain ASCII, one code point to one code point. Offsets found in
the normalised text are therefore offsets in the original text, and the original is what
gets replaced.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in range(0xFF01, 0xFF5F):  # full-width forms of U+0021..U+007E
        table[cp] = chr(cp - 0xFEE0)
    table[0x3000] = " "
    table[0x00A0] = " "
    for cp in range(0x0660, 0x10000):
        ch = chr(cp)
        if cp not in table and unicodedata.category(ch) == "Nd":
            table[cp] = str(unicodedata.decimal(ch))
    for ch in _DASHES:
        table[ord(ch)] = "-"
    return table


def fold(text: str) -> str:
    """Return `text` with full-width forms, foreign digits and dashes made ASCII.

    The result has exactly the same length as `text`.
    """
    return text.translate(_table())
