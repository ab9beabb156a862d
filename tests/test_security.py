"""Security checks of issue #9, with factual tests that can fail.

1. The server: ``make serve`` binds to loopback by default. We check the command that ``make -n
   serve`` prints, then run that exact command (with only a free port) and probe it from outside:
   it must refuse connections on the machine's other addresses, refuse websockets from foreign
   origins and not serve files outside its static roots. After a session has been opened, every
   socket the server process listens on must be loopback. The only other thing that listens, the
   dataset builder's dask ``LocalCluster``, gets the same check.
2. Shipped code (``pidoc_core/``, ``app/``, and the notebooks' code cells) holds no unsafe
   deserialisation and no eval/exec. The check parses the code with :mod:`ast`, so comments and
   docstrings don't count. It lists every offence as ``file:line``.
3. Uploads through :class:`ObservationView`, without a browser. An upload over the size limit is
   refused before anything parses it. Content that is not FITS is refused without being unpickled:
   live pickle payloads never fire. A user-supplied file name never reaches the file system (an
   audit hook records every path touched). The page has no widget through which a user could type
   a path.

Audit hooks cannot be removed, so the one installed here checks a module-level flag and does
nothing outside :func:`audited` blocks.
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import gzip
import http.client
import io
import ipaddress
import json
import os
import pickle
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest

from .test_observe_tab import fits_bytes, model  # noqa: F401  (fixtures shared with that file)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from browser import stop_process_group  # noqa: E402

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


# =============================================================================================
# audit hook: records file-system, process, unpickling and network events while switched on
# =============================================================================================

_AUDIT = {"on": False, "log": [], "installed": False}
_PATH_EVENTS = {
    "open", "os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link",
    "os.truncate", "os.chmod", "os.chown", "os.chdir", "os.utime", "os.listdir", "os.scandir",
    "os.mkfifo", "os.mknod", "glob.glob", "glob.glob/2", "tempfile.mkstemp", "tempfile.mkdtemp",
}
_CODE_EVENTS = {"pickle.find_class", "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn",
                "os.spawn", "os.fork", "os.forkpty", "os.startfile"}
_NET_EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request",
               "http.client.connect"}


def _text(value) -> str:
    try:
        if isinstance(value, (bytes, os.PathLike)):
            return os.fsdecode(value)
        return str(value)
    except Exception:  # noqa: BLE001 - an audit hook must never raise
        return "<unprintable>"


def _audit_hook(event, args):
    if not _AUDIT["on"]:
        return
    if event in _PATH_EVENTS or event.startswith("shutil.") or event in _CODE_EVENTS \
            or event in _NET_EVENTS:
        _AUDIT["log"].append((event, tuple(_text(a) for a in args)))


@contextlib.contextmanager
def audited():
    """Record audit events inside the block; yields the list of ``(event, args-as-text)``."""
    if not _AUDIT["installed"]:
        sys.addaudithook(_audit_hook)
        _AUDIT["installed"] = True
    log = []
    _AUDIT["log"], _AUDIT["on"] = log, True
    try:
        yield log
    finally:
        _AUDIT["on"] = False
        _AUDIT["log"] = []


def _events(log, names):
    return [(e, a) for e, a in log if e in names or any(e.startswith(n) for n in names
                                                          if n.endswith("."))]


# =============================================================================================
# 1. the server binds to loopback
# =============================================================================================

def _make_env():
    """The environment without anything that would override the Makefile's defaults."""
    drop = {"ADDRESS", "PORT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _make_serve_argv(*make_args, env=None):
    """The ``panel serve`` command that ``make serve`` would run (``make -n``: no side effect)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "serve", *make_args], cwd=REPO, env=env or _make_env(),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    commands = [shlex.split(line) for line in out.replace("\\\n", " ").splitlines()
                if line.strip()]
    serve = [c for c in commands if len(c) > 1 and Path(c[0]).name == "panel" and c[1] == "serve"]
    assert len(serve) == 1, f"`make -n serve` should print one `panel serve` command:\n{out}"
    return serve[0]


def _options(argv) -> dict[str, list[str]]:
    """``--flag value`` and ``--flag=value`` pairs of a command line (after ``--args``: none)."""
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--args":
            break
        if token.startswith("--"):
            if "=" in token:
                key, value = token.split("=", 1)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                key, value = token, argv[i + 1]
                i += 1
            else:
                key, value = token, ""
            opts.setdefault(key, []).append(value)
        i += 1
    return opts


def test_make_serve_binds_loopback_and_allows_loopback_origins_only():
    argv = _make_serve_argv()
    opts = _options(argv[2:])
    assert opts.get("--address") == ["127.0.0.1"], argv
    assert not any(t in " ".join(argv) for t in ("0.0.0.0", "[::]", "--address ::")), argv
    assert "--unix-socket" not in opts and "--allow-websocket-origin=*" not in argv
    origins = opts.get("--allow-websocket-origin", [])
    assert origins, "without --allow-websocket-origin Bokeh allows only the served address"
    for origin in origins:
        host, _, port = origin.rpartition(":")
        assert _is_loopback_host(host) and port == opts["--port"][0], origin
    # the recipe sets no environment that would widen Bokeh's origin or address settings
    assert not any(t.startswith(("BOKEH_ALLOW_WS_ORIGIN", "BOKEH_ADDRESS")) for t in argv)


def test_an_exported_address_variable_does_not_widen_the_bind():
    argv = _make_serve_argv(env={**_make_env(), "ADDRESS": "0.0.0.0"})
    assert _options(argv[2:])["--address"] == ["127.0.0.1"], argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _non_loopback_addresses():
    """This machine's own non-loopback IP addresses (no link-local ones: they need a scope)."""
    texts = []
    for cmd in (["hostname", "-I"], ["ip", "-o", "addr"]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            texts.append(subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout)
    candidates = set(" ".join(texts).split())
    candidates |= set(re.findall(r"inet6? ([0-9A-Fa-f.:]+)/", " ".join(texts)))
    with contextlib.suppress(OSError):
        candidates.add(socket.gethostbyname(socket.gethostname()))
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.123", 9))  # UDP "connect" sends nothing; it picks the outgoing address
        candidates.add(s.getsockname()[0])
    found = set()
    for text in candidates:
        try:
            ip = ipaddress.ip_address(text.split("%")[0].split("/")[0])
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast):
            found.add(ip)
    return sorted(found, key=lambda ip: (ip.version, int(ip)))


def _reachable_here(ip) -> bool:
    """Can this machine connect to itself on ``ip``? (A control: a wildcard listener answers.)"""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as server:
            server.bind(("::" if ip.version == 6 else "0.0.0.0", 0))
            server.listen(1)
            port = server.getsockname()[1]
            with socket.create_connection((str(ip), port), timeout=3):
                return True
    except OSError:
        return False


def _processes(*, group=None, parent=None):
    """PIDs of a process group, or of a process and all its descendants (Linux /proc)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                text = (entry / "stat").read_text()
                fields = text[text.rindex(")") + 2:].split()
                stats[int(entry.name)] = (int(fields[1]), int(fields[2]))  # ppid, pgrp
    if group is not None:
        return [pid for pid, (_, pgrp) in stats.items() if pgrp == group]
    pids, frontier = {parent}, {parent}
    while frontier:
        frontier = {pid for pid, (ppid, _) in stats.items() if ppid in frontier} - pids
        pids |= frontier
    return sorted(pids)


def _decode_address(hex_address):
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return str(ip), int(port, 16)


def _listening_sockets(pids):
    """(protocol, address, port, pid) of every listening TCP / bound UDP socket of ``pids``."""
    inodes = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes[target[8:-1]] = pid
    found = []
    for proto, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pids[0]}/net/{proto}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == state and fields[9] in inodes:
                    found.append((proto, *_decode_address(fields[1]), inodes[fields[9]]))
    return found


def _http(port, path, *, host="127.0.0.1", headers=None, timeout=10.0):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(200_000)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``make serve``'s own ``panel serve`` command (from ``make -n serve PORT=<free>``), running.

    Bokeh binds the socket when it starts and runs ``app/dashboard.py`` only when the first
    session opens, so the probes that open no session cost about a second. The arguments after
    ``--args`` (used only when a session opens) point the app at the shipped model and at a small
    snapshot directory instead of the embedded runs, which would take minutes to build.
    """
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs Linux /proc to inspect the server's sockets")
    port = _free_port()
    argv = _make_serve_argv(f"PORT={port}")
    if not (REPO / argv[0]).exists():  # a venv elsewhere: the same panel, through this Python
        argv = [sys.executable, "-m", "panel", *argv[1:]]
    work = tmp_path_factory.mktemp("serve")
    snapshots = work / "MW15 analogue"
    snapshots.mkdir()
    from pidoc_core.readers import write_table

    from .conftest import plummer_snapshot

    for t in (6.0, 12.0):
        write_table(plummer_snapshot(3000, seed=int(t), time=t), snapshots / f"snap_{t:04.1f}.ecsv")
    weights = REPO / "weights" / "pidoc"
    if not (weights / "manifest.json").is_file():
        weights = work / "model"  # the session test builds a tiny model here first
    args = ["--args", "--weights", str(weights), "--snapshots", str(snapshots), "--no-embedded"]
    log_path = work / "panel.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv + args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{shlex.join(argv)} exited with {proc.returncode}:\n"
                            f"{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                pytest.fail("panel serve did not listen within 120 s")
            time.sleep(0.2)
        yield {"port": port, "proc": proc, "argv": argv, "weights": weights, "log": log_path}
    finally:
        stop_process_group(proc)


def test_served_dashboard_answers_on_loopback_and_refuses_other_addresses(served):
    port = served["port"]
    status, _ = _http(port, f"/no-such-page-{uuid.uuid4().hex}")
    assert status == 404  # the Bokeh server answers on 127.0.0.1 (and opened no session)
    addresses = _non_loopback_addresses()
    checkable = [ip for ip in addresses if _reachable_here(ip)]
    if not checkable:
        pytest.skip(f"no non-loopback address this machine can connect to itself on "
                    f"(found {[str(a) for a in addresses]})")
    for ip in checkable:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((str(ip), port), timeout=5).close()
    with contextlib.suppress(OSError):  # ::1 is loopback, but not the address we bound either
        if socket.has_ipv6:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("::1", port), timeout=5).close()


def _websocket_handshake(port, origin):
    return _http(port, "/dashboard/ws", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Origin": origin})


def test_served_dashboard_refuses_websockets_from_foreign_origins(served):
    """What stops a web page elsewhere (or a DNS-rebound name) from driving a local session."""
    port = served["port"]
    foreign = [f"http://evil.example:{port}", f"http://127.0.0.1.evil.example:{port}",
               f"http://0.0.0.0:{port}", "null", f"http://127.0.0.1:{port + 1}"]
    foreign += [f"http://{ip if ip.version == 4 else f'[{ip}]'}:{port}"
                for ip in _non_loopback_addresses()]
    for origin in foreign:
        status, body = _websocket_handshake(port, origin)
        assert status == 403 and b"Cross origin" in body, (origin, status, body)
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):  # the control
        status, _ = _websocket_handshake(port, origin)
        assert status == 101, (origin, status)


def test_served_dashboard_serves_no_file_outside_its_static_roots(served):
    port = served["port"]
    secret = "/etc/passwd"
    for path in ("/static/../../../../../../etc/passwd",
                 "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                 "/static/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
                 "/static/extensions/panel/../../../../../../../../etc/passwd",
                 "/static/extensions/panel/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                 "/static//etc/passwd", f"/static/{secret}", "/components/../../../../etc/passwd",
                 "/dashboard/../../../../etc/passwd", "/app/dashboard.py", "/dashboard.py",
                 "/static/../app/dashboard.py"):
        status, body = _http(port, path)
        assert status != 200 or not (b"root:" in body or b"pn.extension" in body), (path, status)


@pytest.mark.slow
def test_served_session_listens_on_loopback_only(served):
    """After a session has run ``app/dashboard.py`` (model, views, test set), the server process
    group listens on nothing but loopback."""
    if served["weights"] != REPO / "weights" / "pidoc":
        from pidoc_core.model import PiDOC

        from .test_observations import STANDARDISATION

        PiDOC.build(mass=dict(filters=(4, 8, 8, 8), bottleneck_filters=8),
                    age_distance=dict(filters=(4, 4, 4, 4)), standardisation=STANDARDISATION,
                    provenance={"training_mass_to_light": 1.0}).save(served["weights"])
    start = served["log"].stat().st_size  # earlier probes log their own (expected) errors
    status, body = _http(served["port"], "/dashboard", timeout=300)
    log = served["log"].read_bytes()[start:].decode(errors="replace")
    assert status == 200 and b"bokeh" in body.lower(), log[-3000:]
    assert "Error running application handler" not in log and "Traceback" not in log, log[-3000:]
    time.sleep(1.0)
    sockets = _listening_sockets(_processes(group=served["proc"].pid))
    assert ("tcp", "127.0.0.1", served["port"], served["proc"].pid) in sockets, sockets
    exposed = [s for s in sockets if not _is_loopback_host(s[1])]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_dataset_builders_dask_cluster_listens_on_loopback_only():
    """``pidoc dataset build --scheduler processes`` starts a LocalCluster: scheduler, nanny,
    workers and the scheduler's HTTP info server must bind to loopback, and the Bokeh dashboard
    (``dashboard_address=None``) must be off. distributed still serves its read-only
    /health, /info and /json pages on 127.0.0.1:8787."""
    from pidoc_core.dataset import _resolve_scheduler

    kind, client, owns = _resolve_scheduler("processes", 1)
    try:
        assert kind == "distributed" and owns
        addresses = [client.scheduler.address, *client.scheduler_info()["workers"]]
        assert all(_is_loopback_host(a.split("://")[1].rsplit(":", 1)[0]) for a in addresses), \
            addresses
        sockets = _listening_sockets(_processes(parent=os.getpid()))
        exposed = [s for s in sockets if not _is_loopback_host(s[1])]
        assert not exposed, f"listening beyond loopback: {exposed}"
        http_ports = [sk.getsockname()[1]
                      for sk in client.cluster.scheduler.http_server._sockets.values()]
        for port in http_ports:
            assert _http(port, "/health")[0] == 200  # the control: this is the HTTP server
            assert _http(port, "/status")[0] == 404  # and it has no Bokeh dashboard
    finally:
        client.cluster.close()
        client.close()


# ---------------------------------------------------------------------------------------------
# no other entry point serves anything
# ---------------------------------------------------------------------------------------------

def _dotted(node) -> str:
    """``a.b.c`` of a Name/Attribute chain (``?`` for other nodes, e.g. calls)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "?")
    return ".".join(reversed(parts))


def _strip_magics(source: str) -> str:
    """A notebook cell as Python: IPython magics and shell lines become ``pass`` (same lines)."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(line[: len(line) - len(stripped)] + "pass" if stripped[:1] in ("%", "!")
                     else line)
    return "\n".join(lines)


def shipped_code(*, benchmarks=False):
    """(label, ast tree) of every shipped .py file and notebook code cell."""
    files = sorted((REPO / "pidoc_core").rglob("*.py")) + sorted((REPO / "app").glob("*.py"))
    if benchmarks:
        files += sorted((REPO / "benchmarks").glob("*.py"))
    for path in files:
        yield str(path.relative_to(REPO)), ast.parse(path.read_text(encoding="utf-8"), str(path))
    try:
        import nbformat
    except ImportError:
        return
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for i, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                label = f"{path.relative_to(REPO)}[cell {i}]"
                yield label, compile(_strip_magics(cell.source), label, "exec",
                                     ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


_SERVERS = {"serve", "show", "start_server", "run_server", "make_server", "HTTPServer",
            "ThreadingHTTPServer", "TCPServer", "Server", "listen", "bind", "run_simple",
            "serve_forever", "LocalCluster", "Scheduler", "Worker", "Nanny"}
_BIND_KWARGS = {"address", "host", "ip", "interface", "listen_address", "websocket_origin",
                "allow_websocket_origin"}


def server_offences(tree, label):
    """'file:line: message' of every call that starts a server or binds beyond loopback."""
    offences = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func).rsplit(".", 1)[-1]
        if name not in _SERVERS:
            continue
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        where = f"{label}:{node.lineno} {_dotted(node.func)}"
        if name == "show" and _dotted(node.func) in ("plt.show", "pyplot.show",
                                                     "matplotlib.pyplot.show"):
            continue
        if name in ("serve", "show", "start_server", "run_server", "make_server", "run_simple",
                    "serve_forever", "HTTPServer", "ThreadingHTTPServer", "TCPServer"):
            offences.append(f"{where}: starts a server from library/app code")
        if name == "LocalCluster" and not (isinstance(kwargs.get("dashboard_address"),
                                                      ast.Constant)
                                           and kwargs["dashboard_address"].value is None):
            offences.append(f"{where}: LocalCluster without dashboard_address=None")
        for key in _BIND_KWARGS & kwargs.keys():
            value = kwargs[key]
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)
                    and _is_loopback_host(value.value.split("://")[-1].rsplit(":", 1)[0])):
                offences.append(f"{where}: {key}={ast.unparse(value)}")
    return offences


def test_no_other_code_starts_a_server_beyond_loopback():
    """``pidoc`` has no serving command; no code calls pn.serve/.show; the only server-like call
    (the dataset builder's LocalCluster) has no dashboard and no non-loopback host."""
    sample = ("pn.serve(app)\nlayout.show(port=1)\nLocalCluster(n_workers=2)\n"
              "LocalCluster(host='0.0.0.0', dashboard_address=None)\nplt.show()\n"
              "LocalCluster(host='127.0.0.1', dashboard_address=None)\n")
    assert [int(o.split(":")[1].split()[0]) for o in server_offences(ast.parse(sample), "s")] \
        == [1, 2, 3, 4]  # the check can fail
    offences = [o for label, tree in shipped_code(benchmarks=True)
                for o in server_offences(tree, label)]
    assert not offences, "\n".join(offences)
    from pidoc_core.cli import build_parser

    commands = set(next(a for a in build_parser()._actions
                        if isinstance(a, argparse._SubParsersAction)).choices)
    assert not commands & {"serve", "dashboard", "app", "show", "server"}, commands


# =============================================================================================
# 2. no unsafe deserialisation, no eval/exec
# =============================================================================================

_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal",
                   "jsonpickle"}
_UNSAFE_CALLS = {
    "eval": "eval", "exec": "exec", "builtins.eval": "eval", "builtins.exec": "exec",
    "joblib.load": "joblib.load", "marshal.loads": "marshal", "marshal.load": "marshal",
    "torch.load": "torch.load", "yaml.unsafe_load": "yaml", "yaml.full_load": "yaml",
    "yaml.unsafe_load_all": "yaml", "yaml.full_load_all": "yaml", "os.system": "shell",
    "os.popen": "shell", "keras.config.enable_unsafe_deserialization": "keras-unsafe",
    "enable_unsafe_deserialization": "keras-unsafe", "numcodecs.Pickle": "pickle",
    "tf.saved_model.load": "saved_model", "tensorflow.saved_model.load": "saved_model",
}
_SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
_SAFE_XARRAY_ENGINES = {"netcdf4", "h5netcdf", "scipy", "zarr"}

#: Findings judged acceptable, keyed by (file, rule), with the reason. Keep it short.
ALLOWED: dict[tuple[str, str], str] = {}


def unsafe_calls(tree, label):
    """(rule, 'file:line: message') of every unsafe construct in one module or cell."""
    found = []

    def add(rule, node, message):
        found.append((rule, f"{label}:{node.lineno}: {message}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _UNSAFE_MODULES:
                    add("pickle", node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            names = {a.name for a in node.names}
            if module in _UNSAFE_MODULES:
                add("pickle", node, f"from {node.module} import {', '.join(sorted(names))}")
            if module == "joblib" and "load" in names or module == "torch" and "load" in names:
                add("pickle", node, f"from {node.module} import load")
            if module == "yaml" and names & {"unsafe_load", "full_load", "Loader", "UnsafeLoader",
                                             "FullLoader"}:
                add("yaml", node, f"from yaml import {', '.join(sorted(names))}")
            if names & {"eval", "exec"} and module == "builtins":
                add("eval", node, "from builtins import eval/exec")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            kwargs = {k.arg: k.value for k in node.keywords if k.arg}
            rule = _UNSAFE_CALLS.get(name) or _UNSAFE_CALLS.get(".".join(name.split(".")[-2:]))
            if rule:
                add(rule, node, f"{name}(...)")
            if last == "read_pickle" or last == "to_pickle":
                add("pickle", node, f"{name}(...)")
            if last in ("load", "load_all") and name.split(".")[0] == "yaml":
                loader = kwargs.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
                if loader is None or _dotted(loader).rsplit(".", 1)[-1] not in _SAFE_YAML_LOADERS:
                    add("yaml", node, f"{name}(...) without a safe Loader")
            if "allow_pickle" in kwargs and not (isinstance(kwargs["allow_pickle"], ast.Constant)
                                                 and kwargs["allow_pickle"].value is False):
                add("pickle", node, f"{name}(allow_pickle={ast.unparse(kwargs['allow_pickle'])})")
            if "safe_mode" in kwargs and not (isinstance(kwargs["safe_mode"], ast.Constant)
                                              and kwargs["safe_mode"].value is True):
                add("keras-unsafe", node, f"{name}(safe_mode={ast.unparse(kwargs['safe_mode'])})")
            if last in ("open_dataset", "load_dataset", "open_mfdataset", "open_datatree",
                        "open_dataarray", "load_dataarray") and "engine" in kwargs:
                engine = kwargs["engine"]
                if not (isinstance(engine, ast.Constant) and engine.value in _SAFE_XARRAY_ENGINES):
                    add("pickle", node, f"{name}(engine={ast.unparse(engine)})")
            if last == "Lambda" and name.split(".")[0] in ("keras", "layers", "tf", "Lambda"):
                add("keras-unsafe", node, f"{name}(...): a Lambda layer needs unsafe loading")
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant)
                                             and k.value.value is False) for k in node.keywords):
                add("shell", node, f"{name}(shell=...)")
    return found


def test_shipped_code_has_no_unsafe_deserialisation_or_eval():
    findings, allowed_seen = [], []
    n_units = 0
    for label, tree in shipped_code():
        n_units += 1
        for rule, message in unsafe_calls(tree, label):
            key = (label.split("[")[0], rule)
            (allowed_seen if key in ALLOWED else findings).append(message)
    assert n_units > 20  # the scan saw the package, the app and the notebooks
    assert not findings, "unsafe constructs in shipped code:\n" + "\n".join(findings)


def test_the_scanner_catches_what_it_should():
    """The scan above can fail: it flags each construct in a sample, and nothing safe."""
    bad = """
import pickle
from dill import loads
import numpy as np, yaml, keras, joblib, xarray as xr, pandas as pd, subprocess
np.load(f, allow_pickle=True)
np.load(f, allow_pickle=flag)
yaml.load(text)
yaml.load(text, Loader=yaml.Loader)
eval(s)
exec(code)
keras.models.load_model(p, safe_mode=False)
keras.config.enable_unsafe_deserialization()
joblib.load(p)
pd.read_pickle(p)
xr.open_dataset(p, engine="pickle")
subprocess.run(cmd, shell=True)
keras.layers.Lambda(lambda x: x)
"""
    found = unsafe_calls(ast.parse(bad), "sample.py")
    lines = sorted({int(m.split(":")[1]) for _, m in found})
    assert lines == [2, 3, *range(5, 18)], found
    good = """
import numpy as np, yaml, keras, xarray as xr, json
np.load(f, allow_pickle=False)
yaml.load(text, Loader=yaml.SafeLoader)
yaml.safe_load(text)
keras.models.load_model(p)
xr.open_dataset(p, engine="h5netcdf")
json.loads(s)
"""
    assert unsafe_calls(ast.parse(good), "good.py") == []


def test_np_load_never_unpickles():
    """numpy.load refuses pickles unless told otherwise (default allow_pickle=False since numpy
    1.16.3, and pyproject requires a newer numpy). The package and the app also say so
    explicitly, so they don't depend on the installed numpy. The notebooks' two np.load calls of
    v0.1 ``.npy`` scalars rely on the default, which the first assertion pins."""
    import inspect

    assert inspect.signature(np.load).parameters["allow_pickle"].default is False
    floor = re.search(r'"numpy>=([0-9.]+)"', (REPO / "pyproject.toml").read_text())
    assert floor and tuple(map(int, floor.group(1).split("."))) >= (1, 16, 3)
    missing = []
    for label, tree in shipped_code():
        if label.startswith("notebooks/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _dotted(node.func) in ("np.load", "numpy.load"):
                kwargs = {k.arg: k.value for k in node.keywords}
                value = kwargs.get("allow_pickle")
                if not (isinstance(value, ast.Constant) and value.value is False):
                    missing.append(f"{label}:{node.lineno}")
    assert not missing, missing


def test_models_are_rebuilt_from_code_not_deserialised():
    """PiDOC.load builds each network from its JSON architecture with π-DOC's builders and loads
    weights only; no Keras model file (which could carry Lambda code) is deserialised."""
    offences = []
    for label, tree in shipped_code():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                last = _dotted(node.func).rsplit(".", 1)[-1]
                if last in ("load_model", "model_from_json", "model_from_config",
                            "model_from_yaml", "deserialize_keras_object", "from_config"):
                    offences.append(f"{label}:{node.lineno}: {_dotted(node.func)}")
    assert not offences, offences
    import inspect

    from pidoc_core.model import PiDOC

    source = inspect.getsource(PiDOC.load)
    assert "networks.build_network(" in source and ".load_weights(" in source


def test_cosmic_settings_need_only_literal_arithmetic():
    """COSMIC's settings are read with a literal-arithmetic parser (no eval) that gives every
    default BSE flag, and refuses anything else."""
    pytest.importorskip("cosmic")
    from pidoc_core.evolution import stellar
    from pidoc_core.evolution.stellar import literal_arithmetic as _literal_arithmetic

    result = stellar._bse_dict()
    import cosmic

    settings = json.loads((Path(cosmic.__path__[0]) / "data" / "cosmic-settings.json").read_text())
    n = 0
    for category in settings:
        if category["category"] != "bse":
            continue
        for setting in category["settings"]:
            for option in setting.get("options", []):
                if option.get("default") and isinstance(option["name"], str):
                    # the reference: Python's own evaluation of this trusted package data
                    expected = eval(option["name"], {"__builtins__": {}}, {})  # noqa: S307
                    assert _literal_arithmetic(option["name"]) == expected == result[
                        setting["name"]]
                    n += 1
    assert n > 0
    for hostile in ("__import__('os').system('true')", "().__class__", "open('x')",
                    "[x for x in ()]"):
        with pytest.raises(ValueError):
            _literal_arithmetic(hostile)


# =============================================================================================
# 3. uploads
# =============================================================================================

def send_upload(view, data: bytes, filename: str, mime_type="application/fits"):
    """The upload as the browser sends it: base64 value, file name and MIME type in one event."""
    view.upload._process_events({"value": base64.b64encode(data).decode("ascii"),
                                 "filename": filename, "mime_type": mime_type})


@pytest.fixture()
def make_view(model):  # noqa: F811 - the fixture imported from test_observe_tab
    from app.views.observe import ObservationView

    def make(**kwargs):
        view = ObservationView(model, **kwargs)
        view.cluster = "NGC 5053"
        return view

    return make


@pytest.fixture()
def parse_calls(monkeypatch):
    """Record (and pass through) every call the view could make to parse an upload."""
    import app.views.observe as observe_tab

    calls = []

    def recorder(name, real):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(observe_tab.fits, "open", recorder("fits.open", observe_tab.fits.open))
    monkeypatch.setattr(observe_tab, "predict_image",
                        recorder("predict_image", observe_tab.predict_image))
    monkeypatch.setattr(observe_tab.zlib, "decompressobj",
                        recorder("zlib.decompressobj", observe_tab.zlib.decompressobj))
    return calls


_LIMIT_MB = 0.25
_LIMIT = int(_LIMIT_MB * 2 ** 20)


@pytest.mark.parametrize("kind", ["fits", "gzip", "one_byte_over"])
def test_upload_over_the_limit_is_refused_before_parsing(  # noqa: F811
        make_view, fits_bytes, parse_calls, kind):
    rng = np.random.default_rng(0)
    data = {"fits": fits_bytes,
            "gzip": gzip.compress(rng.bytes(_LIMIT + 50_000)),  # random: stays over the limit
            "one_byte_over": fits_bytes[:_LIMIT + 1]}[kind]
    assert len(data) > _LIMIT
    view = make_view(max_upload_mb=_LIMIT_MB)
    send_upload(view, data, f"big-{kind}.fits")
    assert view.status.alert_type == "danger"
    assert f"larger than the {_LIMIT_MB:g} MB upload limit" in view.status.object
    assert f"big-{kind}.fits" in view.status.object
    view.predict()  # Predict pressed anyway
    assert view.status.alert_type == "danger" and "upload limit" in view.status.object
    assert parse_calls == [] and view.result is None
    assert np.isnan(view.flux_src.data["image"][0]).all()


def test_upload_at_the_limit_reaches_the_parser(make_view, fits_bytes, parse_calls):  # noqa: F811
    """The control for the test above: the recorder sees parsing when the size is allowed."""
    view = make_view(max_upload_mb=_LIMIT_MB)
    send_upload(view, fits_bytes[:_LIMIT], "cut.fits")
    assert view.status.alert_type == "info"
    view.predict()
    assert "fits.open" in parse_calls and "upload limit" not in view.status.object


def test_the_dashboard_passes_its_upload_limit_and_the_server_caps_messages():
    """app/dashboard.py gives the Observations tab UPLOAD_MB; `make serve` caps a websocket
    message at room for that upload in base64, and not at much more (a client can send a
    message up to the cap whatever the widget allows)."""
    tree = ast.parse((REPO / "app" / "dashboard.py").read_text())
    upload_mb = next(n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                     and any(getattr(t, "id", None) == "UPLOAD_MB" for t in n.targets))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and _dotted(n.func) == "ObservationView"]
    assert len(calls) == 1
    kw = {k.arg: k.value for k in calls[0].keywords}
    assert isinstance(kw.get("max_upload_mb"), ast.Name) and kw["max_upload_mb"].id == "UPLOAD_MB"
    opts = _options(_make_serve_argv()[2:])
    cap = int(opts["--websocket-max-message-size"][0])
    base64_size = 4 * -(-upload_mb * 2 ** 20 // 3)
    assert base64_size < cap <= 2 * base64_size, (upload_mb, cap)


class _Detonator:
    """Unpickling this creates ``path`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _payload(kind, marker):
    """(bytes, how to detonate them deliberately) for each kind of hostile non-FITS upload."""
    raw = pickle.dumps(_Detonator(marker), protocol=2)
    if kind == "random":
        return np.random.default_rng(1).bytes(20_000), None
    if kind == "pickle":
        return raw, pickle.loads
    if kind == "gzip_pickle":
        return gzip.compress(raw), lambda b: pickle.loads(gzip.decompress(b))
    if kind == "fits_card_then_pickle":
        card = b"SIMPLE  =                    T".ljust(80)
        return card + raw, lambda b: pickle.loads(b[80:])
    if kind in ("npy_object", "npz_object"):
        buf = io.BytesIO()
        array = np.array([_Detonator(marker)], dtype=object)
        (np.save(buf, array, allow_pickle=True) if kind == "npy_object"
         else np.savez(buf, a=array))
        if kind == "npy_object":
            return buf.getvalue(), lambda b: np.load(io.BytesIO(b), allow_pickle=True)
        return buf.getvalue(), lambda b: np.load(io.BytesIO(b), allow_pickle=True)["a"]
    if kind == "zip_pickle":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("image.fits", raw)
        return buf.getvalue(), lambda b: pickle.loads(zipfile.ZipFile(io.BytesIO(b)).read(
            "image.fits"))
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["random", "pickle", "gzip_pickle", "fits_card_then_pickle",
                                  "npy_object", "npz_object", "zip_pickle"])
def test_non_fits_upload_is_refused_and_never_unpickled(make_view, tmp_path, kind):
    marker = tmp_path / f"pwned-{kind}"
    data, detonate = _payload(kind, marker)
    if detonate is not None:  # the control: this payload is live when unpickled
        control = tmp_path / f"control-{kind}"
        detonate(_payload(kind, control)[0])
        assert control.exists()
        control.unlink()
    view = make_view()
    with audited() as log:
        send_upload(view, data, f"{kind}.fits")
        view.predict()
    assert view.status.alert_type == "danger"
    assert "not a readable FITS file" in view.status.object, view.status.object
    assert "Traceback" not in view.status.object and view.result is None
    assert not marker.exists(), "the upload was unpickled"
    assert _events(log, {"pickle.find_class"} | _CODE_EVENTS) == []


def _token_paths(log, tokens):
    return [(e, a) for e, a in _events(log, _PATH_EVENTS | {"shutil."})
            if any(t in s for t in tokens for s in a)]


@pytest.mark.parametrize("pattern", ["../../../../../../../../tmp/{t}.fits", "/tmp/{t}.fits",
                                     "..\\..\\..\\{t}.fits", "{t}/../../../{t}.fits",
                                     "file:///tmp/{t}.fits", "~/{t}.fits"])
def test_upload_filename_never_reaches_the_file_system(  # noqa: F811
        make_view, fits_bytes, pattern):
    token = f"pidoc-sec-{uuid.uuid4().hex}"
    name = pattern.format(t=token)
    view = make_view()
    with audited() as log:
        send_upload(view, fits_bytes, name)
        view.predict()
    assert view.status.alert_type == "success", view.status.object  # the image was processed
    assert not _token_paths(log, [token]), _token_paths(log, [token])
    # (no pickle.find_class check here: dask, imported lazily by xarray, round-trips pickles of
    # its own builtins on import; the upload's bytes never reach pickle, see the test above)
    assert _events(log, _CODE_EVENTS - {"pickle.find_class"}) == []
    assert not _events(log, _NET_EVENTS), _events(log, _NET_EVENTS)  # no fetch on upload
    candidates = {Path(base, name.replace("\\", "/")).resolve() for base in
                  (os.getcwd(), REPO, REPO / "app", tempfile.gettempdir(), Path.home(), "/")}
    candidates |= {Path(tempfile.gettempdir(), f"{token}.fits"), Path("/tmp", f"{token}.fits")}
    assert not [p for p in candidates if p.exists()]
    for directory in {Path(tempfile.gettempdir()), Path("/tmp"), Path.cwd(), REPO, REPO / "app"}:
        with contextlib.suppress(OSError):
            assert not [p for p in directory.iterdir() if token in p.name]


def test_upload_filename_is_shown_escaped(make_view):
    view = make_view()
    send_upload(view, b"\0" * 100, "<img src=x onerror=alert(1)>.fits")
    assert "<img" not in view.status.object and "&lt;img" in view.status.object
    view.predict()
    assert view.status.alert_type == "danger" and "<img" not in view.status.object


# ---------------------------------------------------------------------------------------------
# the page offers no widget through which a path is typed
# ---------------------------------------------------------------------------------------------

_PATH_OR_TEXT_WIDGETS = {"TextInput", "TextAreaInput", "PasswordInput", "AutocompleteInput",
                         "FileSelector", "FileDropper", "LiteralInput",
                         "ArrayInput", "CodeEditor", "TextEditor", "JSONEditor", "ChatAreaInput",
                         "DatetimeInput", "Terminal"}
_EXPECTED_WIDGETS = {"Select", "DiscreteSlider", "FloatSlider", "RadioButtonGroup", "MultiChoice",
                     "RangeSlider", "FloatInput", "Button", "FileInput", "TextInput",
                     "IntSlider", "StaticText", "FileDownload"}


@pytest.fixture(scope="module")
def layouts(model):  # noqa: F811
    """The three tabs' layouts as the dashboard builds them (TestSetView on the shipped test-set
    aggregates, ExploreView on stand-in runs)."""
    from app.views.explore import ExploreView
    from app.views.observe import ObservationView

    from .test_dashboard import FakeRun

    views = {"observe": ObservationView(model),
             "explore": ExploreView({"MW15 analogue": FakeRun("MW15 analogue", 1.0)}, model,
                                    upsilon=2.0)}
    aggregates = REPO / "weights" / "pidoc" / "testset_aggregates.nc"
    if aggregates.is_file():
        import xarray as xr
        from app.views.testset import TestSetView

        views["testset"] = TestSetView(xr.load_dataset(aggregates))
    return views, {name: view.panel() for name, view in views.items()}


def test_page_has_no_path_or_free_text_widget_but_the_centre_fields(layouts):
    import panel as pn

    views, panels = layouts
    assert set(panels) >= {"observe", "explore"}
    widgets = {name: layout.select(pn.widgets.Widget) for name, layout in panels.items()}
    types = {type(w).__name__ for ws in widgets.values() for w in ws}
    assert types <= _EXPECTED_WIDGETS, types - _EXPECTED_WIDGETS
    free_text = [w for ws in widgets.values() for w in ws
                 if type(w).__name__ in _PATH_OR_TEXT_WIDGETS
                 or isinstance(w, (pn.widgets.TextInput, pn.widgets.TextAreaInput,
                                   pn.widgets.FileSelector))]
    observe = views["observe"]
    # RA and Dec (shown in the "RA / Dec" mode) are the only free-text fields
    assert {w.name for w in free_text} <= {observe.param.ra.label, observe.param.dec.label}
    # exports are made in memory by a callback, never from a path on the server
    downloads = [w for ws in widgets.values() for w in ws
                 if isinstance(w, pn.widgets.FileDownload)]
    assert all(w.callback is not None and w.file is None for w in downloads)
    uploads = [w for ws in widgets.values() for w in ws if isinstance(w, pn.widgets.FileInput)]
    assert uploads == [observe.upload] and observe.upload.multiple is False
    # the app reads nothing from the URL (no query-string path) and makes no other widgets
    for path in sorted((REPO / "app").rglob("*.py")):
        text_tree = ast.parse(path.read_text())
        names = {_dotted(n) for n in ast.walk(text_tree) if isinstance(n, ast.Attribute)}
        assert not {n for n in names if n.endswith(("session_args", "state.location",
                                                    "request.arguments", "query_params"))}, path
        made = {n.rsplit(".", 1)[-1] for n in names if n.split(".")[-2:-1] == ["widgets"]}
        assert made <= _EXPECTED_WIDGETS, (path, made - _EXPECTED_WIDGETS)
        if path.name != "observe.py":
            assert "TextInput" not in made, path


def test_typed_centre_values_never_reach_the_file_system(make_view, fits_bytes):  # noqa: F811
    """The only free-text fields (RA, Dec) go to SkyCoord; a path typed there is an error."""
    token = f"pidoc-sec-{uuid.uuid4().hex}"
    view = make_view()
    send_upload(view, fits_bytes, "ngc5053.fits")
    view.mode = "RA / Dec"
    with audited() as log:
        view.ra = f"../../../../tmp/{token}"
        view.dec = f"/tmp/{token}.fits"
        view.predict()
    assert view.status.alert_type == "danger" and "cannot read centre" in view.status.object
    assert not _token_paths(log, [token]) and not _events(log, _CODE_EVENTS | _NET_EVENTS)


def test_crafted_select_values_never_reach_the_file_system(tmp_path, model):  # noqa: F811
    """A client that sends a path as the run (Select) of an ExploreView over a snapshot
    directory gets an error, and only the directory's own files are ever opened."""
    from app.views.explore import ExploreView

    from pidoc_core.dataset import SnapshotDirectory
    from pidoc_core.readers import write_table

    from .conftest import plummer_snapshot

    directory = tmp_path / "MW15 analogue"
    directory.mkdir()
    for t in (6.0, 12.0):
        write_table(plummer_snapshot(2000, seed=int(t), time=t), directory / f"s{t:04.1f}.ecsv")
    view = ExploreView({"MW15 analogue": SnapshotDirectory(directory)}, model, upsilon=2.0)
    token = f"pidoc-sec-{uuid.uuid4().hex}"
    with audited() as log:
        for value in (f"../../../../tmp/{token}", f"/tmp/{token}", str(directory / token)):
            with pytest.raises(ValueError):
                view.run = value  # what a crafted widget message would set
        view.time = 6.0  # a legitimate move still works
    assert view.run == "MW15 analogue" and view.time == 6.0
    opened = [a[0] for e, a in _events(log, {"open"})]
    assert not _token_paths(log, [token])
    assert all(Path(p).parent == directory for p in opened if p.endswith(".ecsv")), opened
