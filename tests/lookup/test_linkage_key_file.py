"""The asking node tokenises under the linkage key its file holds now: a long-running
lookup API keeps its node open, and must not keep a replaced key (every hospital would
answer no-match until a restart)."""

from __future__ import annotations

import os
from pathlib import Path

from medspace.linkage import KEY_FILE, LinkageKey, write_key_file
from medspace.lookup._linkage import tokens_from_input
from medspace.node import init_node, open_node


def test_an_open_node_tokenises_under_a_replaced_linkage_key(tmp_path: Path) -> None:
    first, second = LinkageKey.generate(), LinkageKey.generate()
    init_node(tmp_path / "h1", "h1")
    write_key_file(tmp_path / "h1" / KEY_FILE, first)
    typed = {"national_id": "219-09-9999", "id_system": "US-SSN", "name": None}
    with open_node(tmp_path / "h1") as node:
        before = tokens_from_input(node, birth_date=None, sex=None, **typed)
        os.remove(tmp_path / "h1" / KEY_FILE)
        write_key_file(tmp_path / "h1" / KEY_FILE, second)
        after = tokens_from_input(node, birth_date=None, sex=None, **typed)
    assert before["key_id"] == first.key_id
    assert after["key_id"] == second.key_id
