"""Shamir secret sharing (Shamir 1979) over the prime field GF(2^521 - 1).

Secure aggregation shares each node's 32-byte self-mask seed among its peers so the hub
can remove the self-mask of a node that stayed, with any `threshold` of the shares, while
fewer shares reveal nothing about the seed. The Mersenne prime 2^521 - 1 is larger than
any 256-bit seed, so a seed is one field element.

A share is (x, y) with x the recipient's 1-based position; its wire form is y as 66 bytes
big-endian. `find_consistent` reconstructs from more shares than needed and names the
shares that do not lie on the polynomial whose secret matches a commitment.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import combinations, islice

PRIME = (1 << 521) - 1
SHARE_BYTES = 66
MAX_SUBSETS = 2000  # bound on the t-subsets tried when looking for the honest shares


class ShareError(ValueError):
    """A share is malformed or the share set cannot be used (internal; callers convert)."""


def split(secret: int, xs: Sequence[int], threshold: int) -> dict[int, int]:
    """Shares y = f(x) of a random polynomial f of degree threshold-1 with f(0) = secret."""
    if not 0 <= secret < PRIME:
        raise ShareError("the secret is not a field element")
    if not 1 <= threshold <= len(xs) or len(set(xs)) != len(xs) or any(x <= 0 for x in xs):
        raise ShareError("need distinct positive x and 1 <= threshold <= number of shares")
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    return {x: _evaluate(coefficients, x) for x in xs}


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    value = 0
    for c in reversed(coefficients):  # Horner
        value = (value * x + c) % PRIME
    return value


def interpolate(points: Mapping[int, int], at: int = 0) -> int:
    """Lagrange interpolation at `at` of the polynomial through `points` (x -> y)."""
    xs = tuple(sorted(points))
    weights = _lagrange_weights(xs, at)
    return sum(points[x] * w for x, w in zip(xs, weights, strict=True)) % PRIME


@lru_cache(maxsize=4096)
def _lagrange_weights(xs: tuple[int, ...], at: int) -> tuple[int, ...]:
    """Weights w_i with f(at) = sum w_i f(x_i); they depend only on the x, so the hub
    computes them once per round, not once per node."""
    weights = []
    for xi in xs:
        numerator, denominator = 1, 1
        for xj in xs:
            if xj != xi:
                numerator = numerator * (at - xj) % PRIME
                denominator = denominator * (xi - xj) % PRIME
        weights.append(numerator * pow(denominator, -1, PRIME) % PRIME)
    return tuple(weights)


def find_consistent(
    points: Mapping[int, int], threshold: int, accept: Callable[[int], bool]
) -> tuple[int, set[int]] | None:
    """Reconstruct a secret that `accept` approves, and the x of shares that disagree.

    Tries t-subsets of the shares (the first one first, at most MAX_SUBSETS) until one
    interpolates to an accepted secret; every other share is then checked against that
    polynomial. A subset holding a wrong share interpolates to a wrong secret (each
    Lagrange weight at 0 is non-zero), so an accepted subset is all honest. Returns
    None when no subset tried is accepted.
    """
    if len(points) < threshold:
        raise ShareError("fewer shares than the threshold")
    xs = sorted(points)
    for subset in islice(combinations(xs, threshold), MAX_SUBSETS):
        basis = {x: points[x] for x in subset}
        secret = interpolate(basis, 0)
        if accept(secret):
            bad = {x for x in xs if x not in basis and interpolate(basis, x) != points[x]}
            return secret, bad
    return None


def share_to_bytes(y: int) -> bytes:
    """The wire form of a share value."""
    return y.to_bytes(SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    """Parse a share value; `ShareError` if it is not a field element."""
    if len(data) != SHARE_BYTES:
        raise ShareError("a share must be 66 bytes")
    y = int.from_bytes(data, "big")
    if y >= PRIME:
        raise ShareError("a share is not a field element")
    return y
