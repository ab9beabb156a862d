"""The ``pidoc`` command's one error path and its light start-up."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from pidoc_core.cli import main


def _run_quietly(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _foreign_store(path):
    (path / "zarr.json").write_text(json.dumps({"attributes": {}}))  # a zarr store, not ours
    return path


@pytest.mark.parametrize("make, match", [
    (lambda p: p / "nowhere", r"dataset .*nowhere does not exist"),
    (lambda p: p, r"no dataset store here \(no zarr\.json\)"),
    (lambda p: _foreign_store(p), r"not a pi-DOC dataset store"),
])
def test_train_on_a_bad_or_missing_store_is_a_user_error(tmp_path, capsys, make, match):
    store = tmp_path / "store"
    store.mkdir()
    path = make(store)
    status = main(["train", "mass", "--dataset", str(path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("pidoc train: error: ") and "Traceback" not in err
    assert re.search(match, err), err


def test_every_pidoc_error_takes_the_one_path(tmp_path, capsys):
    """A PidocError of any module (here the dataset's, for ``dataset info``) exits 2."""
    assert main(["dataset", "info", str(tmp_path / "missing.zarr")]) == 2
    assert capsys.readouterr().err.startswith("pidoc dataset: error: ")


def test_help_and_snapshot_start_without_tensorflow():
    code = ("import sys\nfrom pidoc_core.cli import build_parser, main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "build_parser('snapshot')\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    assert _run_quietly(code).splitlines()[-1] == "False False"


def test_dataset_package_imports_keras_only_for_the_batch_stream():
    code = ("import sys\nimport pidoc_core.dataset as D\nbefore = 'keras' in sys.modules\n"
            "cls = D.BatchStream\n"
            "print(before, 'keras' in sys.modules, cls is D.batch_stream.__globals__['BatchStream'])")
    assert _run_quietly(code).splitlines()[-1] == "False True True"
