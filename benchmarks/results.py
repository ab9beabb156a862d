"""Benchmark figures: one record per measured number, written as JSON and gathered in RESULTS.md.

Every benchmark script returns a list of :class:`Figure` from its ``main()`` and, given
``--json PATH``, writes them there; ``benchmarks/run_all.py`` (``make bench``) runs each script
in its own process and renders the collected figures with :func:`render_markdown`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

__all__ = ["Figure", "spread", "write_json", "read_json", "render_table"]


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured number, its spread, its target and its ratio to an anchor of the same run.

    Parameters
    ----------
    benchmark : str
        Script short name (``imager``, ``evolution``, ...).
    name : str
        What was measured.
    unit : str
        Unit of ``median``, ``p05`` and ``p95``.
    median, p05, p95 : float
        Median and 5th/95th percentiles over ``n`` repeats (equal when ``n`` is 1).
    n : int
        Number of timed repeats.
    target : str
        The issue's target in words (``"<= 5 ms"``), or ``""`` for a figure without one.
    met : bool or None
        Whether the median meets the target (None without a target).
    anchor : str
        What the ratio is taken against, measured in the same run.
    anchor_value : float
        The anchor's median, in ``anchor_unit``.
    anchor_unit : str
        Unit of ``anchor_value``.
    ratio : float
        The figure's ratio to its anchor, oriented as ``ratio_label`` says.
    ratio_label : str
        How to read ``ratio`` (``"reference / observe"``: larger is faster).
    """

    benchmark: str
    name: str
    unit: str
    median: float
    p05: float
    p95: float
    n: int
    target: str
    met: bool | None
    anchor: str
    anchor_value: float
    anchor_unit: str
    ratio: float
    ratio_label: str


def spread(values) -> tuple[float, float, float, int]:
    """(median, 5th percentile, 95th percentile, count) of a sample.

    Examples
    --------
    >>> spread([1.0, 2.0, 3.0])[0]
    2.0
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("no measurements")
    p05, med, p95 = np.percentile(v, [5, 50, 95])
    return float(med), float(p05), float(p95), int(v.size)


def write_json(figures, path) -> None:
    """Write figures as a JSON list (``--json`` of every benchmark)."""
    Path(path).write_text(json.dumps([dataclasses.asdict(f) for f in figures], indent=1))


def read_json(path) -> list[Figure]:
    """Figures written by :func:`write_json`."""
    return [Figure(**d) for d in json.loads(Path(path).read_text())]


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    ax = abs(x)
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def render_table(figures) -> str:
    """A Markdown table of figures: median, 5–95 % spread, target, anchor and ratio."""
    rows = ["| benchmark | figure | median | 5–95 % | n | target | met | anchor (same run) "
            "| ratio |",
            "|---|---|---|---|---|---|---|---|---|"]
    for f in figures:
        met = {True: "yes", False: "**no**", None: "–"}[f.met]
        spread_txt = "–" if f.n < 2 else f"{_num(f.p05)}–{_num(f.p95)}"
        rows.append(
            f"| {f.benchmark} | {f.name} | {_num(f.median)} {f.unit} | {spread_txt} | {f.n} "
            f"| {f.target or '–'} | {met} | {f.anchor}: {_num(f.anchor_value)} {f.anchor_unit} "
            f"| {_num(f.ratio)} ({f.ratio_label}) |")
    return "\n".join(rows)
