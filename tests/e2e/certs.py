"""certs.py - the test PKI: a CA and the certificates the TLS tests need, made on the spot.

make(directory) writes, each as NAME.pem (certificate, chain where there is one) and NAME.key
(private key, mode 0600), and returns {NAME: (pem_path, key_path)} plus "ca" -> the CA file:

  gw          the gateway: DNS:xmpp.example, URI:sip:xmpp.example, DNS:conference.xmpp.example
  gw_next     the gateway's next certificate (the same names, another key): a renewal
  sip         peer sip.example: DNS:sip.example, URI:sip:sip.example
  sip2        peer sip2.example
  cn_only     sip.example named by its CommonName only (no subjectAltName): valid (RFC 5922 7.1)
  expired     sip.example, expired yesterday
  wrong       other.example (a valid certificate for another domain)
  wildcard    DNS:*.example (wildcards are refused, RFC 5922 7.2)
  untrusted   sip.example, self-signed, outside the CA
  xmpp        the XMPP server: DNS:xmpp.example (for the component link over TLS)
  xmpp_wrong  an XMPP server certificate for other.example
  relay       an MSRP relay: DNS:relay.sip.example, URI:msrps://relay.sip.example

Written with python3-cryptography (Debian package), EC P-256 keys.
"""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_DAY = datetime.timedelta(days=1)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "simplegw tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path, key):
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _write_certs(path, *certs):
    with open(path, "wb") as f:
        for c in certs:
            f.write(c.public_bytes(serialization.Encoding.PEM))


def _cert(subject_cn, key, issuer_name, issuer_key, *, dns=(), uris=(), ips=(), ca=False,
          not_before=None, not_after=None, san=True):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(_name(subject_cn))
         .issuer_name(issuer_name)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before or now - _DAY)
         .not_valid_after(not_after or now + 365 * _DAY)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                                          encipher_only=False, decipher_only=False),
                            critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    names = ([x509.DNSName(d) for d in dns] + [x509.UniformResourceIdentifier(u) for u in uris]
             + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])
    if san and names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make(directory):
    os.makedirs(directory, exist_ok=True)
    out = {}
    ca_key = _key()
    ca_name = _name("simplegw test CA")
    ca = _cert("simplegw test CA", ca_key, ca_name, ca_key, ca=True)
    _write_certs(os.path.join(directory, "ca.pem"), ca)
    _write_key(os.path.join(directory, "ca.key"), ca_key)
    out["ca"] = os.path.join(directory, "ca.pem")
    now = datetime.datetime.now(datetime.timezone.utc)

    def leaf(name, cn, self_signed=False, **kw):
        key = _key()
        if self_signed:
            cert = _cert(cn, key, _name(cn), key, **kw)
        else:
            cert = _cert(cn, key, ca_name, ca_key, **kw)
        pem = os.path.join(directory, name + ".pem")
        keyp = os.path.join(directory, name + ".key")
        _write_certs(pem, cert)
        _write_key(keyp, key)
        out[name] = (pem, keyp)

    leaf("gw", "xmpp.example", dns=["xmpp.example", "conference.xmpp.example"],
         uris=["sip:xmpp.example"])
    leaf("gw_next", "xmpp.example", dns=["xmpp.example", "conference.xmpp.example"],
         uris=["sip:xmpp.example"])
    leaf("sip", "sip.example", dns=["sip.example"], uris=["sip:sip.example"])
    leaf("sip2", "sip2.example", dns=["sip2.example"], uris=["sip:sip2.example"])
    leaf("cn_only", "sip.example", san=False)
    leaf("expired", "sip.example", dns=["sip.example"], uris=["sip:sip.example"],
         not_before=now - 30 * _DAY, not_after=now - _DAY)
    leaf("wrong", "other.example", dns=["other.example"], uris=["sip:other.example"])
    leaf("wildcard", "*.example", dns=["*.example"])
    leaf("untrusted", "sip.example", self_signed=True, dns=["sip.example"],
         uris=["sip:sip.example"])
    leaf("xmpp", "xmpp.example", dns=["xmpp.example"])
    leaf("xmpp_wrong", "other.example", dns=["other.example"])
    leaf("relay", "relay.sip.example", dns=["relay.sip.example"],
         uris=["msrps://relay.sip.example"])
    return out


def combined(directory, name, paths):
    """Writes NAME-combined.pem (certificate then key: ejabberd's and Sofia's layout, mode
    0600) and returns its path."""
    pem, key = paths[name]
    path = os.path.join(directory, name + "-combined.pem")
    with open(pem, "rb") as a, open(key, "rb") as b:
        data = a.read() + b.read()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


if __name__ == "__main__":
    import sys
    for k, v in make(sys.argv[1] if len(sys.argv) > 1 else "certs").items():
        print(k, v)
