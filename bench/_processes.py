"""Stopping the server processes a benchmark started (hub, nodes)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace: float = 30) -> None:
    """Ask every process to end (SIGTERM), then kill those still running after `grace` s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
