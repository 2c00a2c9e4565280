"""``python -m clvmodels``: the same as the ``clvmodels`` command (see :mod:`clvmodels.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
