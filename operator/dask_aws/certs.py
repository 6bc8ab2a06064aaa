"""Each cluster's own certificate authority and the certificates of Dask's mutual TLS.

distributed verifies that the peer's certificate chains to the configured CA and does not
check host names (Dask addresses are IPs), so the CA is the trust boundary: one CA per
cluster means a certificate of cluster A is refused by cluster B. The CA's private key is
discarded once the two certificates are signed: nobody, dask-aws included, can issue more,
and there is no key to protect. New certificates mean a new CA (and new tasks).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    # Imported where a Security is made: the operator makes certificates for every
    # cluster but a client only for the few it talks to (engine/scheduler_api.py says why).
    from distributed.security import Security

# Keys of the JSON document in the cluster's Secrets Manager secret. `tls.*` is what the
# scheduler and workers present, `client.*` what clients (the operator, notebooks) present;
# the names match a Kubernetes TLS Secret's.
CA, NODE_CERT, NODE_KEY, CLIENT_CERT, CLIENT_KEY = (
    "ca.crt",
    "tls.crt",
    "tls.key",
    "client.crt",
    "client.key",
)
DEFAULT_VALIDITY_DAYS = 365
# Clocks of the issuing machine and the tasks differ a little.
BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class Bundle:
    ca: str
    node_cert: str
    node_key: str
    client_cert: str
    client_key: str

    @property
    def not_after(self) -> datetime.datetime:
        certificate = x509.load_pem_x509_certificate(self.ca.encode())
        return certificate.not_valid_after_utc

    def to_json(self) -> str:
        return json.dumps(
            {
                CA: self.ca,
                NODE_CERT: self.node_cert,
                NODE_KEY: self.node_key,
                CLIENT_CERT: self.client_cert,
                CLIENT_KEY: self.client_key,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Bundle:
        document = json.loads(text)
        return cls(
            ca=document[CA],
            node_cert=document[NODE_CERT],
            node_key=document[NODE_KEY],
            client_cert=document[CLIENT_CERT],
            client_key=document[CLIENT_KEY],
        )

    def client_security(self) -> Security:
        return client_security(self.ca, self.client_cert, self.client_key)


def security_from_secret(data: Mapping[str, str]) -> Security:
    """A client's Security from the operator's connection Secret (its values decoded):
    ca.crt, tls.crt, tls.key; a plain tcp:// cluster's Secret has none and needs none."""
    if "tls.key" not in data:
        from distributed.security import Security

        return Security()  # type: ignore[no-untyped-call]
    return client_security(data["ca.crt"], data["tls.crt"], data["tls.key"])


def client_security(ca: str, cert: str, key: str) -> Security:
    """What a Dask client needs to connect: PEM contents, no files."""
    from distributed.security import Security

    return Security(  # type: ignore[no-untyped-call]
        tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, require_encryption=True
    )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dask-aws"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def new_ca(
    common_name: str, start: datetime.datetime, end: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    ca_key = _key()
    ca_name = _name(common_name)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca, ca_key


def issue(cluster: str, validity_days: int, now: datetime.datetime | None = None) -> Bundle:
    """A new CA for `cluster` and two certificates it signed, valid for `validity_days`."""
    start = (now or datetime.datetime.now(datetime.UTC)) - BACKDATE
    end = start + BACKDATE + datetime.timedelta(days=validity_days)
    ca, ca_key = new_ca(f"dask-aws CA {cluster}", start, end)
    ca_name = ca.subject

    def leaf(common_name: str, usages: list[x509.ObjectIdentifier]) -> tuple[str, str]:
        key = _key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key)

    # Scheduler and workers both accept and open connections: server and client use.
    node_cert, node_key = leaf(
        f"dask-aws node {cluster}",
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    client_cert, client_key = leaf(f"dask-aws client {cluster}", [ExtendedKeyUsageOID.CLIENT_AUTH])
    return Bundle(
        ca=ca.public_bytes(serialization.Encoding.PEM).decode(),
        node_cert=node_cert,
        node_key=node_key,
        client_cert=client_cert,
        client_key=client_key,
    )


# Warn this long before expiry (or a third of the validity, if shorter): time to plan
# the scheduler replacement that new certificates need.
WARN_BEFORE = datetime.timedelta(days=30)


def expiry_warning(not_after: str | None, validity_days: int, now: datetime.datetime) -> str | None:
    """A sentence for people when the certificates expire soon (or did), else None."""
    if not not_after:
        return None
    expires = datetime.datetime.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC
    )
    window = min(WARN_BEFORE, datetime.timedelta(days=validity_days) / 3)
    if now < expires - window:
        return None
    when = "expired" if now >= expires else "expire"
    return (
        f"the cluster's TLS certificates {when} at {not_after}: new clients cannot connect "
        "after that. Change spec.tls.validityDays to issue new ones (this replaces the "
        "scheduler and every worker)"
    )
