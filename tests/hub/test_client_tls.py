"""The hub client's TLS settings are built once and shared, and a changed CA is reloaded."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from medspace.hub.client import HubClient, tls_context
from medspace.identity.certs import init_certs


def test_the_default_roots_are_loaded_once_and_shared() -> None:
    first = tls_context()
    assert isinstance(first, ssl.SSLContext)
    assert tls_context() is first
    assert first.verify_mode is ssl.CERT_REQUIRED and first.check_hostname


def test_a_hub_ca_file_is_trusted_and_its_context_shared(tmp_path: Path) -> None:
    bundle = init_certs(tmp_path / "certs")
    context = tls_context(bundle.ca.cert)
    assert tls_context(str(bundle.ca.cert)) is context
    assert context is not tls_context()
    subjects = [dict(item[0] for item in c["subject"]) for c in context.get_ca_certs()]
    assert len(subjects) == 1 and "MedSpace" in subjects[0]["commonName"]


def test_a_replaced_ca_file_is_loaded_again(tmp_path: Path) -> None:
    old = init_certs(tmp_path / "old")
    new = init_certs(tmp_path / "new")
    path = tmp_path / "ca.pem"
    path.write_bytes(old.ca.cert.read_bytes())
    before = tls_context(path)
    path.write_bytes(new.ca.cert.read_bytes() + b"\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = tls_context(path)
    assert after is not before
    assert after.get_ca_certs() == tls_context(new.ca.cert).get_ca_certs()
    assert after.get_ca_certs() != before.get_ca_certs()


def test_a_missing_ca_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HubClient("https://hub.example:8443", ca_file=tmp_path / "absent.pem")


def test_ssl_cert_file_is_honoured_like_httpx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = init_certs(tmp_path / "certs")
    default = tls_context()
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle.ca.cert))
    custom = tls_context()
    assert custom is not default
    assert len(custom.get_ca_certs()) == 1


def test_a_same_size_copy_that_keeps_the_time_is_loaded_again(tmp_path: Path) -> None:
    """`cp -p`, rsync -a or a config tool can replace a CA file with one of the same size
    and modification time; the change time still differs (a second review found the
    old context served)."""
    old = init_certs(tmp_path / "old").ca.cert.read_bytes()
    new = init_certs(tmp_path / "new").ca.cert.read_bytes()
    size = max(len(old), len(new))
    old, new = old.ljust(size, b"\n"), new.ljust(size, b"\n")
    path = tmp_path / "ca.pem"
    path.write_bytes(old)
    before = tls_context(path)
    stat = path.stat()
    path.write_bytes(new)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    after = tls_context(path)
    assert after.get_ca_certs() != before.get_ca_certs()
