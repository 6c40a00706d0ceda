"""What a node does to anything it shares (`DIR/sharing.json`) and its de-identification
key (`DIR/deid.key`, 0600, kept in the node directory and never in the database).

No sharing file means the safe default: the `hipaa-safe-harbor` pack with notes scrubbed.
Nothing is ever shared in the clear.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from medspace.deid import DeidKey, pack_names
from medspace.node.errors import NodeConfigError
from medspace.node.keys import atomic_write, check_private

SHARING_FILE = "sharing.json"
DEID_KEY_FILE = "deid.key"
DEFAULT_SHARING_PACK = "hipaa-safe-harbor"
#: The packs a node may share under.
SHARING_PACKS = ("hipaa-safe-harbor", "pipl", "gdpr-pseudonymise")


@dataclass(frozen=True, slots=True)
class SharingConfig:
    """The rule pack a node shares under, and whether note text is scrubbed.

    `scrub_notes=False` leaves notes out of extracts (their text is never shared
    unscrubbed).
    """

    pack: str = DEFAULT_SHARING_PACK
    scrub_notes: bool = True

    def __post_init__(self) -> None:
        if self.pack not in SHARING_PACKS or self.pack not in pack_names():
            raise NodeConfigError(
                f"unknown sharing pack {self.pack!r}: use one of {', '.join(SHARING_PACKS)}"
            )
        if not isinstance(self.scrub_notes, bool):
            raise NodeConfigError("scrub_notes in sharing.json must be true or false")


def load_sharing(directory: Path) -> SharingConfig:
    """The node's sharing configuration; the safe default when `sharing.json` is absent.

    Raises `NodeConfigError` for a damaged file or an unknown pack.
    """
    path = Path(directory) / SHARING_FILE
    if not path.exists():
        return SharingConfig()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NodeConfigError(
            f"{path} is not valid JSON ({type(exc).__name__}): fix it or delete it to use "
            f"the default ({DEFAULT_SHARING_PACK}, notes scrubbed)"
        ) from None
    if not isinstance(doc, dict) or set(doc) - {"pack", "scrub_notes"}:
        raise NodeConfigError(
            f"{path} must be an object with only 'pack' and 'scrub_notes': fix it"
        )
    return SharingConfig(
        pack=doc.get("pack", DEFAULT_SHARING_PACK), scrub_notes=doc.get("scrub_notes", True)
    )


def save_sharing(directory: Path, config: SharingConfig) -> None:
    """Write the node's sharing configuration (atomically, mode 0600)."""
    doc = {"pack": config.pack, "scrub_notes": config.scrub_notes}
    atomic_write(Path(directory) / SHARING_FILE, json.dumps(doc, indent=2).encode() + b"\n")


def deid_key(directory: Path) -> DeidKey:
    """The node's de-identification key, created (0600) on first use.

    Raises `UnsafeKeyFileError` when the key file is readable by others.
    """
    path = Path(directory) / DEID_KEY_FILE
    if not path.exists():
        with suppress(FileExistsError):  # another process created it first: use theirs
            DeidKey.generate().write(path)
    check_private(path)
    return DeidKey.from_file(path)
