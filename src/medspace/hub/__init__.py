"""The hub: users, nodes, projects and approvals, tasks over the node channel, and the
ledger with its checkpoints, served as a FastAPI app (OpenAPI at /docs).

Other components use only what is listed in `__all__`. The FastAPI app and the node
channel load on first use, so commands that only talk to a hub need not import a server.
"""

from typing import Any

from medspace.hub.audit import RemoteVerdict, verify_database, verify_remote
from medspace.hub.client import HubClient, HubRequestError, Session, load_session, save_session
from medspace.hub.config import HubConfig, init_hub, read_hub
from medspace.hub.core import HubCore
from medspace.hub.errors import (
    ChannelError,
    HubConfigError,
    HubError,
    HubExistsError,
    HubUnreachable,
    TaskError,
)

__all__ = [
    "ChannelError",
    "ChannelHub",
    "HubClient",
    "HubConfig",
    "HubConfigError",
    "HubCore",
    "HubError",
    "HubExistsError",
    "HubRequestError",
    "HubUnreachable",
    "NodeMissing",
    "RemoteVerdict",
    "Session",
    "TaskError",
    "create_app",
    "init_hub",
    "load_session",
    "read_hub",
    "save_session",
    "verify_database",
    "verify_remote",
]


_SERVER_SIDE = {
    "create_app": "medspace.hub.app",
    "ChannelHub": "medspace.hub.channel",
    "NodeMissing": "medspace.hub.channel",
}


def __getattr__(name: str) -> Any:
    """PEP 562: import the server-side pieces only when they are asked for."""
    if name in _SERVER_SIDE:
        import importlib

        return getattr(importlib.import_module(_SERVER_SIDE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
