"""The services cap numpy's BLAS at one thread when they start, unless the operator set
a value; checked in a fresh interpreter, where numpy is not imported yet."""

from __future__ import annotations

import os
import subprocess
import sys

from medspace.blas import BLAS_THREAD_VARIABLES

PROBE = """
import ctypes, glob, os, sys
from medspace.blas import single_threaded_blas
assert single_threaded_blas()
import numpy
libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), "..", "numpy.libs", "*openblas*"))
getter = getattr(ctypes.CDLL(libs[0]), "scipy_openblas_get_num_threads64_", None) if libs else None
print(os.environ["OPENBLAS_NUM_THREADS"], getter() if getter else "unknown")
assert not single_threaded_blas()  # numpy is loaded now: too late
"""


def _probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


def test_numpy_loads_with_one_blas_thread() -> None:
    setting, threads = _probe()
    assert setting == "1"
    assert threads in ("1", "unknown")  # unknown: a numpy build without scipy-openblas


def test_an_operator_setting_is_kept() -> None:
    setting, _ = _probe(OPENBLAS_NUM_THREADS="2")
    assert setting == "2"
