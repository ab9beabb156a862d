"""The benchmark tooling's own logic: figures and their table, the load test's moves and its
cross-talk check (the timings themselves are measured by ``make bench``, never in tests)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import plummer_snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load_test  # noqa: E402
from results import Figure, read_json, render_table, spread, write_json  # noqa: E402


def test_spread_and_json_round_trip(tmp_path):
    med, p05, p95, n = spread(np.arange(101.0))
    assert (med, p05, p95, n) == (50.0, 5.0, 95.0, 101)
    with pytest.raises(ValueError, match="no measurements"):
        spread([])
    fig = Figure("imager", "observe()", "ms", med, p05, p95, n, "<= 5 ms", False,
                 "reference", 5000.0, "ms", 100.0, "reference / observe")
    write_json([fig], tmp_path / "f.json")
    assert read_json(tmp_path / "f.json") == [fig]
    table = render_table([fig]).splitlines()
    assert len(table) == 3
    assert table[2].split(" | ")[2:6] == ["50.0 ms", "5.00–95.0", "101", "<= 5 ms"]
    assert "**no**" in table[2] and "reference: 5,000 ms" in table[2]


def test_session_moves_are_distinct_and_never_the_defaults():
    finals = set()
    for i in range(16):
        moves = load_test.session_moves(i, 9)
        assert [t for t, _ in moves[:3]] == ["Distance (kpc)", "PSF FWHM (arcsec)",
                                            "Centre shift x (arcsec)"]
        last = {}
        for title, value in moves:
            assert value not in (15.0, 1.0, 0.0)  # the dashboard's defaults: no repaint
            assert last.get(title) != value  # every move changes its slider
            last[title] = value
        assert 5 <= last["Distance (kpc)"] <= 150 and 0.3 <= last["PSF FWHM (arcsec)"] <= 2.5
        assert -8 <= last["Centre shift x (arcsec)"] <= 8
        finals.add(tuple(sorted(last.items())))
    assert len(finals) == 16  # each session ends on settings of its own
    with pytest.raises(ValueError, match="0-15"):
        load_test.session_moves(16, 3)


class _Source:
    def __init__(self, snap):
        self.snap = snap

    def snapshot(self, time_gyr):
        assert time_gyr == self.snap.time
        return self.snap


def _page_state(sources, distance, psf, shift_x):
    """What a page would report after its moves: the server's table and its flux map."""
    from pidoc_core.imager import ObservationSetup, observe

    snap = sources["plummer run"].snap
    flux = observe(snap, ObservationSetup(distance_kpc=distance, psf_fwhm_arcsec=psf,
                                          shift_arcsec=(shift_x, 0.0))).flux.values
    numbers = {"caption": f"{snap.name} at {snap.time:g} Gyr, 3,000 stars; ...",
               "cells": {"Distance (kpc)": {"true": f"{distance:.0f}"}}}
    return {"numbers": numbers, "run": "plummer run", "distance": distance, "psf": psf,
            "shift_x": shift_x, "shift_y": 0.0, "flux": flux.astype(np.float32).ravel().tolist()}


def test_crosstalk_check_passes_own_maps_and_catches_swapped_ones():
    sources = {"plummer run": _Source(plummer_snapshot(3000, time=12.0))}
    states = [_page_state(sources, 16.0, 0.575, -3.875), _page_state(sources, 17.0, 0.625, -3.625)]
    assert load_test.check_crosstalk(states, sources) == []
    swapped = [dict(states[0], flux=states[1]["flux"]), dict(states[1], flux=states[0]["flux"])]
    problems = load_test.check_crosstalk(swapped, sources)
    assert any("session 0: its flux map differs" in p for p in problems)
    assert any("session 0: its flux map equals session 1's settings" in p for p in problems)
    assert any("session 1: its flux map equals session 0's settings" in p for p in problems)
