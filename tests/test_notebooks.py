"""Execute the notebooks top to bottom in smoke mode and check a few facts in their outputs.

Each notebook in ``notebooks/`` has a first code cell tagged ``parameters`` (papermill style); as
papermill does, a cell setting ``SMOKE = True`` is inserted right after it. The kernel is this
interpreter (``sys.executable``) through a private kernelspec, so neither a user-level ``python3``
kernelspec nor the venv's own is needed, and it inherits ``KERAS_HOME`` and ``PIDOC_CACHE_DIR``
from ``conftest.py``: the small embedded cluster that the smoke runs use is set up once in the
session's cache (~20-40 s on 2 busy cores) and reused by the later notebooks.

Run one by hand: ``python tests/test_notebooks.py notebooks/01_tour.ipynb`` (prints cell times).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT = 300  # s; the first notebook of a session sets up the embedded cluster
KERNEL_NAME = "python3"
#: TensorFlow's C++ start-up lines, which a reader should not see in a notebook's outputs.
_LOG_NOISE = re.compile(r"^[IWE]\d{4} |oneDNN|absl::|cuda_|TensorFlow binary is optimized")
#: Sentences about a state of the repository that has passed.
_STALE = re.compile(r"goes away once|once `weights/pidoc/` is|If no model is shipped yet")
#: A stylesheet the outputs would make the browser fetch from another host (a CDN: Panel's
#: stylesheets were). Scripts are not searched here: the inlined Bokeh JavaScript holds URLs it
#: never fetches offline; test_notebooks_browser.py counts the requests a live notebook makes.
_REMOTE_RESOURCE = re.compile(
    r"(?:https?:)?//(?!127\.0\.0\.1|localhost)[\w.-]+\.[a-z]{2,}/[^\s\"'\\]*?\.css\b")


def _kernel_spec_manager():
    """A kernelspec manager whose only ``python3`` kernel is this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager

    root = Path(tempfile.mkdtemp(prefix="pidoc-kernels-"))
    spec = root / KERNEL_NAME
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pidoc tests",
        "language": "python",
    }))
    return KernelSpecManager(kernel_dirs=[str(root)])


def parametrise(nb, **params):
    """Insert a cell assigning ``params`` after the cell tagged ``parameters`` (papermill style)."""
    index = next((i for i, c in enumerate(nb.cells)
                  if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise AssertionError("the notebook has no cell tagged 'parameters'")
    source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    cell["id"] = "injected-parameters"
    nb.cells.insert(index + 1, cell)
    return nb


def execute(path, *, timeout=CELL_TIMEOUT, append=None, **params):
    """Run a notebook with ``params`` injected (and the code ``append`` as a last cell, to read
    its state); returns (notebook, seconds per code cell)."""
    from jupyter_client.manager import KernelManager

    nb = parametrise(nbformat.read(path, as_version=4), **params)
    if append is not None:
        cell = nbformat.v4.new_code_cell(append)
        cell["id"] = "appended-by-test"
        nb.cells.append(cell)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=_kernel_spec_manager())
    client = nbclient.NotebookClient(nb, km=km, timeout=timeout, kernel_name=KERNEL_NAME,
                                     resources={"metadata": {"path": str(Path(path).parent)}},
                                     allow_errors=False)
    times = []

    def on_cell_executed(cell, cell_index, execute_reply=None, **_):
        times.append((cell_index, time.perf_counter()))

    client.on_cell_executed = on_cell_executed
    start = time.perf_counter()
    with _environ(env):
        client.execute()
    marks = [start] + [t for _, t in times]
    durations = [round(b - a, 2) for a, b in zip(marks, marks[1:])]
    return nb, durations


class _environ:
    """Temporarily set os.environ (the kernel inherits the test process's environment)."""

    def __init__(self, env):
        self.env, self.saved = env, None

    def __enter__(self):
        self.saved = dict(os.environ)
        os.environ.update(self.env)

    def __exit__(self, *exc):
        os.environ.clear()
        os.environ.update(self.saved)


def text_of(nb) -> str:
    """All stdout and text/plain outputs of a notebook, concatenated."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                parts.append(out["text"])
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def number_after(text, label):
    match = re.search(re.escape(label) + r"\s*([-+0-9.eE]+)", text)
    assert match, f"no {label!r} in the notebook's output"
    return float(match.group(1))


@pytest.fixture(scope="module")
def run_notebook():
    def run(name):
        path = NOTEBOOKS / name
        assert path.is_file(), f"{path} is missing"
        stored = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in stored.cells if c.cell_type == "code"), \
            f"{name} is committed with outputs; strip them"
        first_code = next(c for c in stored.cells if c.cell_type == "code")
        assert "parameters" in first_code.metadata.get("tags", []), \
            f"{name}: the first code cell must be tagged 'parameters'"
        assert re.search(r"^SMOKE = False", first_code.source, re.M), \
            f"{name}: the parameters cell must set SMOKE = False"
        start = time.perf_counter()
        nb, durations = execute(path, SMOKE=True)
        total = time.perf_counter() - start
        noise = [line for c in nb.cells for out in c.get("outputs", [])
                 if out.get("output_type") == "stream" and out.get("name") == "stderr"
                 for line in out["text"].splitlines() if _LOG_NOISE.search(line)]
        assert not noise, f"{name}: TensorFlow log lines in the outputs: {noise[:3]}"
        stale = [c.source[:80] for c in stored.cells if _STALE.search(c.source)]
        remote = sorted({m.group(0) for c in nb.cells for out in c.get("outputs", [])
                         for m in _REMOTE_RESOURCE.finditer(json.dumps(out))})
        assert not remote, f"{name}: outputs load resources from other hosts: {remote[:4]}"
        assert not stale, f"{name}: text that is no longer true: {stale}"
        print(f"{name}: {total:.1f} s (cells: {durations})")
        return nb, total

    return run


def test_tour(run_notebook):
    nb, _ = run_notebook("01_tour.ipynb")
    text = text_of(nb)
    assert number_after(text, "flux ratio F(2d)/F(d) =") == pytest.approx(0.25, abs=1e-3)
    assert number_after(text, "median pixel ratio") == pytest.approx(0.25, abs=2e-3)
    assert "PiDOC(" in text


def test_residuals(run_notebook):
    nb, _ = run_notebook("02_residuals.ipynb")
    text = text_of(nb)
    assert number_after(text, "test maps evaluated:") > 0
    assert "distance_r2" in text  # the summary table against the paper's numbers


def test_build_dataset(run_notebook):
    nb, _ = run_notebook("03_build_dataset.ipynb")
    text = text_of(nb)
    done, total = re.search(r"after resuming: (\d+)/(\d+) chunks", text).groups()
    assert done == total
    assert "identical to an uninterrupted build: True" in text
    assert number_after(text, "flux_mean") < 0  # log10 of a flux per pixel in Lsun/kpc^2


def test_train(run_notebook):
    nb, _ = run_notebook("04_train_gpu.ipynb")
    text = text_of(nb)
    assert "resuming 'age-distance'" in text
    assert "PiDOC(mass + age/distance" in text


if __name__ == "__main__":  # python tests/test_notebooks.py notebooks/NAME.ipynb [...]
    for arg in sys.argv[1:]:
        t0 = time.perf_counter()
        nb, durations = execute(arg, SMOKE=True)
        print(f"{arg}: {time.perf_counter() - t0:.1f} s; cells {durations}")
        print(text_of(nb)[-3000:])


def test_observations(run_notebook):
    nb, _ = run_notebook("05_observations.ipynb")
    text = text_of(nb)
    assert number_after(text, "(ratio") == pytest.approx(1.0, abs=2e-3)  # flux conserved
    assert number_after(text, "field colour g - r =") == pytest.approx(0.55, abs=1e-3)
    assert "training range:" in text and "ONLINE = False" in text
