"""A node's standing policy file (`DIR/policy.json`) and its pin of the hub's keys
(`DIR/hub-pin.json`).

No policy file means an empty policy, which allows nothing (deny by default): a steward
writes one with `medspace node policy` (`save_node_policy`) before the node runs tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medspace.node.errors import NodeConfigError
from medspace.node.keys import atomic_write
from medspace.policy import Consent, NodePolicy, ProjectError

POLICY_FILE = "policy.json"
CONSENT_FILE = "consent.json"
PIN_FILE = "hub-pin.json"


def load_node_policy(directory: Path, node: str) -> NodePolicy:
    """The node's standing policy; an empty (deny-all) one when no file exists.
    Raises `NodeConfigError` for a damaged file or one naming another node."""
    path = Path(directory) / POLICY_FILE
    if not path.exists():
        return NodePolicy(node=node)
    try:
        policy = NodePolicy.parse(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ProjectError) as exc:
        raise NodeConfigError(f"{path} is not a valid standing policy ({exc}); fix it") from None
    if policy.node != node:
        raise NodeConfigError(f"{path} is the policy of another node; write this node's own")
    return policy


def save_node_policy(directory: Path, policy: NodePolicy) -> None:
    """Write the node's standing policy (atomically, mode 0600)."""
    data = json.dumps(policy.model_dump(mode="json"), indent=2, sort_keys=True)
    atomic_write(Path(directory) / POLICY_FILE, data.encode() + b"\n")


def load_consent(directory: Path) -> Consent:
    """The node's patient opt-outs (`consent.json`: pseudonym -> purposes); none when the
    file is absent. Raises `NodeConfigError` for a damaged file."""
    path = Path(directory) / CONSENT_FILE
    if not path.exists():
        return Consent()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        return Consent(doc)
    except (ValueError, TypeError, ProjectError) as exc:
        raise NodeConfigError(f"{path} is not a valid consent file ({exc}); fix it") from None


def save_consent(directory: Path, consent: dict[str, list[str]]) -> None:
    """Write the node's opt-outs (pseudonym -> purposes), checked first."""
    Consent(consent)
    atomic_write(Path(directory) / CONSENT_FILE, json.dumps(consent, indent=2).encode() + b"\n")


@dataclass(frozen=True, slots=True)
class HubPin:
    """The hub keys a node saw on its first connection and trusts from then on."""

    origin: str
    hub_key: str
    log_key: str


def read_pin(directory: Path) -> HubPin | None:
    """The pinned hub keys, or None before the first connection."""
    path = Path(directory) / PIN_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return HubPin(str(doc["origin"]), str(doc["hub_key"]), str(doc["log_key"]))
    except (ValueError, KeyError, TypeError):
        raise NodeConfigError(f"{path} is damaged; restore it (or remove it to re-pin)") from None


def write_pin(directory: Path, pin: HubPin) -> None:
    """Pin the hub's keys."""
    doc = {"origin": pin.origin, "hub_key": pin.hub_key, "log_key": pin.log_key}
    atomic_write(Path(directory) / PIN_FILE, json.dumps(doc, indent=2).encode() + b"\n")
