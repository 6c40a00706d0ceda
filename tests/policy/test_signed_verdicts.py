"""The signed entry a steward or owner made travels with the verdict or revocation it
caused, survives the project book's JSON round trip, and cannot be arbitrary text."""

from __future__ import annotations

import base64

import pytest

from medspace.policy import ProjectError, ProjectState

from ._data import ALICE, T0, WANG

SIGNED = base64.b64encode(b'{"entry":{},"key":"k","sig":"s"}').decode()


def test_the_signed_approval_and_withdrawal_are_kept(requested: ProjectState) -> None:
    approved = requested.approve(WANG, WANG.node or "", "ethics ok", T0, entry=SIGNED)
    verdict = approved.verdict(WANG.node or "")
    assert verdict is not None and verdict.entry == SIGNED
    withdrawn = approved.withdraw(WANG, WANG.node or "", "consent issue", T0, entry=SIGNED)
    again = ProjectState.parse_json(withdrawn.model_dump_json())
    kept = again.verdict(WANG.node or "")
    assert kept is not None and kept.entry == SIGNED


def test_the_signed_revocation_is_kept(requested: ProjectState) -> None:
    revoked = requested.revoke(ALICE, "study stopped", T0, entry=SIGNED)
    assert revoked.revocation is not None and revoked.revocation.entry == SIGNED


def test_a_verdict_without_a_signed_entry_still_parses(requested: ProjectState) -> None:
    approved = requested.approve(WANG, WANG.node or "", "ethics ok", T0)
    verdict = approved.verdict(WANG.node or "")
    assert verdict is not None and verdict.entry is None  # the node refuses it, not the parser


def test_a_signed_entry_that_is_not_base64_is_refused(requested: ProjectState) -> None:
    approved = requested.approve(WANG, WANG.node or "", "ethics ok", T0, entry=SIGNED)
    data = approved.model_dump(mode="json")
    data["verdicts"][0]["entry"] = "<script>not base64</script>"
    with pytest.raises(ProjectError, match="entry"):
        ProjectState.parse(data)
