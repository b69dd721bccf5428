"""The value checks of every setting: each takes the raw value (from TOML, the environment or a flag) and
returns the clean one, or raises ValueError saying why. digest/config/__init__.py maps settings to them."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from digest.errors import ConfigError
from digest.words import lang_code


def text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return v


def line(v: Any) -> str:
    s = text(v)
    if "\r" in s or "\n" in s:
        raise ValueError("must be a single line (no line breaks)")
    return s


def nonempty_line(v: Any) -> str:
    s = line(v).strip()
    if not s:
        raise ValueError("must not be empty")
    return s


_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


def language(v: Any) -> str:
    s = nonempty_line(v)
    try:
        # A plain tag only: Babel would also take "de_DE@euro", which is no folder or URL name.
        if not _LANGUAGE_TAG.fullmatch(s):
            raise ValueError(s)
        Locale.parse(s.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as err:
        raise ValueError(f"unknown language {s!r} (use a code like 'en', 'fr' or 'pt_BR')") from err
    return lang_code(s)


def timezone(v: Any) -> str:
    s = nonempty_line(v)
    try:
        ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {s!r} (use an IANA name like 'Europe/Geneva' or 'UTC')") from err
    return s


def base_url(v: Any) -> str:
    s = nonempty_line(v)
    if not s.startswith(("https://", "http://")):
        raise ValueError(f"must be an absolute http(s) URL, got {s!r}")
    return s if s.endswith("/") else s + "/"


def parse_address(value: str, *, what: str) -> Address:
    """Parse one RFC 5322 address ("Name <a@b.org>"), refusing line breaks and lists."""
    if "\r" in value or "\n" in value:
        raise ConfigError(f"{what}: line breaks are not allowed in an address")
    found = getaddresses([value])
    if len(found) != 1 or "@" not in found[0][1]:
        raise ConfigError(f"{what}: not a single email address: {value!r}")
    name, addr = found[0]
    local, _, domain = addr.rpartition("@")
    try:
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError) as err:
        raise ConfigError(f"{what}: not a valid email address: {value!r}") from err


# Not in a name: C0 and C1 controls (U+0085 is a line break), the line and paragraph separators (Zl, Zp),
# and the bidi embeddings, overrides and isolates that make a name read otherwise than it is written.
# None of them gets into the header (the message encodes a name that is not ASCII, RFC 2047); a name
# that shows the reader something else than it holds is refused all the same.
_NOT_IN_A_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _no_controls(s: str) -> None:
    bad = _NOT_IN_A_NAME.search(s)
    if bad is not None:
        raise ValueError(f"no control characters in a header value (U+{ord(bad[0]):04X} in {s!r})")


def address(v: Any) -> str:
    s = nonempty_line(v)
    try:
        parse_address(s, what="address")
    except ConfigError as err:
        raise ValueError(str(err).removeprefix("address: ")) from err
    _no_controls(s)  # [email] from's name is the From name of every language without one of its own
    return s


def optional_address(v: Any) -> str:
    return "" if line(v).strip() == "" else address(v)


def categories(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise ValueError("expected a list of category names")
    names = [x.strip() for x in v]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"category listed twice: {', '.join(dupes)}")
    return tuple(names)


def whole(v: Any, *, lo: int, hi: int, expected: str) -> int:
    """A whole number in [lo, hi], from TOML or from an environment variable's text."""
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"expected {expected}")
    return v


def limit(v: Any) -> int:
    return whole(v, lo=0, hi=10**6, expected="a whole number >= 0 (0 means no limit)")


def path_value(v: Any) -> Path:
    return v if isinstance(v, Path) else Path(nonempty_line(v))


def optional_path(v: Any) -> Path | None:
    if isinstance(v, Path):
        return v
    s = line(v).strip()
    return Path(s) if s else None


def port(v: Any) -> int:
    expected = "a port number (1-65535; 0 for the usual port of the security mode)"
    return whole(v, lo=0, hi=65535, expected=expected)


def security(v: Any) -> str:
    s = nonempty_line(v).lower()
    if s not in ("starttls", "ssl", "none"):
        raise ValueError(f"expected starttls, ssl or none, got {s!r}")
    return s


def boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return v.strip().lower() in ("1", "true", "yes", "on")
    raise ValueError("expected true or false")


def seconds(v: Any) -> float:
    try:
        f = float(v) if isinstance(v, int | float | str) and not isinstance(v, bool) else -1.0
    except ValueError:
        f = -1.0
    if not f > 0:
        raise ValueError("expected a number of seconds > 0")
    return f


def count(v: Any) -> int:
    return whole(v, lo=1, hi=64, expected="a whole number from 1 to 64")


_FORMATTER = string.Formatter()
_URL_FIELDS = {"email", "token"}


def check_url_template(template: str) -> str:
    """Check an unsubscribe URL template: {token} there ({email} allowed), no spaces or brackets.

    The token carries the address (tokens.unsubscribe_token), so `https://host/unsubscribe?u={token}` is
    enough; {email} is allowed for an endpoint of the team's own that wants it, but spam filters count an
    address in a link against the message."""
    try:
        names = {f for _, f, _, _ in _FORMATTER.parse(template) if f is not None}
    except ValueError as err:
        raise ValueError(f"bad template {template!r}: {err} (write a literal brace as {{{{ or }}}})") from err
    unknown = names - _URL_FIELDS
    if unknown:
        raise ValueError(
            f"unknown field {{{sorted(unknown)[0]}}} in {template!r}: use {{email}} and {{token}}"
        )
    if "token" not in names:
        # Without the signed token anyone who knows an address could unsubscribe it.
        raise ValueError(
            f"{template!r} must contain {{token}} (the signed token that proves the link is ours)"
        )
    if any(c in template for c in " <>\"'\\") or any(ord(c) < 33 or ord(c) > 126 for c in template):
        raise ValueError(
            f"{template!r}: spaces, quotes, angle brackets and non-ASCII must be percent-encoded"
        )
    return template


def greeting_fields(template: str) -> set[str]:
    """The subscriber columns a greeting template uses ("Hello {name}," -> {"name"}); ValueError if bad."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as err:
        raise ValueError(f"bad template {template!r}: {err} (write a literal brace as {{{{ or }}}})") from err
    names = set()
    for _, field_name, spec, conv in parsed:
        if field_name is None:
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field_name) or spec or conv:
            raise ValueError(f"{template!r}: use plain column names in braces, like {{name}}")
        names.add(field_name.lower())
    return names


def parse_rate(text: str) -> float:
    """'10/s', '600/m', '5000/h' or '10' (per second) -> messages per second; 0 means no limit."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*", text.lower())
    if not m:
        raise ValueError(f"{text!r}: use messages per second, minute or hour, e.g. 10/s or 3000/h")
    per = {"m": 60, "h": 3600}.get((m[2] or "s")[0], 1)
    return float(m[1]) / per


def unsubscribe_url(v: Any) -> str:
    s = line(v).strip()
    if not s:
        return ""
    if not s.startswith("https://"):
        raise ValueError(f"must be an https:// URL (RFC 8058 one-click unsubscribe needs https), got {s!r}")
    return check_url_template(s)


def mailbox(v: Any) -> str:
    s = line(v).strip().removeprefix("mailto:")
    if not s:
        return ""
    parse_address(s, what="address")
    if "<" in s or " " in s:
        raise ValueError(f"expected a bare address like unsubscribe@example.org, got {s!r}")
    return s


def list_id(v: Any) -> str:
    s = line(v).strip()
    if s and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+", s.strip("<>")):
        raise ValueError(f"expected a dotted id like news.example.org, got {s!r}")
    if len(s.strip("<>")) > 255:  # RFC 2919: a list-id is at most 255 characters
        raise ValueError(f"is {len(s.strip('<>'))} characters long; a List-Id has at most 255")
    return s.strip("<>")


def greeting(v: Any) -> str:
    s = line(v)
    greeting_fields(s)
    return s


def rate(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0:
        return float(v)
    s = line(v).strip()
    return parse_rate(s) if s else 0.0


def security_imap(v: Any) -> str:
    return security(v)


def names(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise ValueError("expected a list of names")
    return tuple(x.strip().lower() for x in v)


def category_map(v: Any) -> tuple[tuple[str, str], ...]:
    """[import.categories]: a feed's category name -> the digest's category."""
    if not isinstance(v, dict) or not all(isinstance(x, str) and x.strip() for x in v.values()):
        raise ValueError('expected a table of "feed category" = "digest category"')
    return tuple((str(k).strip(), x.strip()) for k, x in v.items())


def summary_length(v: Any) -> int:
    return whole(v, lo=40, hi=10_000, expected="a whole number of characters from 40 to 10000")


@dataclass(frozen=True, kw_only=True)
class FeedSetting:
    """One [[import.feeds]] table: the feed's URL (or file), its category and its language."""

    url: str
    category: str = ""
    language: str = ""


def feed_list(v: Any) -> tuple[FeedSetting, ...]:
    """[[import.feeds]]: url (required), category and language (optional) in each table."""
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise ValueError("expected [[import.feeds]] tables, each with url = ...")
    feeds = []
    for n, table in enumerate(v, 1):
        unknown = sorted(set(table) - {"url", "category", "language"})
        if unknown:
            raise ValueError(f"feed {n}: unknown key {unknown[0]!r}; keys are url, category, language")
        if "url" not in table:
            raise ValueError(f"feed {n}: url is missing")
        try:
            feeds.append(
                FeedSetting(
                    url=nonempty_line(table["url"]),
                    category=line(table.get("category", "")).strip(),
                    language=language(table["language"]) if table.get("language") else "",
                )
            )
        except ValueError as err:
            raise ValueError(f"feed {n}: {err}") from err
    return tuple(feeds)


def fit_budget(v: Any) -> int:
    """[email] fit_budget: kilobytes of HTML the fitted email stays under."""
    # At most 101: the fit measures the preview (addressed to the sender); a subscriber's own address and link
    # can be some bytes longer, and 102 KB is where Gmail clips.
    return whole(v, lo=10, hi=101, expected="a whole number of kilobytes from 10 to 101 (Gmail clips at 102)")


WINDOW_MAX = 32  # [send] window's largest value: see window()


def window(v: Any) -> int:
    """[send] window: messages one connection may have in flight, unanswered."""
    # Every unanswered message has four replies waiting to be read (RSET, MAIL, RCPT, BDAT), at most 512
    # octets each (RFC 5321): 32 of them are 64 KB at worst, half the usual socket receive buffer. More could
    # fill it while the client is still writing, and both ends would wait on each other (RFC 2920, 3.1).
    return whole(
        v,
        lo=1,
        hi=WINDOW_MAX,
        expected=f"a whole number of messages from 1 to {WINDOW_MAX} "
        "(more unread replies could fill the socket buffer and stall the connection)",
    )


def display_name(v: Any) -> str:
    """A From display name: one line without control characters (a header value; the address stays
    [email] from's). Non-ASCII is fine: the message encodes it (RFC 2047)."""
    s = line(v)
    _no_controls(s)  # before strip(), which takes U+0085 and U+2028 for spaces
    s = s.strip()
    if not s:
        raise ValueError("must not be empty")
    return s
