"""The signed unsubscribe token: made for each recipient by the message maker, checked by the endpoint.

The token carries the address, base64url-encoded, and an HMAC-SHA256 of it under DIGEST_UNSUBSCRIBE_SECRET:
`base64url(address).mac`. So an unsubscribe URL needs no `email=` (an address in a link counts against a
message with spam filters, and leaks into logs); the address is encoded, not encrypted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from digest.errors import ConfigError

MIN_SECRET_BYTES = 32  # a shorter HMAC key could be guessed offline from one link
MAKE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'  # noqa: S105 - a command


def unsubscribe_token(secret: str, email: str) -> str:
    """The signed, self-contained token of one address: base64url(address) "." HMAC-SHA256 (hex, 32).

    It carries the address, so an unsubscribe URL needs no `email=` of its own: an address in a link is
    what spam filters count against a message (SpamAssassin's GB_CUSTOM_HTM_URI), and what logs leak."""
    who = base64.urlsafe_b64encode(email.lower().encode()).rstrip(b"=").decode("ascii")
    return f"{who}.{_mac(secret, who)}"


def _mac(secret: str, who: str) -> str:
    return hmac.new(secret.encode(), who.encode(), hashlib.sha256).hexdigest()[:32]


def address_from_token(secret: str, token: str) -> str | None:
    """The address a token was signed for, or None when it is not one of ours (never raises)."""
    if not (isinstance(secret, str) and isinstance(token, str)) or not secret or "." not in token:
        return None
    who, _, mac = token.rpartition(".")
    try:
        if not hmac.compare_digest(_mac(secret, who).encode(), mac.encode("utf-8")):
            return None
        return base64.urlsafe_b64decode(who + "=" * (-len(who) % 4)).decode("utf-8")
    except (UnicodeError, ValueError):  # a lone surrogate, bad base64
        return None


def check_unsubscribe_secret(secret: str) -> str:
    """Refuse an unsubscribe secret under 32 bytes (when sending and serving; a build needs none)."""
    size = len(secret.encode("utf-8", "surrogatepass"))
    if size < MIN_SECRET_BYTES:
        state = f"is {size} bytes long" if secret else "is not set"
        raise ConfigError(
            f"DIGEST_UNSUBSCRIBE_SECRET {state}; it must be at least {MIN_SECRET_BYTES} bytes of randomness "
            f"(it signs every unsubscribe link): make one with `{MAKE_SECRET}`"
        )
    return secret


def check_unsubscribe_token(secret: str, email: str, token: str) -> bool:
    """For the unsubscribe endpoint: is this the token `digest send` put in this address's link?

    Whatever comes in a request, the answer is True or False, never an exception: an empty secret or
    token, a token of another length or with non-ASCII characters, an address that is not text.
    """
    if not (isinstance(secret, str) and isinstance(email, str) and isinstance(token, str)):
        return False
    if not secret or not token:
        return False
    address = address_from_token(secret, token)
    return address is not None and address == email.lower()
