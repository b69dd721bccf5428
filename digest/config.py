"""digest.toml + environment + flags -> Config (frozen), validated on load.

Layers, lowest first: built-in defaults < digest.toml < DIGEST_* environment variables < command-line flags.
A flag the user did not give (None) never overrides the file. Relative paths resolve against the folder of
the config file. Secrets (the SMTP password, the unsubscribe secret) are never read from the file.
"""

from __future__ import annotations

import difflib
import os
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from email.headerregistry import Address
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from digest.errors import ConfigError

CONFIG_NAME = "digest.toml"


@dataclass(frozen=True, kw_only=True)
class Paths:
    """Where the workspace's folders are; relative settings resolve against `root` (the config's folder)."""

    root: Path
    config_file: Path | None = None
    items: Path = Path("items")
    templates: Path = Path("templates")
    out: Path = Path("out")
    cache: Path = Path(".digest-cache")


@dataclass(frozen=True, kw_only=True)
class Email:
    """[email]: who the digest is from."""

    sender: str = "News digest <digest@example.org>"
    reply_to: str = ""


@dataclass(frozen=True, kw_only=True)
class Categories:
    """[categories]: the order of the sections, and how many items each shows in the email (0: all)."""

    order: tuple[str, ...] = ()
    limit: int = 0


@dataclass(frozen=True, kw_only=True)
class Smtp:
    """[smtp]: the relay. The password is a secret (`Secrets`), never here."""

    host: str = "localhost"
    port: int = 0  # 0: the usual port for the security mode (587 starttls, 465 ssl, 25 none)
    security: str = "starttls"
    username: str = ""
    verify: bool = True
    timeout: float = 30.0
    ca_file: Path | None = None  # extra CA certificates (PEM) for a private relay, besides the system's


@dataclass(frozen=True, kw_only=True)
class Send:
    """[send]: what each message carries, and how fast it goes."""

    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""
    list_id: str = ""
    greeting: str = "Hello {name},"
    greeting_fallback: str = "Hello,"
    rate: float = 0.0  # messages per second; 0: no limit
    connections: int = 1


@dataclass(frozen=True, kw_only=True)
class Secrets:
    """From the environment only; never read from a file, never printed (not even by repr)."""

    smtp_password: str = field(default="", repr=False)
    unsubscribe_secret: str = field(default="", repr=False)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={'<set>' if getattr(self, f.name) else '<unset>'}" for f in fields(self))
        return f"Secrets({shown})"

    __str__ = __repr__


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything a build or a send needs to know, validated."""

    paths: Paths
    title: str = "News digest"
    intro: str = ""
    language: str = "en"
    timezone: str = "UTC"
    base_url: str = "https://example.org/digest/"
    subject: str = "{{ title }}: {{ window.label }}"
    preheader: str = ""
    email: Email = Email()
    categories: Categories = Categories()
    smtp: Smtp = Smtp()
    send: Send = Send()
    secrets: Secrets = Secrets()

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    @property
    def sender(self) -> Address:
        """The From address, parsed."""
        return parse_address(self.email.sender, what="email.from")

    @property
    def reply_to(self) -> Address | None:
        """The Reply-To address, parsed, if there is one."""
        return parse_address(self.email.reply_to, what="email.reply_to") if self.email.reply_to else None


# ---- validators: each takes the raw value and returns the clean one, or raises ValueError(why) ----


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return v


def _line(v: Any) -> str:
    s = _str(v)
    if "\r" in s or "\n" in s:
        raise ValueError("must be a single line (no line breaks)")
    return s


def _nonempty_line(v: Any) -> str:
    s = _line(v).strip()
    if not s:
        raise ValueError("must not be empty")
    return s


def _language(v: Any) -> str:
    s = _nonempty_line(v)
    try:
        Locale.parse(s.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as err:
        raise ValueError(f"unknown language {s!r} (use a code like 'en', 'fr' or 'pt_BR')") from err
    return s


def _timezone(v: Any) -> str:
    s = _nonempty_line(v)
    try:
        ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {s!r} (use an IANA name like 'Europe/Geneva' or 'UTC')") from err
    return s


def _base_url(v: Any) -> str:
    s = _nonempty_line(v)
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


def _address(v: Any) -> str:
    s = _nonempty_line(v)
    try:
        parse_address(s, what="address")
    except ConfigError as err:
        raise ValueError(str(err).removeprefix("address: ")) from err
    return s


def _optional_address(v: Any) -> str:
    return "" if _line(v).strip() == "" else _address(v)


def _categories(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise ValueError("expected a list of category names")
    names = [x.strip() for x in v]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"category listed twice: {', '.join(dupes)}")
    return tuple(names)


def _whole(v: Any, *, lo: int, hi: int, expected: str) -> int:
    """A whole number in [lo, hi], from TOML or from an environment variable's text."""
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"expected {expected}")
    return v


def _limit(v: Any) -> int:
    return _whole(v, lo=0, hi=10**6, expected="a whole number >= 0 (0 means no limit)")


def _path(v: Any) -> Path:
    return v if isinstance(v, Path) else Path(_nonempty_line(v))


def _optional_path(v: Any) -> Path | None:
    if isinstance(v, Path):
        return v
    s = _line(v).strip()
    return Path(s) if s else None


def _port(v: Any) -> int:
    expected = "a port number (1-65535; 0 for the usual port of the security mode)"
    return _whole(v, lo=0, hi=65535, expected=expected)


def _security(v: Any) -> str:
    s = _nonempty_line(v).lower()
    if s not in ("starttls", "ssl", "none"):
        raise ValueError(f"expected starttls, ssl or none, got {s!r}")
    return s


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return v.strip().lower() in ("1", "true", "yes", "on")
    raise ValueError("expected true or false")


def _seconds(v: Any) -> float:
    try:
        f = float(v) if isinstance(v, int | float | str) and not isinstance(v, bool) else -1.0
    except ValueError:
        f = -1.0
    if not f > 0:
        raise ValueError("expected a number of seconds > 0")
    return f


def _count(v: Any) -> int:
    return _whole(v, lo=1, hi=64, expected="a whole number from 1 to 64")


_FORMATTER = string.Formatter()
_URL_FIELDS = {"email", "token"}


def check_url_template(template: str) -> str:
    """Check an unsubscribe URL template: {email} and {token} only, both there, no spaces or brackets."""
    try:
        names = {f for _, f, _, _ in _FORMATTER.parse(template) if f is not None}
    except ValueError as err:
        raise ValueError(f"bad template {template!r}: {err} (write a literal brace as {{{{ or }}}})") from err
    unknown = names - _URL_FIELDS
    if unknown:
        raise ValueError(
            f"unknown field {{{sorted(unknown)[0]}}} in {template!r}: use {{email}} and {{token}}"
        )
    if "email" not in names:
        raise ValueError(f"{template!r} must contain {{email}}")
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


def _unsubscribe_url(v: Any) -> str:
    s = _line(v).strip()
    if not s:
        return ""
    if not s.startswith("https://"):
        raise ValueError(f"must be an https:// URL (RFC 8058 one-click unsubscribe needs https), got {s!r}")
    return check_url_template(s)


def _mailbox(v: Any) -> str:
    s = _line(v).strip().removeprefix("mailto:")
    if not s:
        return ""
    parse_address(s, what="address")
    if "<" in s or " " in s:
        raise ValueError(f"expected a bare address like unsubscribe@example.org, got {s!r}")
    return s


def _list_id(v: Any) -> str:
    s = _line(v).strip()
    if s and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+", s.strip("<>")):
        raise ValueError(f"expected a dotted id like news.example.org, got {s!r}")
    return s.strip("<>")


def _greeting(v: Any) -> str:
    s = _line(v)
    greeting_fields(s)
    return s


def _rate(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0:
        return float(v)
    s = _line(v).strip()
    return parse_rate(s) if s else 0.0


# Settings that are secrets: never read from the file, only from these environment variables.
SECRETS = {
    "smtp.password": "DIGEST_SMTP_PASSWORD",
    "send.unsubscribe_secret": "DIGEST_UNSUBSCRIBE_SECRET",
    "email.unsubscribe_secret": "DIGEST_UNSUBSCRIBE_SECRET",
}

# TOML key -> (group, field, validator, environment variable). The group is a Config field holding a
# dataclass ("" for Config itself); its name is the TOML table's, but for [paths].
_SCHEMA: dict[str, tuple[str, str, Callable[[Any], Any], str]] = {
    "title": ("", "title", _nonempty_line, "DIGEST_TITLE"),
    "intro": ("", "intro", _str, "DIGEST_INTRO"),
    "language": ("", "language", _language, "DIGEST_LANGUAGE"),
    "timezone": ("", "timezone", _timezone, "DIGEST_TIMEZONE"),
    "base_url": ("", "base_url", _base_url, "DIGEST_BASE_URL"),
    "subject": ("", "subject", _nonempty_line, "DIGEST_SUBJECT"),
    "preheader": ("", "preheader", _line, "DIGEST_PREHEADER"),
    "email.from": ("email", "sender", _address, "DIGEST_FROM"),
    "email.reply_to": ("email", "reply_to", _optional_address, "DIGEST_REPLY_TO"),
    "categories.order": ("categories", "order", _categories, ""),
    "categories.limit": ("categories", "limit", _limit, "DIGEST_CATEGORY_LIMIT"),
    "paths.items": ("paths", "items", _path, "DIGEST_ITEMS"),
    "paths.templates": ("paths", "templates", _path, "DIGEST_TEMPLATES"),
    "paths.out": ("paths", "out", _path, "DIGEST_OUT"),
    "paths.cache": ("paths", "cache", _path, "DIGEST_CACHE"),
    "smtp.host": ("smtp", "host", _nonempty_line, "DIGEST_SMTP_HOST"),
    "smtp.port": ("smtp", "port", _port, "DIGEST_SMTP_PORT"),
    "smtp.security": ("smtp", "security", _security, "DIGEST_SMTP_SECURITY"),
    "smtp.username": ("smtp", "username", _line, "DIGEST_SMTP_USERNAME"),
    "smtp.verify": ("smtp", "verify", _bool, "DIGEST_SMTP_VERIFY"),
    "smtp.timeout": ("smtp", "timeout", _seconds, "DIGEST_SMTP_TIMEOUT"),
    "smtp.ca_file": ("smtp", "ca_file", _optional_path, "DIGEST_SMTP_CA_FILE"),
    "send.unsubscribe_url": ("send", "unsubscribe_url", _unsubscribe_url, "DIGEST_UNSUBSCRIBE_URL"),
    "send.unsubscribe_mailto": ("send", "unsubscribe_mailto", _mailbox, "DIGEST_UNSUBSCRIBE_MAILTO"),
    "send.list_id": ("send", "list_id", _list_id, "DIGEST_LIST_ID"),
    "send.greeting": ("send", "greeting", _greeting, "DIGEST_GREETING"),
    "send.greeting_fallback": ("send", "greeting_fallback", _line, "DIGEST_GREETING_FALLBACK"),
    "send.rate": ("send", "rate", _rate, "DIGEST_SEND_RATE"),
    "send.connections": ("send", "connections", _count, "DIGEST_SEND_CONNECTIONS"),
}
# Relative paths: against the config file's folder when they come from the file or the environment, against
# the current folder when they come from a flag (the user typed them in the shell).
_PATH_KEYS = {"paths.items", "paths.templates", "paths.out", "paths.cache", "smtp.ca_file"}
# The command-line flag of a setting, for messages about a flag's value.
FLAGS = {
    "paths.out": "--out",
    "send.rate": "--rate",
    "send.connections": "--connections",
    "smtp.verify": "--insecure-no-verify",
}
_GROUPS: dict[str, type[Any]] = {
    "paths": Paths,
    "email": Email,
    "categories": Categories,
    "smtp": Smtp,
    "send": Send,
}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and any(k.startswith(name + ".") for k in _SCHEMA):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def find_config(start: Path) -> Path | None:
    """The nearest digest.toml in start or its parents, as git finds .git."""
    for folder in [start, *start.parents]:
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    values: dict[str, Any] = {}
    for key, value in _flatten(raw).items():
        if key in SECRETS or key.rpartition(".")[2] in ("password", "secret", "unsubscribe_secret"):
            env = SECRETS.get(
                key, "DIGEST_SMTP_PASSWORD" if "password" in key else "DIGEST_UNSUBSCRIBE_SECRET"
            )
            raise ConfigError(
                f"{path}: {key}: secrets are never read from the config file; "
                f"set the environment variable {env} instead (and remove the secret from the file)"
            )
        if key not in _SCHEMA:
            hint = difflib.get_close_matches(key, _SCHEMA, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{path}: unknown setting {key!r}{extra}")
        try:
            values[key] = _SCHEMA[key][2](value)
        except ValueError as err:
            raise ConfigError(f"{path}: {key}: {err}") from err
    return values


def _secrets(environ: Mapping[str, str]) -> Secrets:
    password = environ.get("DIGEST_SMTP_PASSWORD", "")
    if not password.isascii() or any(ord(c) < 32 for c in password):
        # smtplib's AUTH sends the password as ASCII; a character it cannot send would fail mid-login.
        raise ConfigError(
            "environment variable DIGEST_SMTP_PASSWORD: has a non-ASCII or control character, which SMTP "
            "AUTH (as digest sends it) cannot carry; use an ASCII password (e.g. an app password)"
        )
    return Secrets(
        smtp_password=password,
        unsubscribe_secret=environ.get("DIGEST_UNSUBSCRIBE_SECRET", ""),
    )


def load_config(
    path: Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Load and validate the layered configuration.

    `flags` are command-line values keyed by setting ("paths.out", "send.rate", ...); None means the flag
    was not given and never overrides the file. They pass the same validators as the file's values.
    """
    cwd = (cwd or Path.cwd()).resolve()
    environ = os.environ if environ is None else environ
    if path is None:
        path = find_config(cwd)
    elif not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    root = (path.parent if path else cwd).resolve()
    values = _read_file(path) if path is not None else {}

    for key, (_group, _name, check, env) in _SCHEMA.items():
        if env and env in environ:
            try:
                values[key] = check(environ[env])
            except ValueError as err:
                raise ConfigError(f"environment variable {env} (setting {key}): {err}") from err
    for key in _PATH_KEYS & values.keys():
        if values[key] is not None:
            values[key] = root / values[key]

    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key not in _SCHEMA:
            raise ValueError(f"no setting {key!r}")  # a programming error, not the user's
        try:
            value = _SCHEMA[key][2](value)
        except ValueError as err:
            raise ConfigError(f"{FLAGS.get(key, key)}: {err}") from err
        values[key] = cwd / value if key in _PATH_KEYS and value is not None else value

    grouped: dict[str, dict[str, Any]] = {g: {} for g in _GROUPS}
    top: dict[str, Any] = {}
    for key, value in values.items():
        group, name = _SCHEMA[key][0], _SCHEMA[key][1]
        (grouped[group] if group else top)[name] = value
    paths = grouped.pop("paths")
    defaults = Paths(root=root)
    for name in ("items", "templates", "out", "cache"):
        paths.setdefault(name, root / getattr(defaults, name))
    return Config(
        paths=Paths(root=root, config_file=path, **paths),
        secrets=_secrets(environ),
        **top,
        **{g: _GROUPS[g](**v) for g, v in grouped.items()},
    )
