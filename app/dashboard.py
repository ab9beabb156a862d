"""π-DOC Explorer dashboard: ``make serve`` = ``panel serve app/dashboard.py``.

Options after ``--args``:

- ``--weights DIR``: a saved π-DOC model for every tab (default ``$PIDOC_WEIGHTS``, else the
  shipped ``paper`` model, and for the Observations tab the shipped ``wide`` model when it is
  shipped);
- ``--snapshots DIR``: a directory of the user's snapshot files, read by
  :func:`pidoc_core.readers.read_snapshot` and offered beside the embedded analogues (fixed when
  the server starts, never typed into the page); ``--no-embedded`` offers only that directory;
- ``--testset FILE``: the aggregates ``pidoc evaluate`` writes beside its predictions (default the
  shipped ``weights/pidoc/testset_aggregates.nc``);
- ``--n-stars N``: stars of the embedded analogues (default 50,000);
- ``--mock-table3 FILE``: the model's mock Table 3 (``pidoc mock-table3``; default
  ``mock_table3.ecsv`` in the model's directory), shown on the Observations tab.

The model, the snapshot sources and the snapshots are cached once per server process and shared
read-only by all sessions; each session has its own views (:mod:`app.views`). Everything loads
from this server (inline resources, no CDN); a lost connection is announced on the page.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import holoviews as hv
import panel as pn

from app.views import ExploreView, ObservationView, TestSetView, install_browser_fixes
from pidoc_core.evolution import paper_runs
from pidoc_core.model import SHIPPED_MODELS, PiDOC, is_saved_model, observation_model

pn.extension(inline=True, loading_indicator=True,
             disconnect_notification="Connection to the π-DOC server lost: the plots and numbers "
             "no longer follow the controls. Reload the page.",
             ready_notification=None)
# Canvas, not WebGL, for the HoloViews figures: the Test-set tab holds 13 of them, and WebGL
# left them blank in Chromium without a GPU (the Explore tab's Bokeh figures are canvas too)
hv.renderer("bokeh").webgl = False

#: Largest FITS upload, MB; the server's websocket limit (Makefile) leaves room for base64.
UPLOAD_MB = 50
SHIPPED_TESTSET = (Path(__file__).resolve().parents[1] / "weights" / "pidoc"
                   / "testset_aggregates.nc")
INTRO = ("### π-DOC Explorer — mass maps, ages and distances of globular clusters from their "
         "light (Chardin & Bianchini 2021), on embedded cluster analogues")


def _options():
    parser = argparse.ArgumentParser(prog="app/dashboard.py")
    parser.add_argument("--weights", default=os.environ.get("PIDOC_WEIGHTS"))
    parser.add_argument("--snapshots", default=None)
    parser.add_argument("--testset", default=None)
    parser.add_argument("--no-embedded", action="store_true",
                        help="offer only the --snapshots directory, not the embedded analogues")
    parser.add_argument("--mock-table3", default=None)
    parser.add_argument("--n-stars", type=int, default=50_000,
                        help="stars of the embedded analogues (fewer: a faster first set-up)")
    return parser.parse_known_args(sys.argv[1:])[0]


OPTIONS = _options()


def _sources():
    sources = {} if OPTIONS.no_embedded else dict(paper_runs(n_stars=OPTIONS.n_stars,
                                                             progress=False))
    if OPTIONS.snapshots:
        from pidoc_core.dataset import SnapshotDirectory

        sources[f"user: {Path(OPTIONS.snapshots).name}"] = SnapshotDirectory(OPTIONS.snapshots)
    return sources


def _aggregates():
    import xarray as xr

    path = Path(OPTIONS.testset) if OPTIONS.testset else SHIPPED_TESTSET
    return xr.load_dataset(path) if path.is_file() else None


def _mock_table3():
    from astropy.table import Table

    default = Path(OBSERVATION_MODEL.provenance.get("loaded_from", ".")) / "mock_table3.ecsv"
    path = Path(OPTIONS.mock_table3) if OPTIONS.mock_table3 else default
    return Table.read(path, format="ascii.ecsv") if path.is_file() else None


SOURCES = pn.state.as_cached("pidoc-sources", _sources)
MODEL = pn.state.as_cached("pidoc-model", lambda: PiDOC.load(OPTIONS.weights))
AGGREGATES = pn.state.as_cached("pidoc-testset", _aggregates)
# real images: the wide model when it is shipped (trained on clusters like the observed ones),
# unless --weights names one model for every tab
OBSERVATION_MODEL = (MODEL if OPTIONS.weights or not is_saved_model(SHIPPED_MODELS["wide"]) else
                     pn.state.as_cached("pidoc-observation-model", observation_model))
MOCK_TABLE3 = pn.state.as_cached("pidoc-mock-table3", _mock_table3)
try:
    UPSILON = float(MODEL.provenance["training_mass_to_light"])
except KeyError:
    raise SystemExit(f"{OPTIONS.weights or 'the shipped model'}: its manifest has no "
                     "'training_mass_to_light' (train with `pidoc train`, which records it)")


def _snapshot(run: str, time_gyr: float):
    return pn.state.as_cached(f"pidoc-snapshot::{run}::{time_gyr:.4f}",
                              lambda: SOURCES[run].snapshot(time_gyr))


def dashboard() -> pn.viewable.Viewable:
    """One session's page: the Explore, Test set and Observations tabs."""
    install_browser_fixes(pn.state.curdoc)
    explore = ExploreView(SOURCES, MODEL, upsilon=UPSILON, snapshot_cache=_snapshot,
                          grid=MODEL.provenance.get("training_grid"))
    # every tab in the page from the start: the Test-set tab then opens in ~0.05 s instead of
    # ~1-1.4 s (its ~650 Bokeh models made and laid out on demand), for a slower first page load
    # (benchmarks/RESULTS.md)
    tabs = pn.Tabs(("Explore", explore.panel()), dynamic=False)
    if AGGREGATES is not None:
        tabs.append(("Test set", TestSetView(AGGREGATES).panel()))
    else:
        tabs.append(("Test set", pn.pane.Alert(
            "No test-set evaluation found: run `pidoc evaluate` and pass `--args --testset "
            "FILE.aggregates.nc`.", alert_type="info")))
    tabs.append(("Observations", ObservationView(OBSERVATION_MODEL, max_upload_mb=UPLOAD_MB,
                                                     mock_table=MOCK_TABLE3).panel()))
    return pn.Column(pn.pane.Markdown(INTRO, margin=(0, 10)), tabs)


dashboard().servable(title="π-DOC Explorer")
