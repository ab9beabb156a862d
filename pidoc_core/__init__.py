"""π-DOC Explorer core library: snapshots, imager, datasets, networks and evaluation.

Chardin & Bianchini (2021, MNRAS 504, 5656) as a library; see DESIGN.md for the flow and units.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pidoc-explorer")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
