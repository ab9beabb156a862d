"""The builders' registry: architecture records (``{"builder": name, "kwargs": {...}}``, stored in
``model.pidoc_architecture`` and in weight manifests) and :func:`build_network`, which rebuilds a
network from one by the builder's NAME; plus the argument checks the builders share."""

from __future__ import annotations

import json

import keras
import numpy as np

__all__ = ["build_network", "architecture_of"]

_BUILDERS = {}  # name -> builder, filled by _register


def _register(fn):
    _BUILDERS[fn.__name__] = fn
    return fn


def _record(model, builder, kwargs):
    spec = {"builder": builder, "kwargs": {k: _jsonable(v) for k, v in kwargs.items()}}
    model.pidoc_architecture = json.dumps(spec, sort_keys=True)
    return model


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _int_tuple(name, value, *, min_len=1):
    try:
        out = tuple(int(v) for v in value)
    except TypeError as exc:
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}") from exc
    if len(out) < min_len or any(v < 1 for v in out):
        raise ValueError(
            f"{name} must hold at least {min_len} positive integers, got {value!r}"
        )
    return out


def _check_rate(name, rate):
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
    return rate


def build_network(spec: dict | str) -> keras.Model:
    """Build a network from an architecture record ``{"builder": name, "kwargs": {...}}``.

    Parameters
    ----------
    spec : dict or str
        The record (or its JSON string) written by the builders to ``model.pidoc_architecture``
        and stored in weight manifests.

    Returns
    -------
    keras.Model
        A freshly initialised model.

    Examples
    --------
    >>> m = build_network({"builder": "build_age_distance_cnn", "kwargs": {}})
    """
    if isinstance(spec, str):
        spec = json.loads(spec)
    try:
        builder = _BUILDERS[spec["builder"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"architecture record must name a builder among {sorted(_BUILDERS)}, got {spec!r}"
        ) from exc
    return builder(**spec.get("kwargs", {}))


def architecture_of(model: keras.Model) -> dict | None:
    """The architecture record of a model made by a builder of this module, else ``None``."""
    spec = getattr(model, "pidoc_architecture", None)
    return None if spec is None else json.loads(spec)
