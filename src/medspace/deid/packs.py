"""Rule packs: what to do with each kind of identifier, as data (YAML) read into a value.

Built-in packs live in `medspace/deid/packs/*.yaml` and are registered by name
(`hipaa-safe-harbor`, `pipl`, `gdpr-pseudonymise`); `register_pack` adds a site's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from medspace.deid.errors import PackError, UnknownPackError
from medspace.deid.spans import ENTITY_TYPES

TEXT_MODES = ("tag", "surrogate", "pseudonym")
TEXT_ACTIONS = ("replace", "keep", "year", "shift", "top-code")
DATE_MODES = ("year", "shift", "keep")
FIELD_ACTIONS = ("keep", "remove", "token", "pseudonym", "zip3")
ID_ACTIONS = ("token", "pseudonym", "keep")
IDENTITY_FIELDS = (
    "family_name",
    "given_name",
    "national_id",
    "national_id_system",
    "mrn",
    "phone",
    "email",
    "address.line",
    "address.district",
    "address.city",
    "address.state",
    "address.postal_code",
    "address.country",
)
DEFAULT_PACK = "hipaa-safe-harbor"


@dataclass(frozen=True)
class IdentifierRule:
    """One identifier class of the regulation and where the engine handles it (documentation)."""

    code: str
    what: str
    handled: str


@dataclass(frozen=True)
class RulePack:
    """A named set of de-identification rules. Build with `RulePack.from_mapping`."""

    name: str
    title: str
    text_mode: str
    text_entities: Mapping[str, str]
    dates: str
    birth_date: str
    shift_max_days: int
    age_top_code: int | None
    record_ids: str
    identity: Mapping[str, str]
    zip_min_level: int
    restricted_zip3: frozenset[str] = frozenset()
    identifiers: tuple[IdentifierRule, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def text_action(self, entity: str) -> str:
        """What free-text scrubbing does with `entity` (unlisted types are replaced)."""
        return self.text_entities.get(entity, "replace")

    def text_needs_key(self, text_mode: str | None = None) -> bool:
        """True when scrubbing text with this pack needs a `DeidKey` (surrogates, pseudonyms,
        shifted dates)."""
        mode = text_mode or self.text_mode
        return mode in ("surrogate", "pseudonym") or "shift" in self.text_entities.values()

    def records_need_key(self) -> bool:
        """True when de-identifying records or FHIR resources needs a `DeidKey`."""
        return (
            self.text_needs_key()
            or "shift" in (self.dates, self.birth_date)
            or self.record_ids != "keep"
            or any(a in ("token", "pseudonym") for a in self.identity.values())
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "pack") -> RulePack:
        """Validate a parsed YAML mapping. Raises `PackError` naming the bad key."""

        def need(key: str) -> Any:
            if key not in data:
                raise PackError(
                    f"{origin}: the rule pack has no '{key}'; add it (see docs/deid.md)"
                )
            return data[key]

        def one_of(value: Any, allowed: tuple[str, ...], where: str) -> str:
            if value not in allowed:
                raise PackError(f"{origin}: {where} must be one of {', '.join(allowed)}")
            return str(value)

        text = need("text")
        if not isinstance(text, Mapping):
            raise PackError(f"{origin}: 'text' must be a mapping with 'replace' and 'entities'")
        entities = dict(text.get("entities") or {})
        for entity, action in entities.items():
            if entity not in ENTITY_TYPES:
                raise PackError(f"{origin}: text.entities has unknown type {entity!r}")
            one_of(action, TEXT_ACTIONS, f"text.entities.{entity}")
        identity = dict(need("identity"))
        for key, action in identity.items():
            if key not in IDENTITY_FIELDS:
                raise PackError(f"{origin}: identity has unknown field {key!r}")
            one_of(action, FIELD_ACTIONS, f"identity.{key}")
        dates = one_of(need("dates"), DATE_MODES, "dates")
        table = dict(data.get("table") or {})
        top = data.get("age_top_code")
        rules = tuple(
            IdentifierRule(str(r["code"]), str(r["what"]), str(r["handled"]))
            for r in data.get("identifiers") or ()
        )
        try:
            shift = int(data.get("shift_max_days", 365))
            zip_min = int(table.get("zip_min_level", 0))
        except (TypeError, ValueError):
            raise PackError(
                f"{origin}: shift_max_days and table.zip_min_level are whole numbers"
            ) from None
        if shift < 1:
            raise PackError(f"{origin}: shift_max_days must be at least 1")
        return cls(
            name=str(need("name")),
            title=str(data.get("title", data["name"])),
            text_mode=one_of(text.get("replace", "tag"), TEXT_MODES, "text.replace"),
            text_entities=MappingProxyType(entities),
            dates=dates,
            birth_date=one_of(data.get("birth_date", dates), DATE_MODES, "birth_date"),
            shift_max_days=shift,
            age_top_code=None if top is None else int(top),
            record_ids=one_of(data.get("record_ids", "token"), ID_ACTIONS, "record_ids"),
            identity=MappingProxyType(identity),
            zip_min_level=zip_min,
            restricted_zip3=frozenset(str(z) for z in data.get("restricted_zip3") or ()),
            identifiers=rules,
            extra=MappingProxyType({k: v for k, v in data.items() if k not in _KNOWN_KEYS}),
        )


_KNOWN_KEYS = {
    "name", "title", "text", "dates", "birth_date", "shift_max_days", "age_top_code", "record_ids",
    "identity", "table", "restricted_zip3", "identifiers",
}  # fmt: skip

# libyaml's safe loader when present (10x faster), else the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PACKS: dict[str, RulePack] = {}
_BUILTINS_LOADED = False


def load_pack(path: Path) -> RulePack:
    """Read a rule pack from a YAML file. Raises `PackError` if it is malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise PackError(f"cannot read rule pack file {path.name}; check the path") from None
    except yaml.YAMLError:
        raise PackError(f"rule pack file {path.name} is not valid YAML") from None
    if not isinstance(data, Mapping):
        raise PackError(f"rule pack file {path.name} must hold a mapping")
    return RulePack.from_mapping(data, origin=path.name)


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    folder = resources.files("medspace.deid").joinpath("packs")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = yaml.load(entry.read_text(encoding="utf-8"), Loader=_LOADER)
            pack = RulePack.from_mapping(data, origin=entry.name)
            _PACKS.setdefault(pack.name, pack)
    _BUILTINS_LOADED = True


def register_pack(pack: RulePack) -> None:
    """Register a pack under its name (replacing one of the same name)."""
    _load_builtins()
    _PACKS[pack.name] = pack


def get_pack(pack: str | RulePack) -> RulePack:
    """The registered pack of that name (a `RulePack` is returned as is)."""
    if isinstance(pack, RulePack):
        return pack
    _load_builtins()
    try:
        return _PACKS[pack]
    except KeyError:
        raise UnknownPackError(
            f"unknown rule pack {pack!r}; choose one of {', '.join(sorted(_PACKS))}"
        ) from None


def pack_names() -> list[str]:
    """Names of all registered packs, sorted."""
    _load_builtins()
    return sorted(_PACKS)
