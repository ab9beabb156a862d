"""Kroupa (2001) initial mass function between 0.1 and 50 Msun."""

from __future__ import annotations

import numpy as np

__all__ = ["KROUPA_BREAKS", "KROUPA_SLOPES", "sample_kroupa"]

#: Break masses (Msun) and slopes dN/dm ~ m**slope of the IMF used by the paper's runs.
KROUPA_BREAKS = (0.1, 0.5, 1.0, 50.0)
KROUPA_SLOPES = (-1.3, -2.3, -2.3)


def sample_kroupa(n, rng, *, breaks=KROUPA_BREAKS, slopes=KROUPA_SLOPES):
    """Draw initial masses from a continuous broken power law.

    Parameters
    ----------
    n : int
        Number of stars.
    rng : numpy.random.Generator
        Source of randomness.
    breaks, slopes : sequence of float, keyword-only
        Break masses (Msun, ``len(slopes) + 1`` values) and power-law slopes.

    Returns
    -------
    numpy.ndarray
        ``n`` masses in Msun.

    Examples
    --------
    >>> m = sample_kroupa(1000, np.random.default_rng(1))
    >>> bool(m.min() >= 0.1 and m.max() <= 50)
    True
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    breaks = np.asarray(breaks, float)
    # continuous normalisation across segments
    coef = [1.0]
    for i in range(1, len(slopes)):
        coef.append(coef[-1] * breaks[i] ** (slopes[i - 1] - slopes[i]))
    weights = []
    for c, a, lo, hi in zip(coef, slopes, breaks[:-1], breaks[1:]):
        weights.append(c * (hi ** (a + 1) - lo ** (a + 1)) / (a + 1))
    weights = np.asarray(weights) / np.sum(weights)
    seg = rng.choice(len(slopes), size=n, p=weights)
    u = rng.random(n)
    out = np.empty(n)
    for i, a in enumerate(slopes):
        sel = seg == i
        lo, hi = breaks[i] ** (a + 1), breaks[i + 1] ** (a + 1)
        out[sel] = (lo + u[sel] * (hi - lo)) ** (1.0 / (a + 1))
    return out
