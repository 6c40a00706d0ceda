"""One BLAS thread per service process.

numpy's BLAS (OpenBLAS) starts a thread pool as wide as the machine when numpy is
imported. The node and hub services already run queries concurrently in worker threads,
so every matrix product of a regression then fights the other queries for the same
cores: measured 10-30x slower on two cores. `single_threaded_blas` caps the pool at one
thread; it must run before numpy is first imported (the services import it lazily, on
the first analytics query), and it leaves a value the operator set alone.
"""

from __future__ import annotations

import os
import sys

#: The variables OpenBLAS, OpenMP and MKL read when they load.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_blas() -> bool:
    """Set each BLAS thread variable to 1 unless already set. False when numpy is
    imported already, so the setting comes too late for this process."""
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    return "numpy" not in sys.modules
