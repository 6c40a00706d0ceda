"""Emergency cross-hospital lookup with break-glass (issue 5).

A clinician at one node asks every node for a patient's history. Linkage tokens (from
`medspace.linkage`) travel instead of the identity; each node answers with a
minimum-necessary summary sealed to the asking node's X25519 key, so the hub routes only
ciphertext; every lookup, match, answer and view is ledgered on both sides without the
patient; each node keeps its own lookup log for the steward's review of break-glass
events and for unusual-use alerts. See docs/lookup.md.

Public API (other components use only these):

- `ask(node, hub_client, clinician=, patient=PatientInput, reason=, break_glass=,
  deadline=) -> LookupOutcome` — the asking side (CLI and node API);
- `LookupResponder(node, hub_key).handle(body) -> reply` — the answering side, which the
  node service calls for channel requests of type "lookup";
- `render(console, outcome)` / `merged(outcome)` — the merged timeline;
- `LookupLog` — the node's lookup log (review, flags, alerts).
"""

from medspace.lookup.ask import LookupOutcome, NodeAnswer, PatientInput, ask
from medspace.lookup.errors import (
    EmergencyLookupError,
    LookupDenied,
    LookupInputError,
    LookupLogError,
    RequestRejected,
    ReviewError,
    SealError,
)
from medspace.lookup.responder import LookupResponder
from medspace.lookup.review import LookupLog
from medspace.lookup.timeline import merged, render

__all__ = [
    "EmergencyLookupError",
    "LookupDenied",
    "LookupInputError",
    "LookupLog",
    "LookupLogError",
    "LookupOutcome",
    "LookupResponder",
    "NodeAnswer",
    "PatientInput",
    "RequestRejected",
    "ReviewError",
    "SealError",
    "ask",
    "merged",
    "render",
]
