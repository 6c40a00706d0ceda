"""The hub's own tables (beside identity's, policy's and the ledger's). Only `hub` reads them.

`hub_signers` keeps every key that ever signed a ledger entry (users' custodial keys, node
keys, the hub key), so old entries stay verifiable after a node is removed.
`hub_meta` keeps the log key and quorum so `audit verify --db` needs only the database.
`hub_node_policies` keeps the standing policy each node last announced on its channel.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

signers = sa.Table(
    "hub_signers",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("principal", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # hub | user | node
    sa.Column("public_key", sa.String(64), nullable=False),
)

meta = sa.Table(
    "hub_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

node_policies = sa.Table(
    "hub_node_policies",
    metadata,
    sa.Column("node", sa.String(63), primary_key=True),
    sa.Column("policy", sa.Text, nullable=False),
)
