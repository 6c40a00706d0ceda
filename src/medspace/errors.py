"""The one domain base error. Every component's errors derive from `MedSpaceError`.

Messages say what was wrong and what to do next; they never contain patient data.
Each error maps to one CLI exit code and one HTTP status.
"""


class MedSpaceError(Exception):
    """Base of every MedSpace error."""

    exit_code: int = 1
    http_status: int = 500


class UsageError(MedSpaceError):
    """The caller asked for something malformed (bad flag, bad file, bad spec)."""

    exit_code = 2
    http_status = 400


class NotFoundError(MedSpaceError):
    """A node, file, project or record that was named does not exist."""

    exit_code = 3
    http_status = 404


class ConfigError(MedSpaceError):
    """A node or hub directory is missing, incomplete or has unsafe permissions."""

    exit_code = 4
    http_status = 500


class CryptoError(MedSpaceError):
    """Decryption, signature or key handling failed (wrong key, tampered data)."""

    exit_code = 5
    http_status = 500
