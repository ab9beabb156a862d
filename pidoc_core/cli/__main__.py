"""``python -m pidoc_core.cli``: the ``pidoc`` command."""

import sys

from . import main

sys.exit(main())
