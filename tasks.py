"""The commands developers type: ``inv --list`` shows them all, ``inv --help TASK`` one in detail.

The tasks live in ``devtools/tasks/``, one module per namespace; this file only makes the project importable.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # invoke does not put the project root on sys.path

from devtools.tasks import ns  # noqa: E402

__all__ = ["ns"]
