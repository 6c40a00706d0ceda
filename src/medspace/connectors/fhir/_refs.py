"""FHIR reference resolution: `Patient/123`, absolute URLs, and Bundle-local `urn:uuid:`.

Inside a Bundle, `urn:uuid:` references point at another entry's `fullUrl`; that entry's
resource may carry an `id` unrelated to the uuid (or none, in which case the uuid is its
id). Only Patient, Encounter and Medication entries are registered (the only reference
targets the mapping uses), so memory grows with patients and encounters, not resources.
A reference to an entry further down the Bundle raises `ReferencePending`; the Bundle
reader holds that entry back until the target has been seen or the Bundle ends.
"""

from __future__ import annotations

from medspace.connectors._unit import UnitRejected
from medspace.connectors.fhir._values import Json, check_id, concept_to_code, get_str
from medspace.model import Code

#: Resource types that other resources point at and the mapping needs to resolve.
TARGET_TYPES = frozenset({"Patient", "Encounter", "Medication"})


class ReferencePending(Exception):
    """A Bundle-local reference whose target entry has not been read yet."""


def split_reference(ref: str) -> tuple[str, str] | None:
    """(type, id) of a relative or absolute literal reference, ignoring `_history/v`."""
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return None
    return parts[-2], parts[-1]


class References:
    """Resolves references for one input file (an NDJSON file or one Bundle)."""

    __slots__ = ("_seen", "final", "in_bundle", "medications", "targets")

    #: Resolved literal references kept for reuse (exports repeat the same patient and
    #: encounter references); cleared when full so memory stays bounded.
    CACHE_SIZE = 1024

    def __init__(self, in_bundle: bool) -> None:
        self.in_bundle = in_bundle
        #: While False, an unresolved Bundle-local reference may still be resolved later.
        self.final = not in_bundle
        self.targets: dict[str, tuple[str, str]] = {}
        self.medications: dict[str, Code] = {}
        self._seen: dict[str, tuple[str, str]] = {}

    def register(self, full_url: str, rtype: str, rid: str) -> None:
        """Record a Bundle entry that references may point at."""
        self.targets[full_url] = (rtype, rid)
        if rtype != "Medication":
            self.targets[f"{rtype}/{rid}"] = (rtype, rid)

    def register_medication(self, full_url: str | None, rid: str | None, code: Code) -> None:
        """Record a Bundle Medication's code for `medicationReference`s."""
        if full_url:
            self.medications[full_url] = code
        if rid:
            self.medications[f"Medication/{rid}"] = code

    def _unresolved(self, path: str, what: str) -> ReferencePending | UnitRejected:
        if self.in_bundle and not self.final:
            return ReferencePending(path)
        if self.in_bundle:
            return UnitRejected(f"{path}.reference: does not resolve to a {what} in this Bundle")
        return UnitRejected(
            f"{path}.reference: a Bundle-local reference cannot be resolved in NDJSON; "
            "export with literal references (Type/id)"
        )

    def resolve(self, ref_obj: object, path: str, expected: str, required: bool) -> str | None:
        """The id of the `expected`-type resource `ref_obj` points at.

        Returns None for an absent optional reference, or one to another type when not
        required (an Encounter reference that is an EpisodeOfCare). Raises `UnitRejected`
        for a malformed or unusable reference and `ReferencePending` for a forward one.
        """
        if ref_obj is None:
            if required:
                raise UnitRejected(f"{path}: required")
            return None
        if not isinstance(ref_obj, dict):
            raise UnitRejected(f"{path}: must be a Reference object")
        ref = get_str(ref_obj, "reference", path)
        if not ref:
            if required:
                raise UnitRejected(
                    f"{path}.reference: required (logical references are not mapped)"
                )
            return None
        target = self._seen.get(ref)
        if target is None:
            target = self._target(ref, path, expected)
            if len(self._seen) >= self.CACHE_SIZE:
                self._seen.clear()
            self._seen[ref] = target
        if target[0] != expected:
            if required:
                raise UnitRejected(f"{path}.reference: must point to a {expected}")
            return None
        return target[1]

    def _target(self, ref: str, path: str, expected: str) -> tuple[str, str]:
        """(type, valid id) a literal or Bundle-local reference points at."""
        if ref.startswith("#"):
            raise UnitRejected(f"{path}.reference: contained resources cannot be a {expected}")
        if "?" in ref:
            raise UnitRejected(f"{path}.reference: conditional references are not supported")
        target = self.targets.get(ref)
        if target is None:
            if ref.startswith("urn:"):
                raise self._unresolved(path, expected)
            target = split_reference(ref)
            if target is None:
                raise UnitRejected(f"{path}.reference: not of the form Type/id")
        return target[0], check_id(target[1], f"{path}.reference id")

    def medication(self, ref_obj: object, resource: Json, path: str, flags: list[str]) -> Code:
        """The code of the Medication a `medicationReference` points at: contained (#id) or
        another Bundle entry."""
        if not isinstance(ref_obj, dict):
            raise UnitRejected(f"{path}: must be a Reference object")
        ref = get_str(ref_obj, "reference", path)
        if not ref:
            raise UnitRejected(f"{path}.reference: required")
        if ref.startswith("#"):
            for i, contained in enumerate(resource.get("contained") or ()):
                if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                    if contained.get("resourceType") != "Medication":
                        raise UnitRejected(f"{path}.reference: must point to a Medication")
                    return concept_to_code(contained.get("code"), f"contained[{i}].code", flags)
            raise UnitRejected(f"{path}.reference: no contained resource with that id")
        code = self.medications.get(ref)
        if code is None:
            parts = split_reference(ref)
            if parts is not None and not ref.startswith("urn:"):
                code = self.medications.get(f"{parts[0]}/{parts[1]}")
        if code is None:
            if self.in_bundle and not self.final:
                raise ReferencePending(path)
            raise UnitRejected(
                f"{path}.reference: the Medication is not in this file; send "
                "medicationCodeableConcept or a contained Medication"
            )
        return code
