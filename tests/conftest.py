"""Shared fixtures: deterministic small clusters and an isolated Keras/cache home."""

import os
import tempfile

import numpy as np
import pytest

# Keras writes ~/.keras/keras.json on first import and looks there for VGG weights: isolate it,
# and keep the embedded-evolution cache of the test session out of the user's cache.
_TMP_HOME = tempfile.mkdtemp(prefix="pidoc-tests-")
os.environ.setdefault("KERAS_HOME", os.path.join(_TMP_HOME, "keras"))
os.environ.setdefault("PIDOC_CACHE_DIR", os.path.join(_TMP_HOME, "cache"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hypothesis import settings  # noqa: E402

from pidoc_core.snapshot import Snapshot  # noqa: E402

# `make test` (and CI) draw the same fuzzing examples every run, so a red run is reproducible;
# HYPOTHESIS_PROFILE=explore draws new ones each time, to look for new failures.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def plummer_snapshot(n=20_000, *, scale_pc=1.0, seed=1, time=12.0, name="plummer"):
    """A Plummer sphere of ``n`` stars of scale radius ``scale_pc`` with main-sequence-like stars
    (L ~ m^4, R ~ m^0.8) and isotropic velocities; a test input, not physics under test."""
    rng = np.random.default_rng(seed)
    r = scale_pc / np.sqrt(rng.uniform(1e-6, 0.999, n) ** (-2.0 / 3.0) - 1.0)
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    pos = r[:, None] * direction
    vel = rng.normal(scale=3.0, size=(n, 3))
    mass = rng.uniform(0.1, 1.0, n)
    return Snapshot(x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], vx=vel[:, 0], vy=vel[:, 1],
                    vz=vel[:, 2], mass=mass, radius=mass**0.8, luminosity=mass**4,
                    time=time, name=name)


def point_snapshot(positions, *, luminosity=1.0, mass=1.0, teff=5772.0):
    """Stars at given (N, 3) positions in pc, all with the same properties."""
    pos = np.atleast_2d(np.asarray(positions, dtype=float))
    n = len(pos)
    return Snapshot(x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], vx=np.zeros(n), vy=np.zeros(n),
                    vz=np.zeros(n), mass=np.full(n, mass), radius=np.ones(n),
                    luminosity=np.full(n, luminosity), teff=np.full(n, teff))


@pytest.fixture(scope="session")
def plummer():
    return plummer_snapshot()
