"""UTC time helpers: every timestamp in identity is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime, what: str) -> datetime:
    """Return `moment` in UTC; a naive datetime is a programming error and raises ValueError."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC); got a naive datetime")
    return moment.astimezone(UTC)
