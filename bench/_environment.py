"""How a bench script that takes ``--threads`` sets up its process, written once.

Imported by scripts run as ``python bench/X.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["use_threads_and_this_checkout"]


def use_threads_and_this_checkout(threads: int) -> None:
    """Give BLAS ``threads`` threads (unless the environment already says) and import ``tradenn``
    from this checkout rather than whichever copy is installed.

    Call it before importing numpy: BLAS reads its thread count when it is loaded.
    """
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
