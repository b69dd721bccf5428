"""DKIM signing (RFC 6376, rsa-sha256, relaxed/simple) of the messages `digest send` writes.

The RSA operation runs in OpenSSL (the `cryptography` package): dkimpy signs in pure Python, about 7 ms a
message on the 2-core machine, which would cut a send from thousands of messages a second to ~140 (see
bench/dkim_bench.py). We sign only messages we wrote ourselves, so the canonicalisation is short: the fixed
headers are canonicalised once per digest, per recipient only To, Message-ID and List-Unsubscribe and the
body hash. The tests verify every signature with dkimpy, an implementation written apart from this one.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from digest.config import Config

# What we sign. RFC 8058 requires List-Unsubscribe and List-Unsubscribe-Post to be signed. Reply-To is listed
# even when absent: a signed "nothing" makes one added later break the signature.
SIGNED = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "content-language",
    "mime-version",
    "content-type",
)
# Listed twice ("over-signed"): a second From, Subject or unsubscribe header added on the way breaks it.
OVERSIGNED = ("from", "subject", "list-unsubscribe", "list-unsubscribe-post")
HEADER_LIST = ":".join(SIGNED + OVERSIGNED)


def _folded(names: tuple[str, ...], lead: int) -> str:
    """h='s value folded after a colon (FWS is allowed there), its first line after `lead` characters, so that
    no line of the header passes 78 characters (the last name counted with the ";" that ends h=)."""
    out, width = "", lead
    for n, name in enumerate(names):
        piece = name + (":" if n < len(names) - 1 else ";")
        if width + len(piece) > 78:
            out, width = out + "\r\n ", 1
        out, width = out + piece, width + len(piece)
    return out.removesuffix(";")


# After " t=<10 digits>; h=".
_H_FOLDED = _folded(SIGNED + OVERSIGNED, lead=len(" t=1617264000; h="))
KEYGEN = (
    "openssl genrsa -out dkim.pem 2048   (keep it outside the repository; publish `digest.dkim.dns_record`)"
)

_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
_WSP = re.compile(rb"[ \t]+")
_FIELD = re.compile(rb"\r\n(?![ \t])")


def relaxed(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: the header in relaxed form, `name:value` CRLF (lower-case name, unfolded)."""
    value = _WSP.sub(b" ", _FOLD.sub(b"", value)).strip(b" \t\r\n")
    return name.strip().lower() + b":" + value + b"\r\n"


def canonical_fields(block: bytes) -> dict[bytes, bytes]:
    """The relaxed form of each header field in a block of CRLF header lines, by lower-case name."""
    out: dict[bytes, bytes] = {}
    for field in _FIELD.split(block.rstrip(b"\r\n")):
        name, sep, value = field.partition(b":")
        if sep:
            out[name.strip().lower()] = relaxed(name, value)
    return out


@dataclass(frozen=True)
class Signer:
    """A domain, a selector and the RSA private key that signs for them."""

    domain: str
    selector: str
    key: RSAPrivateKey

    def bind(self, fixed: bytes) -> Signing:
        """Canonicalise the headers every message of a digest shares, once."""
        return Signing(self, canonical_fields(fixed))

    def sign(self, fields: Mapping[bytes, bytes], body: bytes, *, timestamp: int) -> bytes:
        """The DKIM-Signature header (CRLF-terminated) for these canonical header fields and this body."""
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
        from cryptography.hazmat.primitives.hashes import SHA256

        # Simple body canonicalisation: our bodies end in exactly one CRLF (the closing boundary line).
        body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        value = (
            f" v=1; a=rsa-sha256; c=relaxed/simple; d={self.domain}; s={self.selector};\r\n"
            f" t={timestamp}; h={_H_FOLDED};\r\n bh={body_hash};\r\n b="
        )
        # Each name once: its second listing (over-signing) matches no further instance, the null string.
        hashed = b"".join(fields.get(name.encode(), b"") for name in SIGNED)
        hashed += relaxed(b"DKIM-Signature", value.encode()).rstrip(b"\r\n")
        sig = base64.b64encode(self.key.sign(hashed, PKCS1v15(), SHA256())).decode()
        folded = "\r\n ".join(sig[i : i + 72] for i in range(0, len(sig), 72))
        return f"DKIM-Signature:{value}{folded}\r\n".encode()

    def dns_record(self) -> str:
        """The TXT record to publish at <selector>._domainkey.<domain>."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        der = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


@dataclass(frozen=True)
class Signing:
    """A signer bound to one digest's fixed headers; `sign` adds one recipient's headers and body."""

    signer: Signer
    fixed: Mapping[bytes, bytes]

    def sign(self, recipient_headers: bytes, body: bytes, *, timestamp: int) -> bytes:
        """The DKIM-Signature header for one message: the fixed headers, these CRLF header lines, the body."""
        return self.signer.sign(
            {**self.fixed, **canonical_fields(recipient_headers)}, body, timestamp=timestamp
        )


def signer_from_config(config: Config) -> Signer | None:
    """The signer [dkim] and DIGEST_DKIM_KEY describe, None when DKIM is not set up; ConfigError if half set
    up or the key is unusable (before anything is sent)."""
    domain, selector, key_file = (
        config.dkim.domain.strip(),
        config.dkim.selector.strip(),
        config.dkim.key_file,
    )
    pem = config.secrets.dkim_key
    if not (domain or selector or key_file or pem):
        return None
    if not domain or not selector:
        missing = "[dkim] domain" if not domain else "[dkim] selector"
        raise ConfigError(
            f"DKIM is half set up: {missing} is not set (set [dkim] domain and selector, the key in "
            "DIGEST_DKIM_KEY or [dkim] key_file; or none of them to send unsigned)"
        )
    for what, name in (("domain", domain), ("selector", selector)):
        if not _NAME.fullmatch(name) or len(name) > 253:
            raise ConfigError(f"[dkim] {what}: {name!r} is not a DNS name (letters, digits, '-' and '.')")
    if pem:
        where = "environment variable DIGEST_DKIM_KEY"
        if "\\n" in pem and "\n" not in pem:
            pem = pem.replace("\\n", "\n")  # a CI secret pasted with escaped line ends
        data = pem.encode("utf-8", "replace")
    elif key_file is not None:
        where = f"[dkim] key_file {key_file}"
        data = _read_key_file(key_file)
    else:
        raise ConfigError(
            f"[dkim] domain {domain!r} and selector {selector!r} are set but there is no private key: set "
            f"DIGEST_DKIM_KEY to its PEM text or [dkim] key_file to its path (make one: {KEYGEN})"
        )
    return Signer(domain.lower(), selector, _load_key(data, where))


def alignment_warning(config: Config) -> str | None:
    """Why receivers checking DMARC will not count the signature, when [dkim] domain is surely not the
    From address's organisation; None when it is, may be, or DKIM is not set up.

    DMARC's relaxed alignment wants the same organisational domain for d= and the From address. Telling
    the organisational domain needs the public suffix list; without it, a warning is given only where no
    reading could align them: neither domain is the other or below it, and their last two labels differ
    (a co.uk pair is never warned about, rather than a right one warned about)."""
    domain = config.dkim.domain.strip().lower().rstrip(".")
    sender = config.sender.domain.lower().rstrip(".")
    if not domain or domain == sender or sender.endswith(f".{domain}") or domain.endswith(f".{sender}"):
        return None
    if domain.split(".")[-2:] == sender.split(".")[-2:]:
        return None
    return (
        f"[dkim] domain {domain!r} is not the From address's domain ({sender}) nor a parent of it: the "
        "messages are signed, but receivers checking DMARC will not count that signature (sign with the "
        "From domain, or send from the signing domain)"
    )


def _read_key_file(path: Path) -> bytes:
    resolved = path.resolve()
    for folder in resolved.parents:
        if (folder / ".git").exists():
            # A private key committed once stays in the history of every clone.
            raise ConfigError(
                f"[dkim] key_file {path} is inside the git repository {folder}: keep the private key "
                "outside any repository (e.g. ~/.config/digest/dkim.pem) or pass it in DIGEST_DKIM_KEY"
            )
    try:
        return resolved.read_bytes()
    except OSError as err:
        raise ConfigError(f"[dkim] key_file {path}: cannot read: {err.strerror or err}") from err


def _load_key(data: bytes, where: str) -> RSAPrivateKey:
    try:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError as err:
        raise ConfigError(
            "DKIM signing needs the `cryptography` package: pip install 'newsletter-digest[dkim]'"
        ) from err
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError as err:  # the key is encrypted
        raise ConfigError(f"{where}: the private key is encrypted; give it unencrypted ({err})") from err
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ConfigError(
            f"{where}: not a PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----;"
            f" make one: {KEYGEN})"
        ) from err
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"{where}: not an RSA key; DKIM here signs with rsa-sha256 (make one: {KEYGEN})")
    if key.key_size < 1024:
        # RFC 8301: verifiers ignore signatures by keys under 1024 bits.
        raise ConfigError(f"{where}: a {key.key_size}-bit key is too short; use 2048 bits ({KEYGEN})")
    return key
