"""The secure-aggregation rounds of a federated query, and the regression fit on them.

`SecureAggregation._secure_sum` runs rounds 3 and 4 of a query (see
`medspace.hub.analytics`) over the nodes that are still answering: each node returns
its vector masked with pairwise masks shared with the others (round 1 of Bonawitz et al.
2017); when some did not answer, the survivors confirm who survived (the consistency
check); the survivors reveal what removes the masks of everyone who did and did not
answer (round 2), and the hub decodes the SUM, never a node's own vector. Malformed
vectors, flags and shares leave their node out, with the reason ledgered.

`_fit` is Newton-Raphson with one such sum per iteration on a fixed set of nodes: a
node that drops mid-fit stops the fit (mixing cohorts silently would give wrong numbers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from medspace.errors import MedSpaceError
from medspace.hub.analytics_session import NodeRow, NodeSession, QueryRefused, refusals_ok

HOSPITALS_CHANGED = "secagg/hospitals-changed"
"""The refusal code of a round over other hospitals than the first sum of its session."""


class SecureAggregation(NodeSession):
    """Masked sums over the session's nodes, and regression fits built on them."""

    _peers_sent: list[str] | None = None  # the participants whose peers the nodes hold
    _fit_rounds = 0  # rounds used by fits so far: each fit continues the numbering
    _summed: frozenset[str] | None = None  # the nodes the session's first sum was over

    async def _fit(self, statistic: Any) -> Any:
        """Newton-Raphson with one secure-aggregation round per iteration on a fixed set
        of nodes; the fitted statistic's result (coefficients, SEs, p-values)."""
        from medspace.analytics.regression import (
            logistic_result,
            newton_step,
            parameter_names,
            regression_layout,
        )

        p = len(parameter_names(statistic))
        length = regression_layout(p)
        beta = [0.0] * p
        fitted = set(self._answered())
        converged = False
        total: list[float] = []
        iterations = 0
        for iteration in range(1, statistic.max_iterations + 1):
            part = {"part": statistic.id, "beta": [repr(b) for b in beta]}
            # A node masks each round number once per session, so a second regression
            # in the same query goes on from where the first left off.
            self._fit_rounds += 1
            total = await self._secure_sum(self._fit_rounds, part, length, suppression=False)
            iterations = iteration
            dropped = sorted(fitted - set(self._answered()))
            if dropped:
                raise QueryRefused(
                    f"node {', '.join(dropped)} dropped out during the fit of {statistic.id}; "
                    "a fit over a changing set of hospitals would be wrong, so none is "
                    "reported: run the query again",
                    code="regression/dropout",
                )
            try:
                beta, converged = newton_step(beta, total, tolerance=statistic.tolerance)
            except MedSpaceError as error:
                raise QueryRefused(f"{statistic.id}: {error}", code="regression/failed") from None
            if converged:
                break
        if not converged:
            raise QueryRefused(
                f"{statistic.id} did not converge in {statistic.max_iterations} iterations; "
                "raise max_iterations or check the covariates (separation?)",
                code="regression/no-convergence",
            )
        return logistic_result(statistic, beta, total, iterations=iterations, converged=True)

    async def _secure_sum(
        self, round_no: int, part: dict[str, Any], length: int, *, suppression: bool
    ) -> list[float]:
        from medspace.analytics.secagg import (
            Aggregator,
            SecAggError,
            decode_vector,
            default_threshold,
        )

        members = []
        for node in sorted(self._answered()):
            if self.channel.announcement(node) is None:  # gone since it last answered
                self.rows[node] = NodeRow(node, "missing", f"node {node} is not connected")
            else:
                members.append(node)
        self._require_quorum("are connected")
        self._same_nodes(members)
        t = default_threshold(len(members))
        peers = {n: self.channel.announcement(n) for n in members}
        aggregator = Aggregator(members, t, length, self._session(), round_no)

        # The nodes keep the peers they verified; they are sent again only when the
        # participants change (a regression's iterations, a session's statistics).
        resend = members != self._peers_sent
        self._peers_sent = members

        async def mask(node: str) -> None:
            body = {"op": "mask", "round": round_no, "participants": members, "threshold": t}
            if resend:
                body["peers"] = peers
            body.update(part)
            reply = await self._ask(node, body, ok_status="ok")
            if reply is None:
                return
            try:
                aggregator.add_masked(node, reply.get("masked", {}))
            except SecAggError as error:
                self._reject(node, f"masked vector rejected: {error}")
                return
            if suppression:
                flags = reply.get("suppressed")
                if not isinstance(flags, list) or not _flags_ok(flags, length):
                    self._reject(node, "suppression flags do not match the query's cells")
                    return
                self.participants[node].suppressed = flags
                if "refusals" in reply:  # a session's statistic: decided with its round
                    if not refusals_ok(reply["refusals"]):
                        self._reject(node, "node sent malformed statistic refusals")
                        return
                    self.participants[node].refusals = reply["refusals"]

        await asyncio.gather(*(mask(node) for node in members))
        for node, error in aggregator.settle().items():
            self._reject(node, f"masked vector left out: {error}", "secagg-disagreement")
        await self._flush_entries()
        survivors = sorted(self._answered())
        self._require_quorum("sent a masked vector")
        dropped = [n for n in members if n not in survivors]
        self._same_nodes(survivors)
        checks = _finishable(aggregator.survivor_sets, dropped)
        if checks:
            await self._confirm_survivors(aggregator, round_no, checks)
        requests = _finishable(aggregator.unmask_requests, dropped)
        # Whose data is in the sum from here on: their suppression flags count.
        self.contributors = list(aggregator.survivors)

        async def unmask(node: str) -> None:
            body = {"op": "unmask", "round": round_no, "request": requests[node]}
            reply = await self._ask(node, body, keep_row=True)
            if reply is None:
                return
            try:
                aggregator.add_unmask(node, reply.get("unmask", {}))
            except SecAggError as error:
                # Its own vector is in the sum (its masks are rebuilt from the others'
                # shares); only its answer for the others is left out.
                self.rejections[node] = "secagg-bad-share"
                self.rows[node] = NodeRow(node, "ok", f"unmasking share rejected: {error}")

        await asyncio.gather(*(unmask(node) for node in survivors))
        await self._flush_entries()
        if self._summed is None:
            self._summed = frozenset(aggregator.survivors)
        try:
            return list(decode_vector(aggregator.total()))
        except SecAggError as error:
            for node in getattr(error, "nodes", ()):
                self._reject(node, f"inconsistent unmasking data: {error}", "secagg-inconsistent")
            raise QueryRefused(
                f"the masks could not be removed ({error}); the query gives no result",
                code="secagg/inconsistent",
            ) from None

    async def _confirm_survivors(
        self, aggregator: Any, round_no: int, checks: dict[str, dict[str, Any]]
    ) -> None:
        """The consistency check, only when nodes dropped: each survivor commits to who
        survived before anyone reveals a pair seed."""
        from medspace.analytics.secagg import SecAggError

        async def confirm(node: str) -> None:
            body = {"op": "confirm", "round": round_no, "request": checks[node]}
            reply = await self._ask(node, body, keep_row=True)
            if reply is None:
                return
            try:
                aggregator.add_confirmation(node, reply.get("confirm", {}))
            except SecAggError as error:
                self.rows[node] = NodeRow(node, "ok", f"survivor confirmation rejected: {error}")

        await asyncio.gather(*(confirm(node) for node in checks))
        await self._flush_entries()

    def _same_nodes(self, nodes: Sequence[str]) -> None:
        """Refuse a round over other nodes than the first sum of this query or session:
        related sums over two sets of nodes (a count by sex over h1-h3, then the count
        over h1-h2) give the numbers of a node in one set and not the other. The nodes
        refuse such a round themselves; this says why before anything is sent."""
        if self._summed is None or set(nodes) == self._summed:
            return
        gone = sorted(self._summed - set(nodes))
        raise QueryRefused(
            f"hospital(s) {', '.join(gone) or 'other'} dropped out or left after earlier "
            "statistics were summed with them (see the per-node reasons). A sum over the "
            "others could be compared with the earlier ones to give those hospitals' own "
            "numbers, so none is made: this query or session ends here; run it again or "
            "open a new session",
            code=HOSPITALS_CHANGED,
        )


def _finishable(step: Any, dropped: list[str]) -> dict[str, dict[str, Any]]:
    """`step(dropped)` (the aggregator's survivor sets or unmask requests), or the query
    refused when the round cannot finish (too few survivors or confirmations)."""
    from medspace.analytics.secagg import SecAggError

    try:
        result: dict[str, dict[str, Any]] = step(dropped)
    except SecAggError as error:
        raise QueryRefused(
            f"secure aggregation cannot finish: {error}", code="secagg/unfinished"
        ) from None
    return result


def check_counts(cells: Any, total: Sequence[float]) -> None:
    """Refuse a sum whose count cells are not whole numbers of at least 0: each node's
    counts are, so such a sum means a node sent bad data (or a wrapped value), and a
    result built on it would be wrong without saying so. (A node adding a plausible
    amount to its own counts is not caught: no protocol can check a hospital's data.)"""
    bad = [
        i
        for i, cell in enumerate(cells.cells)
        if cell.count and not (total[i] >= 0 and float(total[i]).is_integer())
    ]
    if bad:
        raise QueryRefused(
            f"{len(bad)} combined count(s) are not whole numbers of at least 0, so some "
            "node sent inconsistent data; the query gives no result. Run it again, and "
            "ask the hospitals' IT to check their node software if it repeats",
            code="secagg/implausible-sum",
        )


def _flags_ok(flags: object, length: int) -> bool:
    return (
        isinstance(flags, list)
        and len(flags) == length
        and all(f is None or (isinstance(f, str) and 0 < len(f) <= 64) for f in flags)
    )


def with_regressions(
    result: Any,
    spec: Any,
    nodes: Sequence[str],
    min_cell_size: int,
    fits: list[tuple[Any, Any]],
) -> Any:
    """The combined result with each fitted regression in the spec's order."""
    from medspace.analytics import QueryResult

    if not fits:
        return result
    if result is None:
        result = QueryResult(
            spec_digest=spec.digest(),
            title=spec.title,
            min_cell_size=min_cell_size,
            nodes=tuple(sorted(nodes)),
            statistics=(),
        )
    fitted = {stat.id: fit for stat, fit in fits}
    ordered = []
    for stat in spec.statistics:
        if stat.id in fitted:
            ordered.append(fitted[stat.id])
        else:
            ordered.extend(s for s in result.statistics if s.id == stat.id)
    return result.model_copy(update={"statistics": tuple(ordered)})


__all__ = ["HOSPITALS_CHANGED", "SecureAggregation", "check_counts", "with_regressions"]
