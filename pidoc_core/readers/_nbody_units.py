"""Henon N-body units (G = 1) scaled to physical units with astropy constants."""

from __future__ import annotations

import numpy as np
from astropy import constants as const
from astropy import units as u

from ._common import ReaderError

__all__ = ["nbody_scales"]


def nbody_scales(nbody_mass, nbody_length, *, where: str, flags: str) -> dict[str, float]:
    """Scale factors of N-body units with G = 1, mass unit ``nbody_mass`` (Msun) and length unit
    ``nbody_length`` (pc).

    Returns
    -------
    dict
        ``mass`` (Msun), ``length`` (pc), ``velocity`` (km/s, sqrt(G M / R)), ``time`` (Myr,
        sqrt(R**3 / (G M))) per N-body unit.

    Raises
    ------
    ReaderError
        If either scale is missing, not finite or not positive; the message names ``flags``.
    """
    if nbody_mass is None or nbody_length is None:
        raise ReaderError(f"{where}: values are in N-body units (G = 1); pass {flags} to scale "
                          "them to physical units")
    try:
        m, r = float(nbody_mass), float(nbody_length)
    except (TypeError, ValueError):
        raise ReaderError(f"{where}: {flags} must be numbers, got {nbody_mass!r}, "
                          f"{nbody_length!r}") from None
    if not (np.isfinite(m) and np.isfinite(r) and m > 0 and r > 0):
        raise ReaderError(f"{where}: {flags} must be positive, got {m!r} Msun, {r!r} pc")
    gm = const.G * m * u.Msun
    velocity = np.sqrt(gm / (r * u.pc)).to_value(u.km / u.s)
    time = np.sqrt((r * u.pc) ** 3 / gm).to_value(u.Myr)
    return {"mass": m, "length": r, "velocity": float(velocity), "time": float(time)}
