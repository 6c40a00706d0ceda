"""Identity: users and roles, password logins, expiring tokens, node keys and a small CA.

Other components use only what is listed in `__all__`.
"""

from medspace.identity.certs import CertBundle, CertPair, init_certs, issue_node_cert
from medspace.identity.directory import DEFAULT_TOKEN_TTL, UserDirectory
from medspace.identity.errors import (
    AuthError,
    CertError,
    DuplicateUserError,
    IdentityError,
    InvalidUserError,
    NodeKeyError,
    UnknownUserError,
)
from medspace.identity.keys import (
    fingerprint,
    generate_key,
    parse_public_key,
    public_key_text,
    read_private_key,
    write_private_key,
)
from medspace.identity.nodes import (
    CHALLENGE_TTL,
    Challenge,
    NodeRegistry,
    RegisteredNode,
    UnknownNodeError,
    sign_challenge,
    verify_challenge_response,
)
from medspace.identity.passwords import (
    DEFAULT_PARAMS,
    ScryptParams,
    hash_password,
    needs_rehash,
    verify_password,
)
from medspace.identity.roles import Role, User, check_node_name
from medspace.identity.tokens import (
    MAX_TTL,
    Claims,
    issue_delegation,
    issue_token,
    verify_delegation,
    verify_token,
)

__all__ = [
    "CHALLENGE_TTL",
    "DEFAULT_PARAMS",
    "DEFAULT_TOKEN_TTL",
    "MAX_TTL",
    "AuthError",
    "CertBundle",
    "CertError",
    "CertPair",
    "Challenge",
    "Claims",
    "DuplicateUserError",
    "IdentityError",
    "InvalidUserError",
    "NodeKeyError",
    "NodeRegistry",
    "RegisteredNode",
    "Role",
    "ScryptParams",
    "UnknownNodeError",
    "UnknownUserError",
    "User",
    "UserDirectory",
    "check_node_name",
    "fingerprint",
    "generate_key",
    "hash_password",
    "init_certs",
    "issue_delegation",
    "issue_node_cert",
    "issue_token",
    "needs_rehash",
    "parse_public_key",
    "public_key_text",
    "read_private_key",
    "sign_challenge",
    "verify_challenge_response",
    "verify_delegation",
    "verify_password",
    "verify_token",
    "write_private_key",
]
