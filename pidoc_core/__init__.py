"""π-DOC Explorer core library: snapshots, imager, datasets, networks and evaluation.

Chardin & Bianchini (2021, MNRAS 504, 5656) as a library. The flow is one way: snapshot -> imager -> dataset -> networks -> model ->
evaluation -> plots / report -> app; conventions (map geometry, floors, units) are in
:mod:`pidoc_core.conventions`, the paper's numbers in :mod:`pidoc_core.paper`, and every error
derives from :class:`pidoc_core.errors.PidocError`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pidoc-explorer")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
