"""Phone and address as evidence for or against a fuzzy match (Fellegi–Sunter, two fields).

The CLK of name, birth date and sex cannot tell a one-character typo in a two-character
Han name from a different person born the same day with a name one character apart: both
score the same Dice coefficient. Fields outside the CLK can. A phone number or a street
address that two records share is strong evidence of one person (few people share them:
in Fellegi–Sunter terms u, the chance that two different people agree, is tiny, so the
agreement weight log(m/u) is large). A different phone or address is weaker evidence
against (people move and change numbers: 1 - m is not tiny), but still evidence.

The weights are not symmetric. A phone number normalises reliably (digits only, the last
ten), so two records of one person rarely show different numbers unless it changed. A street
line is free text that clerks write differently ("Apt 3" / "#3", a building name or not), so
a differing address token is weak evidence: people move, and formatting differs. Hence:

- a phone both sides have that agrees, or an address that agrees: corroborated, kept;
- a phone both sides have that differs, with no agreeing address: contradicted, dropped;
- anything else (a field missing on either side, an address that differs with no phone to
  compare): no evidence, the Dice coefficient decides as before.

Measured on the synthetic hospitals (docs/linkage.md): this keeps every true pair,
including a person who moved (the phone still agrees) and one whose phone is missing at one
hospital (nothing to contradict), and drops every different person with the same birth date
and a name one character away at the default threshold. What it cannot see: a person who
changed phone number and moved, or changed number and has no address on one side.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

Field = Literal["agree", "differ", "missing"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the phone and address tokens of a probe and a candidate say."""

    phone: Field
    address: Field

    @property
    def contradicted(self) -> bool:
        """True when the phones differ and the address does not agree: a different person."""
        return self.phone == "differ" and self.address != "agree"


def _compare(mine: bytes | None, theirs: bytes | None) -> Field:
    if mine is None or theirs is None:
        return "missing"
    return "agree" if hmac.compare_digest(mine, theirs) else "differ"


def weigh(
    phone: tuple[bytes | None, bytes | None],
    address: tuple[bytes | None, bytes | None],
) -> Evidence:
    """Compare the probe's and the candidate's phone tokens, then their address tokens
    (each pair: probe first); a token missing on either side says nothing."""
    return Evidence(_compare(*phone), _compare(*address))
