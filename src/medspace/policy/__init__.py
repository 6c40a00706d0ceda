"""Policy: projects (data-use agreements), node standing policy, consent, and `decide()`.

Other components use only what is listed in `__all__`.
"""

from medspace.policy.book import ProjectBook
from medspace.policy.consent import Consent
from medspace.policy.decision import (
    Context,
    Decision,
    DecisionRecord,
    DecisionRecorder,
    LookupRequest,
    MemoryRecorder,
    Obligation,
    TaskRequest,
)
from medspace.policy.engine import PolicyEngine, UnsafeAllowAllForTests, decide
from medspace.policy.errors import (
    ConcurrentUpdateError,
    PolicyDenied,
    PolicyError,
    ProjectError,
    RecordError,
    UnknownProjectError,
)
from medspace.policy.lifecycle import (
    NodeVerdict,
    ProjectState,
    ProjectStatus,
    Refusal,
    Revocation,
    Verdict,
)
from medspace.policy.project import (
    CONTRACT_VERSION,
    Disclosure,
    Project,
    contract_bytes,
    contract_hash,
)
from medspace.policy.purposes import LOOKUP_PURPOSES, PROJECT_PURPOSES, Purpose
from medspace.policy.registry import DEFAULT_RULES, RuleRegistry
from medspace.policy.standing import NodePolicy

__all__ = [
    "CONTRACT_VERSION",
    "DEFAULT_RULES",
    "LOOKUP_PURPOSES",
    "PROJECT_PURPOSES",
    "ConcurrentUpdateError",
    "Consent",
    "Context",
    "Decision",
    "DecisionRecord",
    "DecisionRecorder",
    "Disclosure",
    "LookupRequest",
    "MemoryRecorder",
    "NodePolicy",
    "NodeVerdict",
    "Obligation",
    "PolicyDenied",
    "PolicyEngine",
    "PolicyError",
    "Project",
    "ProjectBook",
    "ProjectError",
    "ProjectState",
    "ProjectStatus",
    "Purpose",
    "RecordError",
    "Refusal",
    "Revocation",
    "RuleRegistry",
    "TaskRequest",
    "UnknownProjectError",
    "UnsafeAllowAllForTests",
    "Verdict",
    "contract_bytes",
    "contract_hash",
    "decide",
]
