"""The cohort definition the count query understands, parsed from a project's `cohort`.

Two shapes (JSON, in the project's terms):

    {"all_patients": true}
    {"condition_codes": ["E11", "I10"], "code_system": "ICD-10"}   # code_system optional

`condition_codes` are code prefixes: "E11" matches E11, E11.9, ... A patient is in the
cohort if they have at least one matching condition. The variable a count touches is
`person.id` for all patients and `condition.code` otherwise; the project must allow it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from medspace.errors import UsageError

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,31}")
_SYSTEM = re.compile(r"[A-Za-z][A-Za-z0-9 .:/\-]{0,63}")
MAX_CODES = 200


class CohortError(UsageError):
    """A project's cohort is not one the count query understands."""


@dataclass(frozen=True, slots=True)
class CountCohort:
    """Who is counted: patients with a condition code starting with one of `prefixes`."""

    prefixes: tuple[str, ...] = ()
    code_system: str | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        """The project variables a count over this cohort touches."""
        return ("condition.code",) if self.prefixes else ("person.id",)


def parse_cohort(cohort: dict[str, Any]) -> CountCohort:
    """Parse a project's cohort; raises `CohortError` saying which shape to use."""
    if cohort == {"all_patients": True}:
        return CountCohort()
    keys = set(cohort)
    if not keys or not keys <= {"condition_codes", "code_system"} or "condition_codes" not in keys:
        raise CohortError(
            'the count query needs a cohort {"all_patients": true} or {"condition_codes": '
            '[...], "code_system": "ICD-10"}; file a project with one of these'
        )
    codes = cohort["condition_codes"]
    if (
        not isinstance(codes, list)
        or not 0 < len(codes) <= MAX_CODES
        or not all(isinstance(c, str) and _CODE.fullmatch(c) for c in codes)
    ):
        raise CohortError(
            f"cohort condition_codes must be 1 to {MAX_CODES} code prefixes such as E11 or I10"
        )
    system = cohort.get("code_system")
    if system is not None and (not isinstance(system, str) or not _SYSTEM.fullmatch(system)):
        raise CohortError("cohort code_system must be a code system name such as ICD-10")
    return CountCohort(tuple(sorted(set(codes))), system)
