"""The ``pidoc`` reader flags and the wording of library messages for a command-line user."""

from __future__ import annotations

import re

__all__ = ["READER_FLAGS", "cli_message"]

#: Reader keyword -> (CLI flag, argparse dest) for every reader option the CLI offers.
READER_FLAGS = {
    "sev": "--sev", "bev": "--bev", "index": "--index", "missing": "--missing",
    "check_time": "--no-check-time", "partial": "--partial", "nbody_mass": "--nbody-mass",
    "nbody_length": "--nbody-length", "unit_system": "--unit-system", "hdu": "--hdu",
    "dataset": "--dataset", "interrupt_mode": "--interrupt-mode", "use_mpfrc": "--use-mpfrc",
    "columns": "--column", "units": "--unit", "time": "--time", "zero_point": "--zero-point",
}
#: Whole phrases of library messages and the CLI words that replace them.
_PHRASES = (
    ("sev=False", "--dynamics-only"), ("bev=False", "--no-bev"),
    ("missing='drop'", "--missing drop"), ("check_time=False", "--no-check-time"),
    ("partial=True", "--partial"), ("zero_point=...", "--zero-point"),
    ("columns={'mass': 'your_name', ...}", "--column mass=YOUR_NAME"),
)


def cli_message(text: str) -> str:
    """A library error message with its keyword names replaced by the ``pidoc`` flags."""
    for old, new in _PHRASES:
        text = text.replace(old, new)
    names = "|".join(sorted(READER_FLAGS, key=len, reverse=True))
    text = re.sub(rf"(?<![\w-])({names})=(?=[\s(,;)]|$)",
                  lambda m: READER_FLAGS[m.group(1)], text)
    return re.sub(rf"(?<![\w-])({names})= ?(?=\S)", lambda m: READER_FLAGS[m.group(1)] + " ",
                  text)
