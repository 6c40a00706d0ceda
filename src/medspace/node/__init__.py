"""A node directory: `node.json`, key files (0600, never in the database) and its store.

`init_node` creates one, `open_node` opens it. The node *service* (FastAPI app) is built
on top of this later.
"""

from medspace.node.config import NodeConfig
from medspace.node.directory import Node, init_node, open_node
from medspace.node.errors import (
    NodeConfigError,
    NodeExistsError,
    NodeNotFoundError,
    UnsafeKeyFileError,
)
from medspace.node.keys import FileKekKeeper

__all__ = [
    "FileKekKeeper",
    "Node",
    "NodeConfig",
    "NodeConfigError",
    "NodeExistsError",
    "NodeNotFoundError",
    "UnsafeKeyFileError",
    "init_node",
    "open_node",
]
