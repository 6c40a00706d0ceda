"""A node's standing policy: the rules its steward sets once for every project and lookup."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medspace.identity import IdentityError, check_node_name
from medspace.policy._validation import parse
from medspace.policy.project import ComputationKind
from medspace.policy.purposes import Purpose


class NodePolicy(BaseModel):
    """What one node allows, whatever a project says.

    Empty sets allow nothing (deny by default). `min_cell_floor` is the smallest cell size
    this node ever releases: a project's own minimum is raised to it, never lowered.
    `break_glass_allowed` lets clinicians use purpose BTG at this node (reviewed later).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    min_cell_floor: int = Field(default=10, ge=1, le=100_000)
    allowed_purposes: frozenset[Purpose] = frozenset()
    allowed_computations: frozenset[ComputationKind] = frozenset()
    break_glass_allowed: bool = False

    @classmethod
    def parse(cls, data: Any) -> NodePolicy:
        """Validate untrusted input (a node's config file); raises `ProjectError`."""
        return parse(cls, data, "node policy")

    @field_validator("node")
    @classmethod
    def _node_name(cls, node: str) -> str:
        try:
            return check_node_name(node)
        except IdentityError as exc:
            raise ValueError(str(exc)) from None

    def effective_min_cell_size(self, project_minimum: int) -> int:
        """The cell size this node enforces for a project: never below its own floor."""
        return max(project_minimum, self.min_cell_floor)
