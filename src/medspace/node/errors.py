"""Errors of the node directory (config and key files). Messages say what to run next."""

from __future__ import annotations

from medspace.errors import ConfigError


class NodeNotFoundError(ConfigError):
    """There is no node (no node.json) in the directory that was named."""


class NodeExistsError(ConfigError):
    """`init_node` was pointed at a directory that already holds a node or its keys."""


class UnsafeKeyFileError(ConfigError):
    """A key file can be read by group or others; it must be 0600."""


class NodeConfigError(ConfigError):
    """node.json or a key file is damaged or incomplete."""
