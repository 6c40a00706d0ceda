"""The hub's policy: MedSpace's rules plus rules for the hub's own administrative actions.

Built on `medspace.policy.RuleRegistry`, so the same `PolicyEngine.decide` (deny by
default, every decision recorded) governs every route.
"""

from __future__ import annotations

from medspace.identity import Role, User
from medspace.policy import DEFAULT_RULES, Context, Decision, PolicyEngine, RuleRegistry


def _allow(reason: str) -> Decision:
    return Decision(True, reason, (), "allowed")


def _admin_only(what: str):  # type: ignore[no-untyped-def]
    def rule(actor: User, resource: object, context: Context) -> Decision:
        if actor.role is Role.ADMIN:
            return _allow(f"admins may {what}")
        return Decision(False, f"a {actor.role.value} may not {what}; only admins may", (), "role")

    return rule


def _any_user(what: str):  # type: ignore[no-untyped-def]
    def rule(actor: User, resource: object, context: Context) -> Decision:
        return _allow(f"every signed-in user may {what}")

    return rule


def hub_rules() -> RuleRegistry:
    """A registry with every MedSpace rule and the hub's administrative ones."""
    registry = RuleRegistry()
    for action in DEFAULT_RULES.actions():
        rule = DEFAULT_RULES.get(action)
        assert rule is not None
        registry.register(action)(rule)
    registry.register("user.add")(_admin_only("add users"))
    registry.register("user.list")(_admin_only("list users"))
    registry.register("user.reset-key")(_admin_only("reset users' signing keys"))
    registry.register("node.register")(_admin_only("register nodes"))
    registry.register("node.list")(_any_user("list the network's nodes"))
    return registry


def hub_engine() -> PolicyEngine:
    """The policy engine the hub decides with."""
    return PolicyEngine(hub_rules())
