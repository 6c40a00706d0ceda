"""The count query: plan per node, check policy, send over the channel, collect, record.

The hub sends a task only to nodes whose steward approved the project and only after
`decide("task.submit")` allows it; each node checks again (`task.run`) and applies the
minimum cell size itself, so a small count never leaves the node. Nodes that do not
answer in time, or drop their connection, are reported as missing; the answer is then
marked partial.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from medspace.errors import MedSpaceError
from medspace.hub.channel import ChannelHub, NodeMissing
from medspace.hub.core import HubCore
from medspace.hub.errors import TaskError
from medspace.identity import User
from medspace.ledger import Entry, EntryType, SignedEntry, canonical_bytes, utc_timestamp
from medspace.node.cohort import parse_cohort
from medspace.policy import PolicyDenied, ProjectState, TaskRequest, Verdict

COUNT = "count"


def _not_tasked(state: ProjectState, node: str) -> dict[str, Any] | None:
    verdict = state.verdict(node)
    if verdict is None:
        return {"node": node, "status": "not-approved", "reason": "no steward decision yet"}
    if verdict.verdict is not Verdict.APPROVED:
        return {"node": node, "status": verdict.verdict.value, "reason": "not tasked"}
    return None


async def run_count(
    core: HubCore,
    channel: ChannelHub,
    user: User,
    token: str,
    project_id: str,
    signed: Sequence[SignedEntry] = (),
) -> dict[str, Any]:
    """Run the count of `project_id`'s cohort on every approving node; returns one row per
    participating node (`count` is None where the cell is below the minimum size).

    Each node's task entry is the one `user` signed (`signed`); without them this raises
    `SignatureRequired` with the drafts before anything is sent or ledgered."""
    state = await core.read(core.book.get, project_id)
    project = state.project
    cohort = parse_cohort(project.cohort)
    if COUNT not in project.computations:
        raise TaskError(f"project {project.id} does not allow the computation 'count'")
    task_id = str(uuid.uuid4())
    rows: dict[str, dict[str, Any]] = {}
    sends: list[tuple[str, TaskRequest]] = []
    planned: list[tuple[str, TaskRequest]] = []
    acts = await asyncio.to_thread(core.user_acts, user, signed)
    for node in project.nodes:
        skipped = _not_tasked(state, node)
        if skipped is not None:
            rows[node] = skipped
            continue
        verdict = state.verdict(node)
        assert verdict is not None and verdict.contract_hash is not None
        task = TaskRequest(
            project_id=project.id,
            node=node,
            computation=COUNT,
            variables=cohort.variables,
            contract_hash=verdict.contract_hash,
        )
        planned.append((node, task))
        await asyncio.to_thread(acts.plan, "task.submit", state, task=task)
    await asyncio.to_thread(acts.require)  # 428 with the drafts: nothing sent or ledgered
    for node, task in planned:
        try:
            await asyncio.to_thread(acts.decide, "task.submit", state, task=task)
        except PolicyDenied as denied:  # ledgered by the hub as its observation
            rows[node] = {"node": node, "status": "refused", "reason": str(denied)}
            continue
        sends.append((node, task))
    if not sends and all(r["status"] != "refused" for r in rows.values()):
        raise TaskError(f"no node has approved project {project.id}; nothing was sent")
    state_json = state.model_dump(mode="json")
    # The nodes get a delegation for this task, never the researcher's bearer token.
    delegation = core.users.delegate(token, audience="task", binding=task_id)
    answers = await asyncio.gather(
        *(_send(core, channel, node, task, task_id, state_json, delegation) for node, task in sends)
    )
    for answer in answers:
        rows[answer["node"]] = answer
    results = [rows[node] for node in project.nodes]
    answered = [r["node"] for r in results if r["status"] == "ok"]
    partial = len(answered) < len(sends)
    digest = hashlib.sha256(canonical_bytes(results)).hexdigest()
    entry = Entry(
        type=EntryType.RESULT,
        actor="hub",
        time=utc_timestamp(),
        project=project.id,
        artefacts={"result": f"sha256:{digest}"},
        details={
            "task": task_id,
            "statistic": COUNT,
            "status": "partial" if partial else "completed",
            # Ledger codes start with a letter; node names may not, so such lists are
            # left out (the count and the node-signed entries still say who answered).
            **({"nodes": answered} if all(n[:1].isalpha() for n in answered) else {}),
            "count": len(answered),
            "partial": partial,
        },
    )
    await asyncio.to_thread(core.append, [core.hub_signer.sign(entry)])
    return {"project": project.id, "task": task_id, "partial": partial, "results": results}


async def push_project_state(core: HubCore, channel: ChannelHub, state: ProjectState) -> None:
    """Send a revoked or withdrawn project's state, with the signed entries it carries,
    to its connected nodes now, so they stop before the next task (best effort: a node
    that is away learns it with its next task of the project)."""
    body = {"type": "project", "project": state.model_dump(mode="json")}
    online = set(channel.connected())
    nodes = [n for n in state.project.nodes if n in online]
    timeout = float(core.config.task_timeout)
    await asyncio.gather(
        *(channel.request(node, body, timeout) for node in nodes), return_exceptions=True
    )


async def _send(
    core: HubCore,
    channel: ChannelHub,
    node: str,
    task: TaskRequest,
    task_id: str,
    state_json: dict[str, Any],
    delegation: str,
) -> dict[str, Any]:
    body = {
        "type": "task",
        "task_id": task_id,
        "task": task.model_dump(mode="json"),
        "project": state_json,
        "token": delegation,
    }
    try:
        reply = await channel.request(node, body, float(core.config.task_timeout))
    except NodeMissing as missing:
        return {"node": node, "status": "missing", "reason": str(missing)}
    entries = reply.get("entries", [])
    try:
        bodies = [base64.b64decode(e, validate=True) for e in entries]
        await asyncio.to_thread(core.append_node_entries, node, bodies)
    except (MedSpaceError, ValueError, TypeError):
        return {
            "node": node,
            "status": "error",
            "reason": "node sent ledger entries that failed verification",
        }
    status = reply.get("status")
    if status == "ok":
        count = reply.get("count")
        k = reply.get("min_cell_size")
        if count is not None and (type(count) is not int or count < 0):
            return {"node": node, "status": "error", "reason": "node sent a malformed count"}
        display = str(count) if count is not None else f"<{k}"
        return {
            "node": node,
            "status": "ok",
            "count": count,
            "display": display,
            "min_cell_size": k,
        }
    return {
        "node": node,
        "status": "refused" if status == "refused" else "error",
        "reason": str(reply.get("reason", "no reason given"))[:500],
    }
