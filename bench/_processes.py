"""The server processes a benchmark started (hub, nodes): their CPU time and stopping them."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace: float = 30) -> None:
    """Ask every process to end (SIGTERM), then kill those still running after `grace` s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process `pid` has used so far (Linux /proc), else None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by groups of processes between `start()` and `stop()`.

    `groups` names the benchmark's parties ("hub", "nodes", ...) with the pids of their
    processes; the benchmark's own process (clients, or an in-process hub) is the group
    "self". Used to say where a request's CPU goes: on a 2-core machine every party
    competes for the same cores, so the split, not the wall time, is what carries over to
    a deployment where each hospital runs its node on its own machine.
    """

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}
        self._start: dict[str, float | None] = {}
        self.seconds: dict[str, float] = {}

    def _now(self) -> dict[str, float | None]:
        now: dict[str, float | None] = {"self": time.process_time()}
        for name, pids in self._groups.items():
            readings = [_cpu_seconds(pid) for pid in pids]
            known = [r for r in readings if r is not None]
            now[name] = sum(known) if len(known) == len(readings) else None
        return now

    def start(self) -> None:
        """Take the first reading."""
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since `start()` (groups that could not be read are left
        out, as on a system without /proc)."""
        end = self._now()
        self.seconds = {
            name: end_s - begin
            for name, end_s in end.items()
            if end_s is not None and (begin := self._start.get(name)) is not None
        }
        return self.seconds
