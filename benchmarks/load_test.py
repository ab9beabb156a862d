"""Load test: concurrent browser sessions moving sliders on one ``panel serve``, loopback only.

One server (``app/dashboard.py`` with the shipped weights unless ``--weights``) on 127.0.0.1 and
one headless Chromium (Debian's, offline flags) with one Playwright context per session:

1. **single session**: ``--single-moves`` moves alone; its latencies are the anchor;
2. ``--rounds`` rounds of ``--sessions`` contexts opened together, each making ``--moves`` moves
   of the distance, PSF, centre-shift and snapshot-time sliders to values no other session uses
   (on the embedded runs, times no one has asked for yet: COSMIC evolves them inside the server),
   all sessions at once, each waiting for its own repaint before its next move.

Checked, and any failure makes the script exit with status 1:

- **errors**: none in any page (uncaught exceptions, console errors, a move without repaint in
  30 s, 300 s for a new snapshot time) nor in the server's log (tracebacks, ``ERROR``, a
  signal); the server process is alive at the end;
- **cross-talk**: after every move the field table the *server* renders for that session shows
  that session's own distance; at the end of each round every session's flux image (read from
  its page) equals ``observe()`` of the page's own run, time and settings computed here,
  and differs from what every other session's settings give;
- **memory**: the server's resident memory after the single session, after round 1 and after
  the last round (sessions closed, the server's unused-session sweep run): growth from round 1
  to the last round (what a leak would show) must stay within ``--leak-bound-mib``, and
  growth over the single-session level within ``--memory-bound-mib``.

The time is bounded by ``--time-limit`` (s) and the counts by the options. The server runs with
Bokeh's default session lifetimes (closed sessions are discarded after 15 s, checked every 17 s),
hence ``--settle`` of 36 s before each memory reading. Do not shorten them with
``--unused-session-lifetime``: under load a page can take longer than that between its HTML and
its websocket, Bokeh then discards the new session and rebuilds it without Panel's local resource
path, and the page asks cdn.holoviz.org for its stylesheets (measured here: 2 s lifetimes gave
~16 such failed requests per session; the test counts them as errors).

Run: ``python benchmarks/load_test.py [--sessions 8] [--moves 9] [--rounds 2] [--json FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import (CHROMIUM, CHROMIUM_ARGS, NUMBERS_JS, SET_AND_TIME_JS,  # noqa: E402
                     serve_dashboard)
from results import Figure, spread, write_json  # noqa: E402

__all__ = ["main", "session_moves", "summarise"]

_IDLE = "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"

_STATE_JS = """
(withFlux) => {
  const models = [...Bokeh.documents[0].all_models];
  const run = models.find(m => m.title === 'Run' && 'options' in m);
  const slider = t => models.find(m => m.title === t && 'value' in m).value;
  const flux = models.find(m => m.title && m.title.text === 'Mock V-band image')
    .renderers[0].data_source;
  return {
    numbers: (""" + NUMBERS_JS + """)(),
    run: run ? run.value : null,
    distance: slider('Distance (kpc)'), psf: slider('PSF FWHM (arcsec)'),
    shift_x: slider('Centre shift x (arcsec)'), shift_y: slider('Centre shift y (arcsec)'),
    flux: withFlux ? Array.from(flux.data.image[0]) : null,
  };
}
"""

#: The DiscreteSlider's options end (its last index).
_TIME_END_JS = """() => {
  const models = [...Bokeh.documents[0].all_models];
  const label = models.find(m => typeof m.text === 'string' && m.text.startsWith('Snapshot time'));
  const box = models.find(m => Array.isArray(m.children) && m.children.includes(label));
  return box.children.find(c => c !== label && 'start' in c).end;
}"""
TIME = "Snapshot time (Gyr)"
_SNAPSHOT = re.compile(r"^(.*?) at ([0-9.]+) Gyr")


def session_moves(index: int, n_moves: int) -> list[tuple[str, float]]:
    """Moves of session ``index`` (0-15): distance, PSF, shift and time values no other session
    uses.

    No value equals the dashboard's default (15 kpc, 1.0", 0"), and every move changes its slider,
    so every move must repaint the maps. A time is a fraction of the run's span of snapshot times
    (the page picks the nearest option): 0.25-0.4 and 0.999 in turn, so it differs from the default
    (the time nearest 12 Gyr, the last of a short run) and from the previous time move.

    Examples
    --------
    >>> session_moves(0, 4)
    [('Distance (kpc)', 16.0), ('PSF FWHM (arcsec)', 0.575), ('Centre shift x (arcsec)', -3.875), ('Snapshot time (Gyr)', 0.25)]
    """
    if not 0 <= index < 16:
        raise ValueError(f"session index must be in 0-15, not {index}")
    moves = []
    for j in range(n_moves):
        k = j // 4
        if j % 4 == 0:
            moves.append(("Distance (kpc)", float(16 + index + 17 * (k % 8))))
        elif j % 4 == 1:
            moves.append(("PSF FWHM (arcsec)", 0.575 + 0.05 * index + 0.8 * (k % 2)))
        elif j % 4 == 2:
            moves.append(("Centre shift x (arcsec)", -3.875 + 0.25 * index + 4.0 * (k % 2)))
        else:
            moves.append((TIME, 0.25 + 0.01 * index if k % 2 == 0 else 0.999))
    return moves


def rss_mib(pid: int) -> float:
    """Resident memory of a process (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Session:
    """One browser context on the dashboard: its moves, latencies and problems."""

    def __init__(self, index, context, page):
        self.index, self.context, self.page = index, context, page
        self.latencies: list[float] = []
        self.time_latencies: list[float] = []  # new snapshot times, apart: COSMIC's seconds
        self.errors: list[str] = []
        self.crosstalk: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: msg.type == "error"
                and self.errors.append(f"console error: {msg.text} at {msg.location}"))
        page.on("requestfailed", lambda req: self.errors.append(
            f"request failed: {req.url} ({req.failure})"))

    async def move(self, title, value):
        timeout_ms = 30_000
        if title == TIME:  # a fraction of the run's times -> the option's index
            value = int(round(value * await self.page.evaluate(_TIME_END_JS)))
            timeout_ms = 300_000  # a new time: COSMIC evolves the run in the server
        try:
            ms = await self.page.evaluate(SET_AND_TIME_JS, [title, value, timeout_ms])
            (self.time_latencies if title == TIME else self.latencies).append(ms)
        except Exception as exc:  # a timeout or a JS error is a failed move, counted
            self.errors.append(f"move {title} -> {value}: {type(exc).__name__}: {exc}")
            return
        state = await self.page.evaluate(_STATE_JS, False)  # no map: keep the check light
        shown = state["numbers"]["cells"].get("Distance (kpc)", {}).get("true")
        if shown is None:
            self.errors.append("the field table has no distance row")
        elif abs(float(shown) - state["distance"]) > 0.5:
            self.crosstalk.append(f"session {self.index}: the server shows d = {shown} "
                                  f"kpc, its own slider says {state['distance']}")

    async def run(self, moves):
        for title, value in moves:
            await self.move(title, value)

    async def state(self):
        """The page's settings, the server's field table and its flux map."""
        return await self.page.evaluate(_STATE_JS, True)


async def open_session(browser, url, index, timeout_ms):
    context = await browser.new_context(viewport={"width": 1600, "height": 1000})
    page = await context.new_page()
    session = Session(index, context, page)
    await page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    await page.wait_for_function(_IDLE, timeout=timeout_ms)
    return session


def expected_flux(states, sources):
    """observe() of each page's run, time and settings, in log10 flux (what its map must show)."""
    from pidoc_core.imager import ObservationSetup, observe

    out = []
    for st in states:
        snap_name, time_gyr = _SNAPSHOT.search(st["numbers"]["caption"]).groups()
        snap = sources[st["run"]].snapshot(float(time_gyr))
        setup = ObservationSetup(distance_kpc=st["distance"], psf_fwhm_arcsec=st["psf"],
                                 shift_arcsec=(st["shift_x"], st["shift_y"]))
        out.append(observe(snap, setup).flux.values.astype(np.float32).ravel())
    return out


def check_crosstalk(states, sources, *, atol=1e-4):
    """Problems found comparing every page's flux image with its own and the others' settings."""
    problems = []
    expected = expected_flux(states, sources)
    for i, st in enumerate(states):
        shown = np.asarray(st["flux"], dtype=np.float32)
        own = np.abs(shown - expected[i]).max()
        if own > atol:
            problems.append(f"session {i}: its flux map differs from observe() of its own "
                            f"settings by {own:.2g} dex")
        for j, other in enumerate(expected):
            if j != i and np.abs(shown - other).max() <= atol:
                problems.append(f"session {i}: its flux map equals session {j}'s settings")
    return problems


async def settle(pid, seconds):
    """Wait for the server's unused-session sweep; return its resident memory (MiB)."""
    await asyncio.sleep(seconds)
    return rss_mib(pid)


async def drive(url, pid, args, sources):
    from playwright.async_api import async_playwright

    timeout_ms = int(args.page_timeout * 1e3)
    report = {"rounds": []}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            single = await open_session(browser, url, 0, timeout_ms)
            await single.move("Distance (kpc)", 150.0)  # warm-up, not counted
            single.latencies.clear()
            moves = session_moves(0, args.single_moves)
            await single.run(moves)
            report["single"] = single
            await single.context.close()
            report["rss_single"] = await settle(pid, args.settle)
            print(f"single session: {len(single.latencies)} moves, median "
                  f"{np.median(single.latencies):.0f} ms; server RSS {report['rss_single']:.0f} MiB")
            for r in range(args.rounds):
                t0 = time.perf_counter()
                sessions = await asyncio.gather(*(open_session(browser, url, i, timeout_ms)
                                                  for i in range(args.sessions)))
                opened = time.perf_counter() - t0
                await asyncio.gather(*(s.run(session_moves(s.index, args.moves))
                                       for s in sessions))
                states = await asyncio.gather(*(s.state() for s in sessions))
                problems = check_crosstalk(states, sources)
                for s in sessions:
                    await s.context.close()
                rss = await settle(pid, args.settle)
                report["rounds"].append({"sessions": sessions, "problems": problems,
                                         "rss": rss, "opened_s": opened})
                lat = [x for s in sessions for x in s.latencies]
                print(f"round {r + 1}: {len(sessions)} sessions opened together in {opened:.1f} s;"
                      f" {len(lat)} moves, median {np.median(lat):.0f} ms, p95 "
                      f"{np.percentile(lat, 95):.0f} ms; errors "
                      f"{sum(len(s.errors) for s in sessions)}, cross-talk "
                      f"{sum(len(s.crosstalk) for s in sessions) + len(problems)}; server RSS "
                      f"{rss:.0f} MiB")
        finally:
            await browser.close()
    return report


def server_log_errors(path: Path) -> list[str]:
    """Lines of the server's log that report an error."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return [line for line in text.splitlines()
            if "Traceback" in line or " ERROR" in line or line.startswith("ERROR")
            or "Received signal" in line]


def main(argv=None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--moves", type=int, default=9, help="moves per session per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--single-moves", type=int, default=18)
    parser.add_argument("--memory-bound-mib", type=float, default=256.0,
                        help="allowed growth of the server's RSS over its single-session level")
    parser.add_argument("--leak-bound-mib", type=float, default=64.0,
                        help="allowed growth of the server's RSS from round 1 to the last round")
    parser.add_argument("--settle", type=float, default=36.0,
                        help="seconds to wait after closing sessions before reading memory")
    parser.add_argument("--page-timeout", type=float, default=300.0, help="s to load a page")
    parser.add_argument("--time-limit", type=float, default=1200.0, help="s for the whole test")
    parser.add_argument("--weights", default=os.environ.get("PIDOC_WEIGHTS"))
    parser.add_argument("--n-stars", type=int, default=50_000, help="stars of the analogues")
    parser.add_argument("--snapshots", default=None,
                        help="serve this directory of snapshot files instead of the analogues")
    parser.add_argument("--serve-options", nargs="*", default=[],
                        help="extra options for panel serve")
    parser.add_argument("--log", default="/tmp/pidoc-load-test.log", help="server log file")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not 2 <= args.sessions <= 16 or args.moves < 4 or args.rounds < 1:
        parser.error("need 2-16 sessions, >= 4 moves (one a time) and >= 1 round")

    serve_args = ["--weights", args.weights] if args.weights else []
    if args.snapshots:  # the dashboard names the directory's source "user: <name>"
        from pidoc_core.dataset import SnapshotDirectory

        sources = {f"user: {Path(args.snapshots).name}": SnapshotDirectory(args.snapshots)}
        serve_args += ["--snapshots", args.snapshots, "--no-embedded"]
    else:
        from pidoc_core.evolution import paper_runs

        sources = paper_runs(n_stars=args.n_stars, progress=False)
        serve_args += ["--n-stars", args.n_stars]
    log = Path(args.log)
    t_start = time.perf_counter()
    with serve_dashboard(args=serve_args, log_path=log,
                         options=args.serve_options) as (url, proc):
        rss_start = rss_mib(proc.pid)
        report = asyncio.run(asyncio.wait_for(drive(url, proc.pid, args, sources),
                                              timeout=args.time_limit))
        alive = proc.poll() is None
        log_errors = server_log_errors(log)  # before the shutdown's own SIGTERM line
    elapsed = time.perf_counter() - t_start
    report.update(rss_start=rss_start, alive=alive, log_errors=log_errors, elapsed=elapsed)
    return summarise(args, report)


def summarise(args, report) -> list[Figure]:
    """Print what the rounds measured; exit with status 1 on any error, cross-talk or leak."""
    rss_start, alive, log_errors, elapsed = (report[k] for k in ("rss_start", "alive",
                                                                 "log_errors", "elapsed"))
    single = report["single"]
    rounds = report["rounds"]
    loaded = [x for rd in rounds for s in rd["sessions"] for x in s.latencies]
    errors = single.errors + [e for rd in rounds for s in rd["sessions"] for e in s.errors]
    errors += [f"server log: {line}" for line in log_errors]
    crosstalk = [c for rd in rounds for s in rd["sessions"] for c in s.crosstalk]
    crosstalk += [p for rd in rounds for p in rd["problems"]]
    if not alive:
        errors.append("the server process died during the test")
    times = [x for rd in rounds for s in rd["sessions"] for x in s.time_latencies]
    expected_moves = args.rounds * args.sessions * args.moves
    if len(loaded) + len(times) != expected_moves:
        errors.append(f"{expected_moves - len(loaded) - len(times)} of {expected_moves} moves did "
                      "not complete")
    rss_single, rss_first, rss_last = report["rss_single"], rounds[0]["rss"], rounds[-1]["rss"]
    growth, leak = rss_last - rss_single, rss_last - rss_first
    memory_ok = growth <= args.memory_bound_mib and leak <= args.leak_bound_mib

    s_med, s05, s95, s_n = spread(single.latencies)
    l_med, l05, l95, l_n = spread(loaded)
    print(f"\nserver RSS: {rss_start:.0f} MiB at start, {rss_single:.0f} after the single session, "
          + ", ".join(f"{rd['rss']:.0f} after round {i + 1}" for i, rd in enumerate(rounds))
          + f" MiB; growth {growth:+.0f} MiB (bound {args.memory_bound_mib:.0f}), round 1 -> "
          f"last {leak:+.0f} MiB (bound {args.leak_bound_mib:.0f})")
    print(f"single session: median {s_med:.0f} ms, p95 {s95:.0f} ms over {s_n} moves")
    print(f"{args.sessions} sessions at once: median {l_med:.0f} ms, p95 {l95:.0f} ms over {l_n} "
          f"moves; x{l_med / s_med:.1f} the single-session median")
    if times:
        print(f"new snapshot times under load: {len(times)} moves, median {np.median(times):.0f} ms,"
              f" max {max(times):.0f} ms (COSMIC evolves each first request in the server)")
    print(f"errors: {len(errors)}; cross-talk: {len(crosstalk)}; {elapsed:.0f} s in all")
    for line in (errors + crosstalk)[:20]:
        print("  " + line)

    figures = [
        Figure("load", f"{args.sessions} concurrent sessions, slider -> repaint, {l_n} moves in "
               f"{args.rounds} rounds; errors {len(errors)}, cross-talk {len(crosstalk)}", "ms",
               l_med, l05, l95, l_n, "no errors, no cross-talk", not errors and not crosstalk,
               "1 session alone", s_med, "ms", l_med / s_med, "loaded / alone"),
        Figure("load", f"server RSS growth over the single-session level ({rss_single:.0f} MiB) "
               f"after {args.rounds} rounds; round 1 -> last {leak:+.0f} MiB", "MiB", growth,
               growth, growth, 1, f"<= {args.memory_bound_mib:.0f} MiB, round 1 -> last "
               f"<= {args.leak_bound_mib:.0f} MiB", memory_ok, "RSS after the single session",
               rss_single, "MiB", rss_last / rss_single, "after / before"),
    ]
    if args.json:
        write_json(figures, args.json)
    if errors or crosstalk or not memory_ok:
        raise SystemExit(1)
    return figures


if __name__ == "__main__":
    main()
