"""digest.toml + environment + flags -> Config (frozen), validated on load.

Layers, lowest first: built-in defaults < digest.toml < DIGEST_* environment variables < command-line flags.
A flag the user did not give (None) never overrides the file. Relative paths resolve against the folder of
the config file. Secrets (the SMTP password, the unsubscribe secret) are never read from the file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from email.headerregistry import Address
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from digest.errors import ConfigError

CONFIG_NAME = "digest.toml"


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything a build or a send needs to know, validated."""

    root: Path
    config_path: Path | None = None
    title: str = "News digest"
    intro: str = ""
    language: str = "en"
    timezone: str = "UTC"
    base_url: str = "https://example.org/digest/"
    subject: str = "{{ title }}: {{ window.label }}"
    preheader: str = ""
    from_addr: str = "News digest <digest@example.org>"
    reply_to: str = ""
    category_order: tuple[str, ...] = ()
    category_limit: int = 0
    items_dir: Path = field(default=Path("items"))
    templates_dir: Path = field(default=Path("templates"))
    out_dir: Path = field(default=Path("out"))
    cache_dir: Path = field(default=Path(".digest-cache"))
    # [smtp] and [send]: see digest/send.py. Secrets are not here: they come from the environment only.
    smtp_host: str = "localhost"
    smtp_port: int = 0  # 0: the usual port for the security mode (587 starttls, 465 ssl, 25 none)
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_verify: bool = True
    smtp_timeout: float = 30.0
    smtp_ca_file: Path | None = None  # extra CA certificates (PEM) for a private relay, besides the system's
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""
    list_id: str = ""
    greeting: str = "Hello {name},"
    greeting_fallback: str = "Hello,"
    send_rate: str = ""
    send_connections: int = 1

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    @property
    def sender(self) -> Address:
        """The From address, parsed."""
        return parse_address(self.from_addr, what="email.from")


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
    return Path(_nonempty_line(v))


def _optional_path(v: Any) -> Path | None:
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


def _unsubscribe_url(v: Any) -> str:
    s = _line(v).strip()
    if not s:
        return ""
    if not s.startswith("https://"):
        raise ValueError(f"must be an https:// URL (RFC 8058 one-click unsubscribe needs https), got {s!r}")
    from digest.message import check_url_template

    check_url_template(s)
    return s


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
    from digest.message import greeting_fields

    greeting_fields(s)
    return s


def _rate(v: Any) -> str:
    s = _line(v).strip()
    if s:
        from digest.send import parse_rate

        parse_rate(s)
    return s


# Settings that are secrets: never read from the file, only from these environment variables.
SECRETS = {
    "smtp.password": "DIGEST_SMTP_PASSWORD",
    "send.unsubscribe_secret": "DIGEST_UNSUBSCRIBE_SECRET",
    "email.unsubscribe_secret": "DIGEST_UNSUBSCRIBE_SECRET",
}

# TOML key -> (Config field, validator, environment variable)
_SCHEMA: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "title": ("title", _nonempty_line, "DIGEST_TITLE"),
    "intro": ("intro", _str, "DIGEST_INTRO"),
    "language": ("language", _language, "DIGEST_LANGUAGE"),
    "timezone": ("timezone", _timezone, "DIGEST_TIMEZONE"),
    "base_url": ("base_url", _base_url, "DIGEST_BASE_URL"),
    "subject": ("subject", _nonempty_line, "DIGEST_SUBJECT"),
    "preheader": ("preheader", _line, "DIGEST_PREHEADER"),
    "email.from": ("from_addr", _address, "DIGEST_FROM"),
    "email.reply_to": ("reply_to", _optional_address, "DIGEST_REPLY_TO"),
    "categories.order": ("category_order", _categories, ""),
    "categories.limit": ("category_limit", _limit, "DIGEST_CATEGORY_LIMIT"),
    "paths.items": ("items_dir", _path, "DIGEST_ITEMS"),
    "paths.templates": ("templates_dir", _path, "DIGEST_TEMPLATES"),
    "paths.out": ("out_dir", _path, "DIGEST_OUT"),
    "paths.cache": ("cache_dir", _path, "DIGEST_CACHE"),
    "smtp.host": ("smtp_host", _nonempty_line, "DIGEST_SMTP_HOST"),
    "smtp.port": ("smtp_port", _port, "DIGEST_SMTP_PORT"),
    "smtp.security": ("smtp_security", _security, "DIGEST_SMTP_SECURITY"),
    "smtp.username": ("smtp_username", _line, "DIGEST_SMTP_USERNAME"),
    "smtp.verify": ("smtp_verify", _bool, "DIGEST_SMTP_VERIFY"),
    "smtp.timeout": ("smtp_timeout", _seconds, "DIGEST_SMTP_TIMEOUT"),
    "smtp.ca_file": ("smtp_ca_file", _optional_path, "DIGEST_SMTP_CA_FILE"),
    "send.unsubscribe_url": ("unsubscribe_url", _unsubscribe_url, "DIGEST_UNSUBSCRIBE_URL"),
    "send.unsubscribe_mailto": ("unsubscribe_mailto", _mailbox, "DIGEST_UNSUBSCRIBE_MAILTO"),
    "send.list_id": ("list_id", _list_id, "DIGEST_LIST_ID"),
    "send.greeting": ("greeting", _greeting, "DIGEST_GREETING"),
    "send.greeting_fallback": ("greeting_fallback", _line, "DIGEST_GREETING_FALLBACK"),
    "send.rate": ("send_rate", _rate, "DIGEST_SEND_RATE"),
    "send.connections": ("send_connections", _count, "DIGEST_SEND_CONNECTIONS"),
}
_PATH_FIELDS = {"items_dir", "templates_dir", "out_dir", "cache_dir"}


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


def load_config(
    path: Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load and validate the layered configuration; `overrides` are flags (None values are ignored)."""
    cwd = cwd or Path.cwd()
    environ = os.environ if environ is None else environ
    if path is None:
        path = find_config(cwd)
    elif not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    values: dict[str, Any] = {}
    root = (path.parent if path else cwd).resolve()

    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: {err}") from err
        except OSError as err:
            raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
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
            name, check, _env = _SCHEMA[key]
            try:
                values[name] = check(value)
            except ValueError as err:
                raise ConfigError(f"{path}: {key}: {err}") from err

    for key, (name, check, env) in _SCHEMA.items():
        if env and env in environ:
            try:
                values[name] = check(environ[env])
            except ValueError as err:
                raise ConfigError(f"environment variable {env} (setting {key}): {err}") from err

    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value

    for name in _PATH_FIELDS & values.keys():
        values[name] = root / values[name]
    if values.get("smtp_ca_file") is not None:
        values["smtp_ca_file"] = root / values["smtp_ca_file"]
    config = Config(root=root, config_path=path, **values)
    # Default paths are relative to the root too.
    return replace(
        config,
        **{f.name: root / getattr(config, f.name) for f in fields(config) if f.name in _PATH_FIELDS},
    )
