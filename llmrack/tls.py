"""The gateway's TLS trust: a CA of the project on the admin machine, certificates it issues, and what clients
check the gateway against.

``self-signed`` mode: the first deploy makes the project's CA (``secrets/cluster/gateway-ca.{crt,key}``, kept
by :mod:`llmrack.secrets`' policy) and issues each gateway a certificate for its address, its
``common_name``, ``localhost`` and ``127.0.0.1``; the deploy uploads it when the host has none. A certificate
already on the host is never replaced: one this CA did not issue (made on the host by an older release, or
by another admin machine's CA) becomes the trust anchor for that host itself (pinned, as SSH pins host keys).
Either way the deploy leaves the anchor in ``secrets/<host>/gateway-ca.crt``; ``provided`` mode uses
``stack.gateway.tls.ca_file`` when set, else the system's trust store.

verify, smoke and bench check every certificate (:func:`client_context`): a gateway that answers with any
other certificate fails the TLS handshake. Users give their clients the same CA file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from llmrack import secrets as sec
from llmrack.errors import LlmrackError

CA_CERT, CA_KEY = "gateway-ca.crt", "gateway-ca.key"
ANCHOR = "gateway-ca.crt"  # per host: what clients check its gateway against
CERT, KEY = "gateway.crt", "gateway.key"  # per host: the certificate this CA issued for it


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)  # what every client speaks


def _key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_cert(path: Path) -> x509.Certificate | None:
    text = sec.read_private(path)
    if text is None:
        return None
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        raise LlmrackError("not a PEM certificate (delete it to make a new one)", source=str(path)) from None


def _load_key(path: Path) -> rsa.RSAPrivateKey | None:
    text = sec.read_private(path)
    if text is None:
        return None
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise LlmrackError("not an RSA private key llmrack wrote", source=str(path))
    return key


def project_ca(project_dir: str | Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The project's gateway CA, made once (10 years)."""
    d = sec.private_dir(sec.private_dir(sec.secrets_root(project_dir)) / sec.CLUSTER)
    cert, key = _load_cert(d / CA_CERT), _load_key(d / CA_KEY)
    if cert is not None and key is not None:
        return cert, key
    if cert is not None or key is not None:
        raise LlmrackError("the gateway CA is incomplete (certificate or key missing); restore the other file",
                           source=str(d / (CA_KEY if cert is not None else CA_CERT)))
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmrack gateway CA")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    sec.write_private(d / CA_KEY, _key_pem(key))
    sec.write_private(d / CA_CERT, _cert_pem(cert))
    return cert, key


def san_names(common_name: str, address: str) -> list[str]:
    """The names a gateway certificate carries: its name, its address, ``localhost``, ``127.0.0.1``."""
    return list(dict.fromkeys(n for n in (common_name, address, "localhost", "127.0.0.1") if n))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False


def gateway_certificate(project_dir: str | Path, host: str, *, common_name: str, address: str,
                        days: int) -> tuple[str, str]:
    """(certificate PEM, key PEM) the project's CA issued for ``host``'s gateway; issued again when its names
    no longer match (the CA stays, so clients that trust it keep working)."""
    ca, ca_key = project_ca(project_dir)
    d = sec.private_dir(sec.host_dir(project_dir, host))
    names = san_names(common_name, address)
    cert, key = _load_cert(d / CERT), _load_key(d / KEY)
    if cert is not None and key is not None and issued_by(cert, ca):
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if {str(g.value) for g in have} == set(names):
            return _cert_pem(cert), _key_pem(key)
    key = _new_key()
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    sec.write_private(d / KEY, _key_pem(key))
    sec.write_private(d / CERT, _cert_pem(cert))
    return _cert_pem(cert), _key_pem(key)


def adopt_gateway_tls(project_dir: str | Path, host: str, *, on_host: str | None, common_name: str, address: str,
                      days: int) -> tuple[tuple[str, str] | None, str]:
    """What the deploy does with the gateway's TLS files of ``host`` and what it tells the user.

    ``on_host``: the host's ``server.crt`` (None: the host has no certificate and key). Returns
    ((certificate, key) to upload or None, one line) and leaves the host's trust anchor on this machine."""
    anchor = sec.host_dir(project_dir, host) / ANCHOR
    if on_host is None:
        pem = gateway_certificate(project_dir, host, common_name=common_name, address=address, days=days)
        sec.write_private(anchor, _cert_pem(project_ca(project_dir)[0]))
        return pem, f"gateway certificate issued by the project's CA ({anchor})"
    try:
        present = x509.load_pem_x509_certificate(on_host.encode())
    except ValueError:
        raise LlmrackError("not a PEM certificate; fix or delete it on the host",
                           source=f"{host}:tls/server.crt") from None
    ca = project_ca(project_dir)[0]
    text = _cert_pem(ca) if issued_by(present, ca) else _cert_pem(present)
    if (sec.read_private(anchor) or "") != text:
        sec.write_private(anchor, text)
        how = "the project's CA" if text == _cert_pem(ca) else "the host's own certificate (pinned)"
        return None, f"gateway trust anchor: {how} ({anchor})"
    return None, ""


def trust_anchor(project_dir: str | Path, host: str, tls) -> Path | None:
    """The CA file to check ``host``'s gateway against (None: the system's trust store). Read only.

    ``tls``: the host's ``stack.gateway.tls`` settings."""
    if tls.mode == "provided":
        return Path(tls.ca_file) if tls.ca_file else None
    path = sec.AdminSecrets(project_dir).gateway_ca(host)
    if path is None:
        raise LlmrackError(f"no CA for {host}'s gateway on this machine: deploy the stack from here first "
                           "(it writes it) or copy it from the admin machine that did",
                           source=str(sec.host_dir(project_dir, host) / ANCHOR))
    sec.read_private(path)  # the policy: refuses a file others can read
    return path


def client_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """A TLS client context that verifies the server's certificate and name (against ``ca_file``, else the
    system's trust store)."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise LlmrackError(f"not a usable CA file: {exc}", source=str(ca_file)) from None
    # a pinned host certificate (issued by another admin machine's CA) is its own trust anchor: OpenSSL accepts a
    # trusted certificate that is not self-signed only with partial chains allowed (Python 3.13's default)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx
