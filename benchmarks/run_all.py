"""``make bench``: run every benchmark in its own process and write ``benchmarks/RESULTS.md``.

Each benchmark is a script of this directory that can also run alone (see its docstring); here
each is called with ``--json`` and its figures (median, 5–95 % spread, target, and the ratio to
an anchor measured in the same run) are gathered in one table, followed by every script's own
output. A benchmark that fails is reported as failed, the others still run, and the exit status
is 1. (``benchmarks/realism.py`` compares the embedded source's physics with the paper, not
speed; it runs on its own and its numbers are in the README.)

Run: ``python benchmarks/run_all.py [--only imager dataset ...] [--output FILE]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import read_json, render_table  # noqa: E402

#: (short name, script, extra arguments): the order of ``make bench``.
BENCHMARKS = (
    ("imager", "bench_imager.py", ()),
    ("evolution", "bench_evolution.py", ()),
    ("dataset", "bench_dataset.py", ()),
    ("pipeline", "bench_pipeline.py", ()),
    ("inference", "bench_inference.py", ()),
    ("dashboard", "bench_dashboard.py", ()),
    ("load", "load_test.py", ()),
)


def machine() -> str:
    """One line on the machine, the code and the libraries the numbers were measured with."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        mem_txt = f", {mem:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        mem_txt = ""
    versions = []
    for dist in ("numpy", "scipy", "astropy", "xarray", "zarr", "dask", "tensorflow-cpu",
                 "tensorflow", "keras", "panel", "bokeh", "playwright"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return (f"{cpu}, {cores} cores{mem_txt}; Python {platform.python_version()}; "
            + ", ".join(versions))


def git_commit() -> str:
    """The checkout's commit, with ``+changes`` when the tree differs from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, check=True,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=HERE, capture_output=True, text=True).stdout.strip()
        return rev + (" +changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


_NOISE = re.compile(r"\d+%\|.*\||^WARNING:tensorflow:|^Cause: |^To silence this warning")


def _tail(text: str, lines: int = 40) -> str:
    """The last lines of a script's output, without progress bars and TensorFlow chatter."""
    kept = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    kept = [line for line in kept if line.strip() and not _NOISE.search(line)]
    return "\n".join(kept[-lines:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [b[0] for b in BENCHMARKS]
    parser.add_argument("--only", nargs="+", choices=names, default=names,
                        help="run only these benchmarks")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--timeout", type=float, default=3600.0, help="s per benchmark")
    args = parser.parse_args(argv)

    started = datetime.datetime.now(datetime.timezone.utc)
    commit = git_commit()  # the code the benchmarks import, before anything can change it
    figures, sections, failed = [], [], []
    with tempfile.TemporaryDirectory(prefix="pidoc-bench-") as tmp:
        for name, script, extra in BENCHMARKS:
            if name not in args.only:
                continue
            out_json = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / script), *extra, "--json", str(out_json)]
            print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(cmd, cwd=HERE.parent, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, timeout=args.timeout,
                                      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                           "PYTHONUNBUFFERED": "1"})
                status, output = proc.returncode, proc.stdout
            except subprocess.TimeoutExpired as exc:
                status = "timeout"
                output = (exc.stdout or b"").decode(errors="replace") if isinstance(
                    exc.stdout, bytes) else (exc.stdout or "")
            wall = time.perf_counter() - t0
            found = read_json(out_json) if out_json.exists() else []
            figures.extend(found)
            if status != 0 or not found:
                failed.append(name)
            print(_tail(output, 12), flush=True)
            print(f"-- {name}: exit {status}, {wall:.0f} s, {len(found)} figures", flush=True)
            sections.append(
                f"### {name}\n\n`python benchmarks/{script} {' '.join(extra)}`"
                f" — exit status {status}, {wall:.0f} s wall time\n\n```text\n"
                f"{_tail(output)}\n```\n")

    doc = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`python benchmarks/run_all.py`) on "
        f"{started:%Y-%m-%d %H:%M} UTC at commit {commit}.",
        "",
        f"Machine: {machine()}.",
        "",
        "Each figure is the median over `n` repeats with its 5th–95th percentile spread, the "
        "issue's target, and its ratio to an anchor measured in the same run (so a slower or "
        "busier machine moves the figure and its anchor together). Each script runs alone too: "
        "the command is given above its output.",
        "",
    ]
    if failed:
        doc += [f"**Failed: {', '.join(failed)}** (see the output below).", ""]
    doc += [render_table(figures), "", "## Output of each benchmark", "", *sections]
    Path(args.output).write_text("\n".join(doc))
    print(f"wrote {args.output}; {len(figures)} figures; "
          f"{'failed: ' + ', '.join(failed) if failed else 'all benchmarks ran'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
