"""π-DOC Explorer dashboard: ``make serve`` = ``panel serve app/dashboard.py``.

Options after ``--args``:

- ``--weights DIR``: a saved π-DOC model (default the shipped one, or ``$PIDOC_WEIGHTS``);
- ``--snapshots DIR``: a directory of the user's snapshot files, read by
  :func:`pidoc_core.readers.read_snapshot` and offered beside the embedded analogues (fixed when
  the server starts, never typed into the page); ``--no-embedded`` offers only that directory;
- ``--testset FILE``: the aggregates ``pidoc evaluate`` writes beside its predictions (default the
  shipped ``weights/pidoc/testset_aggregates.nc``);
- ``--n-stars N``: stars of the embedded analogues (default 50,000).

The model, the snapshot sources and the snapshots are cached once per server process and shared
read-only by all sessions; each session has its own widgets and plot sources.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import panel as pn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from explore import ExploreView  # noqa: E402
from observe_tab import ObservationView  # noqa: E402
from testset import TestSetView  # noqa: E402

from pidoc_core.evolution import paper_runs  # noqa: E402
from pidoc_core.model import PiDOC  # noqa: E402

pn.extension(inline=True)


def _options():
    parser = argparse.ArgumentParser(prog="app/dashboard.py")
    parser.add_argument("--weights", default=os.environ.get("PIDOC_WEIGHTS"))
    parser.add_argument("--snapshots", default=None)
    parser.add_argument("--testset", default=None)
    parser.add_argument("--no-embedded", action="store_true",
                        help="offer only the --snapshots directory, not the embedded analogues")
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


SOURCES = pn.state.as_cached("pidoc-sources", _sources)
MODEL = pn.state.as_cached("pidoc-model", lambda: PiDOC.load(OPTIONS.weights))
try:
    UPSILON = float(MODEL.provenance["training_mass_to_light"])
except KeyError:
    raise SystemExit(f"{OPTIONS.weights or 'the shipped model'}: its manifest has no "
                     "'training_mass_to_light' (train with `pidoc train`, which records it)")
GRID = MODEL.provenance.get("training_grid")


def _snapshot(run: str, time_gyr: float):
    return pn.state.as_cached(f"pidoc-snapshot::{run}::{time_gyr:.4f}",
                              lambda: SOURCES[run].snapshot(time_gyr))




def _aggregates():
    import xarray as xr

    path = Path(OPTIONS.testset) if OPTIONS.testset else SHIPPED_TESTSET
    return xr.load_dataset(path) if path.is_file() else None


#: Largest FITS upload, MB; the server's websocket limit (Makefile) leaves room for base64.
UPLOAD_MB = 50
SHIPPED_TESTSET = (Path(__file__).resolve().parents[1] / "weights" / "pidoc"
                   / "testset_aggregates.nc")
AGGREGATES = pn.state.as_cached("pidoc-testset", _aggregates)

explore_view = ExploreView(SOURCES, MODEL, upsilon=UPSILON, snapshot_cache=_snapshot, grid=GRID)
tabs = pn.Tabs(("Explore", explore_view.panel()), dynamic=True)
if AGGREGATES is not None:
    tabs.append(("Test set", TestSetView(AGGREGATES).panel()))
else:
    tabs.append(("Test set", pn.pane.Alert(
        "No test-set evaluation found: run `pidoc evaluate` and pass `--args --testset "
        "FILE.aggregates.nc`.", alert_type="info")))
tabs.append(("Observations", ObservationView(MODEL, max_upload_mb=UPLOAD_MB).panel()))
pn.Column(
    pn.pane.Markdown("# π-DOC Explorer\nMass maps, ages and distances of globular clusters from "
                     "their light (Chardin & Bianchini 2021), on embedded cluster analogues."),
    tabs,
).servable(title="π-DOC Explorer")
