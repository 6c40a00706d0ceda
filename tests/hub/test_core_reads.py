"""`HubCore.read` and `HubCore.write`: the hub's database from the event loop.

On the embedded SQLite a read runs inline (a hop to a worker thread costs more CPU than
the read); on PostgreSQL it runs in a worker thread, so a network round trip never holds
up the event loop that serves every request and every node channel. A ledger write never
runs on the loop: it can wait for the database's write lock.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from medspace.hub import HubCore, init_hub
from medspace.identity import Role, User
from medspace.policy import UnknownProjectError


def _thread_of_read(core: HubCore) -> tuple[str, str]:
    """(the loop's thread, the thread the read ran in), reading a user back."""

    def read(name: str) -> tuple[str, User]:
        return threading.current_thread().name, core.users.get(name)

    async def main() -> tuple[str, str]:
        ran_in, user = await core.read(read, "alice")
        assert user == User("alice", Role.RESEARCHER)
        return threading.current_thread().name, ran_in

    return asyncio.run(main())


def _core(directory: Path, db_url: str | None = None) -> HubCore:
    init_hub(directory, db_url=db_url)
    core = HubCore(directory)
    core.add_user(User("alice", Role.RESEARCHER), "a password for the read test")
    return core


def test_a_read_on_sqlite_runs_on_the_event_loop(tmp_path: Path) -> None:
    core = _core(tmp_path / "hub")
    try:
        loop_thread, read_thread = _thread_of_read(core)
    finally:
        core.close()
    assert read_thread == loop_thread


@pytest.mark.postgres
def test_a_read_on_postgresql_runs_in_a_worker_thread(tmp_path: Path, pg_schema_url: str) -> None:
    core = _core(tmp_path / "hub", pg_schema_url)
    try:
        loop_thread, read_thread = _thread_of_read(core)
    finally:
        core.close()
    assert read_thread != loop_thread


def test_a_failing_read_raises_where_it_is_awaited(tmp_path: Path) -> None:
    core = _core(tmp_path / "hub")

    async def main() -> None:
        await core.read(core.book.get, "no-such-project")

    try:
        with pytest.raises(UnknownProjectError, match="no project"):
            asyncio.run(main())
    finally:
        core.close()


def test_a_ledger_write_runs_in_the_writer_thread_while_the_loop_goes_on(tmp_path: Path) -> None:
    core = _core(tmp_path / "hub")
    loop_ran = threading.Event()

    def slow_write() -> tuple[str, bool]:
        # Waits until the loop has run something else: inline, it would wait in vain.
        return threading.current_thread().name, loop_ran.wait(timeout=30)

    async def main() -> tuple[str, bool]:
        pending = asyncio.ensure_future(core.write(slow_write))
        await asyncio.sleep(0)
        loop_ran.set()
        return await pending

    try:
        ran_in, loop_went_on = asyncio.run(main())
    finally:
        core.close()
    assert ran_in.startswith("ledger-writer") and loop_went_on
