"""Patient consent: opt-outs by pseudonym, per purpose of use.

Consent is held at the node that knows the patient; pseudonyms are the node store's keyed
pseudonyms, never direct identifiers. Nothing here puts a pseudonym in a message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from medspace.policy.errors import ProjectError
from medspace.policy.purposes import Purpose

_MAX_PSEUDONYM = 256


def _check_pseudonym(pseudonym: str) -> str:
    if (
        not isinstance(pseudonym, str)
        or not 0 < len(pseudonym) <= _MAX_PSEUDONYM
        or not pseudonym.isascii()
        or not pseudonym.isprintable()
        or " " in pseudonym
    ):
        raise ProjectError(
            "consent needs pseudonyms as printable ASCII without spaces (at most 256 "
            "characters); pass the store's pseudonym, not a patient identifier"
        )
    return pseudonym


class Consent:
    """An immutable set of opt-outs: which pseudonymous patients refused which purposes."""

    __slots__ = ("_opt_outs",)

    def __init__(self, opt_outs: Mapping[str, Iterable[Purpose | str]] | None = None) -> None:
        frozen: dict[str, frozenset[Purpose]] = {}
        for pseudonym, purposes in (opt_outs or {}).items():
            try:
                chosen = frozenset(Purpose(p) for p in purposes)
            except ValueError:
                raise ProjectError(
                    "consent names an unknown purpose; use HL7 ActReason codes such as HRESCH"
                ) from None
            if chosen:
                frozen[_check_pseudonym(pseudonym)] = chosen
        self._opt_outs = MappingProxyType(frozen)

    def opted_out(self, pseudonym: str, purpose: Purpose) -> bool:
        """True if the patient behind `pseudonym` refused use for `purpose`."""
        return purpose in self._opt_outs.get(pseudonym, frozenset())

    def excluded(self, purpose: Purpose) -> frozenset[str]:
        """Pseudonyms a computation for `purpose` must leave out."""
        return frozenset(p for p, refused in self._opt_outs.items() if purpose in refused)

    def with_opt_out(self, pseudonym: str, purposes: Iterable[Purpose | str]) -> Consent:
        """A new `Consent` with `pseudonym` also opted out of `purposes`."""
        merged: dict[str, set[Purpose | str]] = {p: set(r) for p, r in self._opt_outs.items()}
        merged.setdefault(_check_pseudonym(pseudonym), set()).update(purposes)
        return Consent(merged)

    def without_opt_out(self, pseudonym: str, purposes: Iterable[Purpose | str]) -> Consent:
        """A new `Consent` with `pseudonym`'s opt-out of `purposes` withdrawn."""
        merged: dict[str, set[Purpose | str]] = {p: set(r) for p, r in self._opt_outs.items()}
        merged.get(pseudonym, set()).difference_update(purposes)
        return Consent(merged)

    def to_document(self) -> dict[str, list[str]]:
        """The opt-outs as `consent.json` keeps them: pseudonym -> sorted purpose codes."""
        return {p: sorted(r.value for r in refused) for p, refused in self._opt_outs.items()}

    def __len__(self) -> int:
        return len(self._opt_outs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Consent) and self._opt_outs == other._opt_outs

    def __hash__(self) -> int:
        return hash(frozenset(self._opt_outs.items()))

    def __repr__(self) -> str:
        # Counts only: a repr can end up in a log.
        return f"Consent(<{len(self._opt_outs)} patients with opt-outs>)"
