"""A small certificate authority so the hub and nodes can talk over (mutual) TLS.

`init_certs(dir, hosts, nodes)` writes, with keys mode 0600 in a 0700 directory:

    ca.crt  ca.key            the consortium CA (self-signed, may sign leaves only)
    hub.crt hub.key           the hub's server certificate (serverAuth, SAN = hosts)
    nodes/<node>.crt/.key     one client certificate per node (clientAuth, CN = node)

Keys are ECDSA P-256, which every TLS stack accepts. Certificates follow RFC 5280
profiles: the CA has basicConstraints cA=TRUE pathLen=0, leaves cA=FALSE with key
identifiers linking them to the CA.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from medspace.identity._time import as_utc, utc_now
from medspace.identity.errors import CertError, InvalidUserError
from medspace.identity.keys import write_secret_file
from medspace.identity.roles import check_node_name

DEFAULT_HOSTS = ("localhost", "127.0.0.1")
CA_DAYS = 3650
LEAF_DAYS = 397  # the CA/Browser Forum ceiling for server certificates
_BACKDATE = timedelta(minutes=5)  # tolerate small clock differences between machines
_DNS_NAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


@dataclass(frozen=True, slots=True)
class CertPair:
    """A certificate file and its private key file."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class CertBundle:
    """Where `init_certs` wrote everything."""

    directory: Path
    ca: CertPair
    hub: CertPair
    nodes: dict[str, CertPair] = field(default_factory=dict)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not isinstance(host, str) or not _DNS_NAME.fullmatch(host):
        raise CertError(
            "invalid host name for the hub certificate; give DNS names or IP addresses "
            "(e.g. localhost, 127.0.0.1, hub.example.org), no wildcards"
        )
    return x509.DNSName(host.lower())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MedSpace"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_secret_file(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    names: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    now: datetime,
    days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _new_ca(now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("MedSpace consortium CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _node_names(nodes: Sequence[str]) -> list[str]:
    try:
        names = [check_node_name(n) for n in nodes]
    except InvalidUserError as exc:
        raise CertError(str(exc)) from None
    if len(set(names)) != len(names):
        raise CertError("a node is listed twice; give each node once")
    return names


def _issue_node(
    directory: Path,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    node: str,
    now: datetime,
    days: int,
) -> CertPair:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"urn:medspace:node:{node}")]
    cert, key = _leaf(ca_cert, ca_key, node, names, ExtendedKeyUsageOID.CLIENT_AUTH, now, days)
    folder = directory / "nodes"
    folder.mkdir(mode=0o700, exist_ok=True)
    pair = CertPair(folder / f"{node}.crt", folder / f"{node}.key")
    if pair.cert.exists() or pair.key.exists():
        raise CertError(f"a certificate for node {node!r} already exists; remove it to reissue")
    _write_key(pair.key, key)
    _write_cert(pair.cert, cert)
    return pair


def init_certs(
    directory: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    nodes: Sequence[str] = (),
    *,
    now: datetime | None = None,
    days: int = LEAF_DAYS,
) -> CertBundle:
    """Create a new CA, a hub server certificate for `hosts` and a client certificate
    per node in `directory` (created 0700 if missing).

    Raises `CertError` if `directory` already holds a CA, a host or node name is invalid,
    or no host is given.
    """
    if not hosts:
        raise CertError("give at least one host name for the hub certificate (e.g. localhost)")
    host_names = [_general_name(h) for h in hosts]
    node_names = _node_names(nodes)
    moment = as_utc(now or utc_now(), "now")
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = CertPair(directory / "ca.crt", directory / "ca.key")
    hub = CertPair(directory / "hub.crt", directory / "hub.key")
    if any(p.exists() for p in (ca.cert, ca.key, hub.cert, hub.key)):
        raise CertError(
            f"{directory} already holds certificates; use an empty directory "
            "or `issue_node_cert` to add a node"
        )
    ca_cert, ca_key = _new_ca(moment)
    _write_key(ca.key, ca_key)
    _write_cert(ca.cert, ca_cert)
    hub_cert, hub_key = _leaf(
        ca_cert, ca_key, hosts[0], host_names, ExtendedKeyUsageOID.SERVER_AUTH, moment, days
    )
    _write_key(hub.key, hub_key)
    _write_cert(hub.cert, hub_cert)
    issued = {n: _issue_node(directory, ca_cert, ca_key, n, moment, days) for n in node_names}
    return CertBundle(directory, ca, hub, issued)


def issue_node_cert(
    directory: Path, node: str, *, now: datetime | None = None, days: int = LEAF_DAYS
) -> CertPair:
    """Issue a client certificate for a node that joins later, signed by the existing CA.

    Raises `CertError` if the CA is missing or unsafe, or the node already has one.
    """
    _node_names([node])
    directory = Path(directory)
    ca_cert, ca_key = _load_ca(directory)
    return _issue_node(directory, ca_cert, ca_key, node, as_utc(now or utc_now(), "now"), days)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not cert_path.is_file() or not key_path.is_file():
        raise CertError(f"no CA in {directory}; run `medspace certs init` first")
    if os.stat(key_path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CertError(f"{key_path} is readable by others; run `chmod 600 {key_path}`")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError:
        raise CertError(f"the CA files in {directory} are not PEM; recreate the CA") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{key_path} is not an EC key; recreate the CA")
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise CertError(f"{key_path} does not belong to {cert_path}; restore the matching pair")
    return cert, key
