"""Fault tests of the package's writers: nothing half-written sits at the final path (issue #9).

``pidoc_core._atomic`` writes to a temporary file beside the destination and renames it into
place. These tests break writes in the middle (an exception after part of the file is written, a
SIGKILL of a writing process, a failing rename) and look at what is left on disk.
"""

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pidoc_core import _atomic
from pidoc_core._atomic import atomic_path, replace_directory

from .conftest import point_snapshot

REPO = Path(__file__).resolve().parents[1]
OLD = b"old complete version\n" * 100


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _temporaries(directory: Path, final: Path) -> list[str]:
    """Names of atomic_path temporaries of ``final`` in ``directory`` (``.name.XXXX<suffix>``)."""
    return [n for n in _listing(directory) if n.startswith(f".{final.name}.")]


def _disk_full():
    return OSError(errno.ENOSPC, "No space left on device (injected)")


# --------------------------------------------------------------------------------------------
# atomic_path


@pytest.mark.parametrize("old", [None, OLD], ids=["no-earlier-file", "earlier-file"])
def test_exception_mid_write_leaves_nothing_at_final_path(tmp_path, old):
    final = tmp_path / "out.bin"
    if old is not None:
        final.write_bytes(old)
    seen = {}
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(final) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"new partial data" * 1000)
                f.flush()
            seen["tmp"] = tmp
            seen["size"] = tmp.stat().st_size
            seen["listing"] = _listing(tmp_path)
            raise RuntimeError("boom")
    tmp = seen["tmp"]
    # the failure really came after a partial write, beside the destination, under a hidden name
    assert seen["size"] == 16_000
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(".out.bin.") and tmp.name.endswith(".part")
    assert tmp.name in seen["listing"]
    # ...and nothing of it is left
    assert not tmp.exists()
    if old is None:
        assert not final.exists()
        assert _listing(tmp_path) == []
    else:
        assert final.read_bytes() == old
        assert _listing(tmp_path) == ["out.bin"]


def test_keyboard_interrupt_mid_write_also_cleans_up(tmp_path):
    final = tmp_path / "out.bin"
    final.write_bytes(OLD)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert final.read_bytes() == OLD
    assert _listing(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o640])
def test_success_gives_content_and_mode(tmp_path, mode):
    final = tmp_path / "sub" / "dir" / "table.npy"  # parent directories are created
    final.parent.mkdir(parents=True)
    final.write_bytes(OLD)
    os.chmod(final, 0o666)
    with atomic_path(final, suffix=".npy", mode=mode) as tmp:
        assert tmp.suffix == ".npy" and tmp.parent == final.parent
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600  # private while being written
        assert final.read_bytes() == OLD  # the old file is untouched until the rename
        np.save(tmp, np.arange(5))
    np.testing.assert_array_equal(np.load(final), np.arange(5))
    assert stat.S_IMODE(final.stat().st_mode) == mode
    assert _listing(final.parent) == ["table.npy"]


def test_default_mode_and_new_directories(tmp_path):
    final = tmp_path / "a" / "b" / "c.txt"
    with atomic_path(final) as tmp:
        tmp.write_text("hello")
    assert final.read_text() == "hello"
    assert stat.S_IMODE(final.stat().st_mode) == 0o644


# --------------------------------------------------------------------------------------------
# a real crash: SIGKILL of a process in the middle of a write

_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from pidoc_core._atomic import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        with open(tmp, "wb") as f:
            for _ in range(20_000):  # ~1.3 GB if never killed; about 100 s at this pace
                f.write(b"N" * 65536)
                f.flush()
                time.sleep(0.005)
    print("finished")
""")


@pytest.mark.parametrize("old", [None, OLD], ids=["no-earlier-file", "earlier-file"])
def test_sigkill_mid_write_never_leaves_partial_file_at_final_path(tmp_path, old):
    final = tmp_path / "big.bin"
    if old is not None:
        final.write_bytes(old)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(final)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        written = 0
        while written < 512 * 1024:  # wait until the temporary holds a good part of a write
            assert proc.poll() is None, f"writer exited early: {proc.communicate()}"
            assert time.monotonic() < deadline, "the writer's temporary never grew"
            tmps = _temporaries(tmp_path, final)
            written = max([(tmp_path / n).stat().st_size for n in tmps], default=0)
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL and b"finished" not in out  # killed mid-write
    # the final path holds either nothing or exactly the earlier complete file
    if old is None:
        assert not final.exists()
    else:
        assert final.read_bytes() == old
    # SIGKILL runs no cleanup: the partial temporary stays behind, but only under its hidden name
    leftovers = _temporaries(tmp_path, final)
    assert len(leftovers) == 1 and leftovers[0].endswith(".part")
    assert (tmp_path / leftovers[0]).stat().st_size >= 512 * 1024
    assert set(_listing(tmp_path)) == set(leftovers) | ({"big.bin"} if old else set())
    # a later write is not disturbed by the debris
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"new complete version")
    assert final.read_bytes() == b"new complete version"


# --------------------------------------------------------------------------------------------
# replace_directory


def _make_tree(root: Path, files: dict) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return root


def _tree(root: Path) -> dict:
    if not root.exists():
        return None
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


OLD_TREE = {"a.txt": b"old a", "sub/b.bin": b"old b" * 100, "only_old.txt": b"gone after"}
NEW_TREE = {"a.txt": b"new a", "sub/b.bin": b"new b" * 200, "sub/deeper/c": b"new c"}


def test_replace_directory_into_empty_destination(tmp_path):
    src = _make_tree(tmp_path / "partial", NEW_TREE)
    dst = tmp_path / "store.zarr"
    assert replace_directory(src, dst) == dst
    assert _tree(dst) == NEW_TREE
    assert not src.exists()
    assert _listing(tmp_path) == ["store.zarr"]


def test_replace_directory_replaces_old_and_removes_aside_copy(tmp_path):
    src = _make_tree(tmp_path / "partial", NEW_TREE)
    dst = _make_tree(tmp_path / "store.zarr", OLD_TREE)
    replace_directory(src, dst)
    assert _tree(dst) == NEW_TREE  # the new complete directory, nothing of the old one
    assert not src.exists()
    assert _listing(tmp_path) == ["store.zarr"]  # no .store.zarr.old-* left


def test_replace_directory_only_renames_destination_is_never_partial(tmp_path, monkeypatch):
    """Destination is only ever touched by whole-directory renames: at every step it is the
    complete old tree, absent (between the two renames), or the complete new tree."""
    src = _make_tree(tmp_path / "partial", NEW_TREE)
    dst = _make_tree(tmp_path / "store.zarr", OLD_TREE)

    def no_copy(*args, **kwargs):
        raise AssertionError("replace_directory must not copy files into the destination")

    for name in ("copytree", "copy", "copy2", "copyfile", "move"):
        monkeypatch.setattr(_atomic.shutil, name, no_copy)
    real_replace = os.replace
    states = []

    def state():
        t = _tree(dst)
        return "absent" if t is None else "old" if t == OLD_TREE else "new" if t == NEW_TREE else t

    def spy_replace(a, b):
        states.append(state())
        real_replace(a, b)

    monkeypatch.setattr(_atomic.os, "replace", spy_replace)
    replace_directory(src, dst)
    states.append(state())
    assert states == ["old", "absent", "new"]


def test_replace_directory_failed_second_rename_keeps_old_directory(tmp_path, monkeypatch):
    src = _make_tree(tmp_path / "partial", NEW_TREE)
    dst = _make_tree(tmp_path / "store.zarr", OLD_TREE)
    real_replace = os.replace

    def failing_replace(a, b):
        if Path(a) == src:
            raise _disk_full()
        real_replace(a, b)

    monkeypatch.setattr(_atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        replace_directory(src, dst)
    assert _tree(dst) == OLD_TREE
    assert sorted(_listing(tmp_path)) == ["partial", "store.zarr"]


# --------------------------------------------------------------------------------------------
# the package's real writers with a failure injected after part of the file is written


def _snapshot():
    rng = np.random.default_rng(0)
    return point_snapshot(rng.normal(size=(2000, 3)), luminosity=2.0, mass=0.7)


@pytest.mark.parametrize("ext", [".ecsv", ".fits", ".h5", ".parquet"])
@pytest.mark.parametrize("old", [None, OLD], ids=["no-earlier-file", "earlier-file"])
def test_write_table_failing_mid_write(tmp_path, monkeypatch, ext, old):
    from astropy.table import Table

    from pidoc_core.readers import write_table

    final = tmp_path / f"snap{ext}"
    if old is not None:
        final.write_bytes(old)
    real_write = Table.__dict__["write"]  # a descriptor: bind it to the table being written
    targets = []

    def write_then_fail(self, target, *args, **kwargs):
        # the real writer produces the file, then the disk "fills up": half of it stays written
        targets.append(Path(target))
        real_write.__get__(self, type(self))(target, *args, **kwargs)
        size = Path(target).stat().st_size
        with open(target, "r+b") as f:
            f.truncate(size // 2)
        targets.append(Path(target).stat().st_size)
        raise _disk_full()

    monkeypatch.setattr(Table, "write", write_then_fail)
    with pytest.raises(OSError, match="injected"):
        write_table(_snapshot(), final, overwrite=True)
    tmp, partial_size = targets
    assert tmp != final and tmp.parent == tmp_path and partial_size > 0  # wrote beside, not at
    assert not tmp.exists()
    if old is None:
        assert _listing(tmp_path) == []
    else:
        assert final.read_bytes() == old
        assert _listing(tmp_path) == [final.name]


def test_evolution_cache_save_npz_failing_mid_write(tmp_path, monkeypatch):
    from numpy.lib import format as npformat

    from pidoc_core.evolution._cache import load_npz, save_npz

    final = tmp_path / "run-0123.npz"
    save_npz(final, x=np.arange(3))  # an earlier complete cache entry
    before = final.read_bytes()
    real_write_array = npformat.write_array
    sizes = []

    def write_array_then_fail(fp, array, *args, **kwargs):
        if sizes:  # the first member went into the zip; the second fails half-way
            fp.write(b"\x93NUMPY partial")
            tmps = _temporaries(tmp_path, final)
            sizes.append((tmp_path / tmps[0]).stat().st_size)
            raise _disk_full()
        real_write_array(fp, array, *args, **kwargs)
        sizes.append("first")

    monkeypatch.setattr(npformat, "write_array", write_array_then_fail)
    with pytest.raises(OSError, match="injected"):
        save_npz(final, positions=np.ones((5000, 3)), masses=np.ones(5000))
    assert sizes[0] == "first" and sizes[1] > 100_000 # really failed after a partial write
    assert final.read_bytes() == before
    assert _listing(tmp_path) == [final.name]
    assert load_npz(final)["x"].tolist() == [0, 1, 2]
    final.unlink()
    with pytest.raises(OSError, match="injected"):
        save_npz(final, positions=np.ones((5000, 3)), masses=np.ones(5000))
    assert _listing(tmp_path) == []
    assert load_npz(final) is None


@pytest.mark.parametrize("old", [None, OLD], ids=["no-earlier-file", "earlier-file"])
def test_cli_netcdf_writer_failing_mid_write(tmp_path, monkeypatch, old):
    import scipy.io._netcdf as scipy_netcdf

    from pidoc_core.cli import _atomic_netcdf

    final = tmp_path / "obs.nc"
    if old is not None:
        final.write_bytes(old)
    real_write_var = scipy_netcdf.netcdf_file._write_var_data
    written = []

    def write_var_then_fail(self, name):
        if written:  # header and the first variable are on disk; the second fails
            self.fp.flush()
            written.append(Path(self.filename).stat().st_size)
            raise _disk_full()
        real_write_var(self, name)
        written.append(name)

    monkeypatch.setattr(scipy_netcdf.netcdf_file, "_write_var_data", write_var_then_fail)
    ds = xr.Dataset({"flux": (("y", "x"), np.ones((160, 160), np.float32)),
                     "mass": (("y", "x"), np.zeros((160, 160), np.float32))})
    with pytest.raises(OSError, match="injected"):
        _atomic_netcdf(ds, final)
    assert written[1] > 160 * 160 * 4  # the temporary held the header and one whole variable
    if old is None:
        assert _listing(tmp_path) == []
    else:
        assert final.read_bytes() == old
        assert _listing(tmp_path) == [final.name]
    monkeypatch.undo()
    _atomic_netcdf(ds, final)  # and without the fault the same call writes a readable file
    with xr.open_dataset(final, engine="scipy") as back:
        assert back.flux.shape == (160, 160)
    assert _listing(tmp_path) == [final.name]


def _load_or_build_worker(path, barrier, marks, out):
    import numpy as np

    from pidoc_core.evolution._cache import load_or_build

    def build():
        (marks / f"built-{os.getpid()}").touch()
        time.sleep(1.0)  # long enough for the other process to arrive while this one builds
        return {"x": np.arange(4) * os.getpid()}

    barrier.wait()
    np.save(out, load_or_build(path, build)["x"])


def test_evolution_cache_concurrent_processes_build_once(tmp_path):
    """Two processes that want the same missing cache file at once (the workers of a parallel
    dataset build) build it once: the second waits for the first's lock and loads its file."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    final, marks = tmp_path / "sse-table-0123.npz", tmp_path / "marks"
    marks.mkdir()
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_load_or_build_worker,
                         args=(final, barrier, marks, tmp_path / f"out{i}.npy")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    builders = sorted(marks.iterdir())
    assert len(builders) == 1
    builder_pid = int(builders[0].name.split("-")[1])
    for i in range(2):
        assert np.load(tmp_path / f"out{i}.npy").tolist() == [0, builder_pid, 2 * builder_pid,
                                                              3 * builder_pid]
    # what is left: the file and its (empty) hidden lock, no temporary
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        ".sse-table-0123.npz.lock", *sorted(f"out{i}.npy" for i in range(2)), final.name]
