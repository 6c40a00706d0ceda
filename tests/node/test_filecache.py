"""A node's configuration files are parsed once and re-read when they change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from medspace.node.filecache import FileCache
from medspace.node.keys import atomic_write


class Loader:
    """Counts reads; an absent file reads as None."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self, path: Path) -> object:
        self.reads += 1
        if not path.exists():
            return None
        return json.loads(path.read_text())


def test_an_unchanged_file_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"a": 1}')
    load = Loader()
    cache = FileCache(path, load)
    assert [cache.get() for _ in range(5)] == [{"a": 1}] * 5
    assert load.reads == 1


def test_a_file_replaced_by_rename_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    atomic_write(path, b'{"a": 1}')
    cache = FileCache(path, Loader())
    assert cache.get() == {"a": 1}
    atomic_write(path, b'{"a": 2}')  # same size, same second: a new inode all the same
    assert cache.get() == {"a": 2}


def test_a_file_edited_in_place_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"a": 1}')
    cache = FileCache(path, Loader())
    assert cache.get() == {"a": 1}
    with path.open("w") as handle:  # same inode, new size
        handle.write('{"a": 10}')
    assert cache.get() == {"a": 10}
    stat = path.stat()
    path.write_text('{"a": 20}')  # same inode and size: the modification time tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))
    assert cache.get() == {"a": 20}


def test_a_file_that_appears_or_disappears_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "consent.json"
    cache = FileCache(path, Loader())
    assert cache.get() is None
    path.write_text('{"p": ["ETREAT"]}')
    assert cache.get() == {"p": ["ETREAT"]}
    path.unlink()
    assert cache.get() is None


def test_a_damaged_file_fails_on_every_use_and_is_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("{not json")
    load = Loader()
    cache = FileCache(path, load)
    for _ in range(2):
        with pytest.raises(ValueError):
            cache.get()
    assert load.reads == 2
    path.write_text('{"fixed": true}')
    assert cache.get() == {"fixed": True}
