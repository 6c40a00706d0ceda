"""The small CA: chain and SANs verify, keys are private, mutual TLS works end to end."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import stat
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from medspace.identity import CertBundle, CertError, init_certs, issue_node_cert


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def bundle(tmp_path: Path, t0: datetime) -> CertBundle:
    return init_certs(tmp_path / "certs", nodes=["h1", "h2"], now=t0)


def test_hub_certificate_chains_to_the_ca_for_its_hosts(bundle: CertBundle, t0: datetime) -> None:
    ca, hub = _load(bundle.ca.cert), _load(bundle.hub.cert)
    store = Store([ca])
    for host in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        verifier = PolicyBuilder().store(store).time(t0).build_server_verifier(host)
        chain = verifier.verify(hub, [])
        assert chain[-1] == ca
    wrong = PolicyBuilder().store(store).time(t0).build_server_verifier(x509.DNSName("evil.test"))
    with pytest.raises(VerificationError):
        wrong.verify(hub, [])


def test_hub_certificate_has_exactly_the_requested_sans(bundle: CertBundle) -> None:
    san = _load(bundle.hub.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = _load(bundle.hub.cert).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_ca_may_sign_leaves_only(bundle: CertBundle) -> None:
    constraints = _load(bundle.ca.cert).extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert (constraints.value.ca, constraints.value.path_length) == (True, 0)


def test_node_certificates_are_client_certificates_signed_by_the_ca(
    bundle: CertBundle, t0: datetime
) -> None:
    ca = _load(bundle.ca.cert)
    assert sorted(bundle.nodes) == ["h1", "h2"]
    verifier = PolicyBuilder().store(Store([ca])).time(t0).build_client_verifier()
    for node, pair in bundle.nodes.items():
        cert = _load(pair.cert)
        cert.verify_directly_issued_by(ca)
        verified = verifier.verify(cert, [])
        assert x509.UniformResourceIdentifier(f"urn:medspace:node:{node}") in verified.subjects
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_certificate_from_another_ca_does_not_verify(
    bundle: CertBundle, tmp_path: Path, t0: datetime
) -> None:
    other = init_certs(tmp_path / "other", now=t0)
    verifier = (
        PolicyBuilder()
        .store(Store([_load(bundle.ca.cert)]))
        .time(t0)
        .build_server_verifier(x509.DNSName("localhost"))
    )
    with pytest.raises(VerificationError):
        verifier.verify(_load(other.hub.cert), [])


def test_keys_are_private_and_the_directory_closed(bundle: CertBundle) -> None:
    keys = [bundle.ca.key, bundle.hub.key, *(p.key for p in bundle.nodes.values())]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key.name
    assert stat.S_IMODE(bundle.directory.stat().st_mode) == 0o700


def test_custom_hosts_replace_the_defaults(tmp_path: Path, t0: datetime) -> None:
    bundle = init_certs(tmp_path / "c", hosts=["hub.example.org", "10.0.0.5", "::1"], now=t0)
    san = _load(bundle.hub.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["hub.example.org"]
    assert san.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.5"),
        ipaddress.ip_address("::1"),
    ]


def test_existing_ca_is_never_overwritten(bundle: CertBundle, t0: datetime) -> None:
    before = bundle.ca.cert.read_bytes()
    with pytest.raises(CertError, match="already holds certificates"):
        init_certs(bundle.directory, now=t0)
    assert bundle.ca.cert.read_bytes() == before


@pytest.mark.parametrize(
    ("hosts", "nodes", "message"),
    [
        ([], [], "at least one host"),  # no host
        (["*.example.org"], [], "no wildcards"),  # wildcard
        (["bad host"], [], "invalid host name"),  # space
        (["localhost"], ["H1"], "invalid node name"),  # uppercase node
        (["localhost"], ["h1", "h1"], "listed twice"),  # duplicate node
    ],
)
def test_bad_names_are_refused_before_anything_is_written(
    tmp_path: Path, hosts: list[str], nodes: list[str], message: str
) -> None:
    with pytest.raises(CertError, match=message):
        init_certs(tmp_path / "c", hosts=hosts, nodes=nodes)
    assert not (tmp_path / "c").exists()


def test_a_node_joining_later_gets_a_certificate_from_the_same_ca(
    bundle: CertBundle, t0: datetime
) -> None:
    pair = issue_node_cert(bundle.directory, "h3", now=t0 + timedelta(days=1))
    _load(pair.cert).verify_directly_issued_by(_load(bundle.ca.cert))
    assert stat.S_IMODE(pair.key.stat().st_mode) == 0o600
    with pytest.raises(CertError, match="already exists"):
        issue_node_cert(bundle.directory, "h3")


def test_node_certificate_needs_a_private_ca(tmp_path: Path, bundle: CertBundle) -> None:
    with pytest.raises(CertError, match="no CA"):
        issue_node_cert(tmp_path / "empty", "h3")
    bundle.ca.key.chmod(0o644)
    with pytest.raises(CertError, match="chmod 600"):
        issue_node_cert(bundle.directory, "h3")


def test_mutual_tls_handshake_between_hub_and_node(tmp_path: Path) -> None:
    bundle = init_certs(tmp_path / "live", nodes=["h1"])  # valid today, for the TLS stack
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=bundle.ca.cert)
    server_ctx.load_cert_chain(bundle.hub.cert, bundle.hub.key)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=bundle.ca.cert)
    client_ctx.load_cert_chain(bundle.nodes["h1"].cert, bundle.nodes["h1"].key)

    server_sock, client_sock = socket.socketpair()
    seen: dict[str, object] = {}

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(server_sock, server_side=True) as tls:
                seen["peer"] = tls.getpeercert()
                tls.sendall(tls.recv(5))
        except (OSError, ssl.SSLError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    with client_ctx.wrap_socket(client_sock, server_hostname="localhost") as tls:
        tls.sendall(b"hello")
        assert tls.recv(5) == b"hello"
    thread.join(timeout=30)
    assert "error" not in seen, seen.get("error")
    subject = dict(x[0] for x in seen["peer"]["subject"])  # type: ignore[index]
    assert subject["commonName"] == "h1"


def test_tls_client_refuses_a_hub_name_not_in_the_certificate(tmp_path: Path) -> None:
    bundle = init_certs(tmp_path / "live")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(bundle.hub.cert, bundle.hub.key)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=bundle.ca.cert)
    server_sock, client_sock = socket.socketpair()

    def serve() -> None:
        # The client aborts the handshake: that is the point of the test.
        with contextlib.suppress(OSError):
            server_ctx.wrap_socket(server_sock, server_side=True).close()

    thread = threading.Thread(target=serve)
    thread.start()
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        client_ctx.wrap_socket(client_sock, server_hostname="hub.elsewhere.org")
    client_sock.close()
    thread.join(timeout=30)
