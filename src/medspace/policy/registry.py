"""Rules keyed by action name, and the small helpers rules use to answer.

A rule is a function `(actor, resource, context) -> Decision` registered under one
action name ("task.run"). An action with no rule is denied by `decide()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeAlias

from medspace.identity import User
from medspace.policy.decision import Context, Decision, Obligation
from medspace.policy.lifecycle import Refusal

Rule: TypeAlias = Callable[[User, object, Context], Decision]

ACTION_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}(\.[a-z][a-z0-9_-]{0,31}){0,3}")


class RuleRegistry:
    """Rules by declared action name. Registering a name twice is an error."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}

    def register(self, action: str) -> Callable[[Rule], Rule]:
        """Decorator: register the decorated function as the rule for `action`."""
        if not ACTION_NAME.fullmatch(action):
            raise ValueError(f"action name {action!r} is malformed; use e.g. 'task.run'")

        def add(rule: Rule) -> Rule:
            if action in self._rules:
                raise ValueError(f"a rule for {action!r} is registered already")
            self._rules[action] = rule
            return rule

        return add

    def get(self, action: str) -> Rule | None:
        """The rule for `action`, or None."""
        return self._rules.get(action)

    def actions(self) -> tuple[str, ...]:
        """Every action that has a rule, sorted."""
        return tuple(sorted(self._rules))


DEFAULT_RULES = RuleRegistry()
"""The rules MedSpace ships; `medspace.policy.engine` loads them."""


def allow(reason: str, *obligations: Obligation) -> Decision:
    """An allow with its reason and obligations."""
    return Decision(True, reason, tuple(obligations), "allowed")


def deny(code: str, reason: str) -> Decision:
    """A deny with a short machine code ("expired") and a reason saying what to do."""
    return Decision(False, reason, (), code)


def refused(refusal: Refusal) -> Decision:
    """A deny carrying a lifecycle refusal."""
    return deny(refusal.code, refusal.message)


def wrong_role(actor: User, action: str, allowed: str) -> Decision:
    """The deny for an actor whose role may not take `action`."""
    return deny("role", f"a {actor.role.value} may not {action}; only {allowed} may")
