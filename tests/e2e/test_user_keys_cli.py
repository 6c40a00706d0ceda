"""End to end with real processes and the real CLI: `medspace login` creates each user's
signing key on their own machine (a separate MEDSPACE_HOME), the node operator pins the
steward's key, the project flow runs on user-signed entries, a second machine cannot
register another key for the same user, and after an admin reset the new key must be
pinned again before the node accepts that steward's approvals."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.hub.support import PASSWORD, free_port, make_hub, make_node, project_terms

from medspace.hub import HubClient, HubUnreachable
from medspace.identity.userkeys import user_key_path

CLI = [sys.executable, "-m", "medspace"]
DEADLINE = 90.0


def medspace(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `medspace` command as the user whose machine keeps its state in `home`."""
    env = {**os.environ, "MEDSPACE_HOME": str(home), "COLUMNS": "200"}
    env.pop("MEDSPACE_PASSWORD", None)
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, env=env, timeout=DEADLINE
    )


def login(url: str, user: str, home: Path) -> subprocess.CompletedProcess[str]:
    return medspace(
        "login", "--hub", url, "--user", user, "--password-stdin", home=home, stdin=PASSWORD
    )


def _wait(check: object, what: str) -> None:
    assert callable(check)
    end = time.monotonic() + DEADLINE
    while True:
        try:
            if check():
                return
        except HubUnreachable:
            pass
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


@contextmanager
def running(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A hub process and one node process (h1), connected."""
    node_dir = make_node(tmp_path / "h1", "h1", 10, 6)
    hub_dir = make_hub(tmp_path / "hub", {"h1": node_dir})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = [open(tmp_path / n, "wb") for n in ("hub.log", "node.log")]  # noqa: SIM115
    hub = subprocess.Popen(
        [*CLI, "hub", "serve", "--hub", str(hub_dir), "--port", str(port)],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    node = subprocess.Popen(
        [*CLI, "node", "serve", "--node", str(node_dir), "--hub", url],
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    try:
        admin = HubClient(url)
        _wait(lambda: admin.login("admin", PASSWORD), "the hub to answer")
        _wait(lambda: all(n["connected"] for n in admin.get("/nodes")), "the node to connect")
        admin.close()
        yield url, hub_dir, node_dir
    finally:
        for process in (node, hub):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def test_users_sign_with_keys_made_by_medspace_login(tmp_path: Path) -> None:
    alice_home, steward_home, laptop = (tmp_path / n for n in ("alice", "steward", "laptop"))
    with running(tmp_path) as (url, hub_dir, node_dir):
        first = login(url, "alice", alice_home)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "created your signing key" in first.stdout
        key = user_key_path(alice_home, url, "alice")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        again = login(url, "alice", alice_home)
        assert again.returncode == 0 and "created" not in again.stdout

        assert login(url, "steward-h1", steward_home).returncode == 0
        public = user_key_path(steward_home, url, "steward-h1").with_suffix(".pub")
        pinned = medspace(
            "node", "steward", "add", "--node", str(node_dir), "--user", "steward-h1",
            "--key", str(public), home=steward_home,
        )  # fmt: skip
        assert pinned.returncode == 0, pinned.stdout + pinned.stderr

        terms = tmp_path / "terms.json"
        terms.write_text(json.dumps(project_terms("cli-keys", ["h1"])))
        created = medspace("project", "create", "--file", str(terms), home=alice_home)
        assert created.returncode == 0, created.stdout + created.stderr
        approved = medspace(
            "project", "approve", "cli-keys", "--reason", "ethics ok", home=steward_home
        )
        assert approved.returncode == 0, approved.stdout + approved.stderr
        counted = medspace("query", "count", "--project", "cli-keys", home=alice_home)
        assert counted.returncode == 0, counted.stdout + counted.stderr
        assert "ok" in counted.stdout and " 6 " in counted.stdout

        # The steward on another machine cannot register a second key.
        elsewhere = login(url, "steward-h1", laptop)
        assert elsewhere.returncode != 0
        assert "another signing key" in elsewhere.stdout + elsewhere.stderr

        # After an admin reset the laptop's new key registers, but the node still pins the
        # old one: approvals signed with the new key are refused until it is pinned.
        reset = medspace("hub", "reset-user-key", "--hub", str(hub_dir), "steward-h1", home=laptop)
        assert reset.returncode == 0, reset.stdout + reset.stderr
        assert login(url, "steward-h1", laptop).returncode == 0
        terms.write_text(json.dumps(project_terms("cli-keys-2", ["h1"])))
        assert medspace("project", "create", "--file", str(terms), home=alice_home).returncode == 0
        assert (
            medspace("project", "approve", "cli-keys-2", "--reason", "ok", home=laptop).returncode
            == 0
        )
        refused = medspace("query", "count", "--project", "cli-keys-2", home=alice_home)
        assert "refused" in refused.stdout
        assert "not signed by a steward pinned" in refused.stdout.replace("\n", " ")
