"""The hub: users, nodes, projects and approvals, tasks over the node channel, and the
ledger with its checkpoints, served as a FastAPI app (OpenAPI at /docs).

Other components use only what is listed in `__all__`.
"""

from medspace.hub.app import create_app
from medspace.hub.audit import RemoteVerdict, verify_database, verify_remote
from medspace.hub.channel import ChannelHub, NodeMissing
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
