"""digest.toml + environment + flags -> Config (frozen), validated on load.

Layers, lowest first: built-in defaults < digest.toml < DIGEST_* environment variables < command-line flags.
A flag the user did not give (None) never overrides the file. Relative paths resolve against the folder of
the config file. Secrets (the SMTP password, the unsubscribe secret) are never read from the file.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from email.headerregistry import Address
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from digest.config import values as v
from digest.config.languages import LanguageTexts
from digest.config.schema import FLAGS, PATH_KEYS, SCHEMA, SECRETS
from digest.config.values import check_url_template, greeting_fields, parse_address, parse_rate
from digest.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "FLAGS",
    "SECRETS",
    "Config",
    "check_url_template",
    "find_config",
    "greeting_fields",
    "load_config",
    "parse_address",
    "parse_rate",
]

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
    # The workspace's own gettext catalogs (<lang>/LC_MESSAGES/digest.po), in front of the packaged ones.
    locale: Path = Path("locale")
    # Who must not get mail (unsubscribed, bounced, complained): personal data the team keeps, not a cache and
    # not for git (an address committed once stays in the history), so a SQLite file in the workspace.
    suppressions: Path = Path("suppressions.sqlite")


@dataclass(frozen=True, kw_only=True)
class Email:
    """[email]: who the digest is from."""

    sender: str = "News digest <digest@example.org>"
    reply_to: str = ""
    # Fit under Gmail's clip: past the budget, items move to the web version, behind "N more in ...".
    fit: bool = False
    fit_budget: int = 90  # kilobytes of HTML


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
    window: int = (
        10  # messages a connection may have unanswered: at most this many are sent again after a kill
    )


@dataclass(frozen=True, kw_only=True)
class Bounces:
    """[bounces]: where `digest bounces` reads, and when transient failures suppress an address."""

    imap_host: str = ""
    imap_port: int = 0  # 0: 993 (ssl), 143 (starttls or none)
    imap_security: str = "ssl"
    imap_user: str = ""
    imap_folder: str = "INBOX"
    transient_days: int = 3  # transient bounces on this many distinct days suppress the address


@dataclass(frozen=True, kw_only=True)
class Dkim:
    """[dkim]: sign each message (the private key: DIGEST_DKIM_KEY, or key_file outside the repository)."""

    domain: str = ""
    selector: str = ""
    key_file: Path | None = None


@dataclass(frozen=True, kw_only=True)
class Check:
    """[check]: what `digest check` holds the digest to."""

    clients: tuple[str, ...] = ("gmail", "outlook-windows", "outlook-com", "apple-mail", "ios-mail", "yahoo")


@dataclass(frozen=True, kw_only=True)
class Import:
    """[import]: how `digest import` files feed entries (the TOML table is `import`, a Python keyword)."""

    default_category: str = "News"
    categories: tuple[tuple[str, str], ...] = ()  # a feed's category -> the digest's
    summary_length: int = 300
    feeds: tuple[v.FeedSetting, ...] = ()  # [[import.feeds]]


@dataclass(frozen=True, kw_only=True)
class Secrets:
    """From the environment only; never read from a file, never printed (not even by repr)."""

    smtp_password: str = field(default="", repr=False)
    unsubscribe_secret: str = field(default="", repr=False)
    imap_password: str = field(default="", repr=False)
    dkim_key: str = field(default="", repr=False)  # the private key's PEM text

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
    bounces: Bounces = Bounces()
    dkim: Dkim = Dkim()
    check: Check = Check()
    feeds_import: Import = Import()
    languages: tuple[LanguageTexts, ...] = ()  # [languages.xx]: the further languages' texts
    secrets: Secrets = Secrets()

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    def texts(self, lang: str) -> LanguageTexts:
        """The title, intro, subject and preheader of the digest in a language: its [languages.xx] table,
        with the top-level settings for what it leaves out; an intro in another language is never borrowed."""
        table = next((t for t in self.languages if t.code == lang), LanguageTexts(code=lang))
        return LanguageTexts(
            code=lang,
            title=table.title or self.title,
            intro=table.intro or (self.intro if lang == self.language else ""),
            subject=table.subject or self.subject,
            preheader=table.preheader or self.preheader,
            greeting=table.greeting,
            greeting_fallback=table.greeting_fallback,
            order=table.order or self.categories.order,
            from_name=table.from_name or self.sender.display_name,
        )

    def language_order(self) -> list[str]:
        """The workspace's language, then the [languages.xx] ones in their order, each once (a table for
        the workspace's own language sets its texts; it is not a second digest)."""
        return list(dict.fromkeys([self.language, *(t.code for t in self.languages)]))

    def digest_language(self, lang: str | None) -> str:
        """The language of the digest an item in `lang` goes into: the workspace's or a [languages.xx] one
        when it is that language or a variant of it (en-US goes with en, fr-CA with fr), rather than a
        digest of its own; else the tag itself; the workspace's language for an item without one."""
        if not lang:
            return self.language
        known = self.language_order()
        if lang in known:
            return lang
        base = lang.split("_")[0]
        same = [k for k in known if k == base] or [k for k in known if k.split("_")[0] == base]
        return same[0] if same else lang

    @property
    def sender(self) -> Address:
        """The From address, parsed."""
        return v.parse_address(self.email.sender, what="email.from")

    def sender_in(self, lang: str | None) -> Address:
        """The From address of a language's messages: [email] from's address, with the language's
        from_name when its [languages.xx] table gives one."""
        sender = self.sender
        name = self.texts(lang or self.language).from_name
        return sender if name == sender.display_name else Address(name, addr_spec=sender.addr_spec)

    @property
    def reply_to(self) -> Address | None:
        """The Reply-To address, parsed, if there is one."""
        return v.parse_address(self.email.reply_to, what="email.reply_to") if self.email.reply_to else None


_GROUPS: dict[str, type[Any]] = {
    "paths": Paths,
    "email": Email,
    "categories": Categories,
    "smtp": Smtp,
    "send": Send,
    "bounces": Bounces,
    "dkim": Dkim,
    "check": Check,
    "feeds_import": Import,
}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and any(k.startswith(name + ".") for k in SCHEMA):
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
        if key not in SCHEMA:
            hint = difflib.get_close_matches(key, SCHEMA, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{path}: unknown setting {key!r}{extra}")
        try:
            values[key] = SCHEMA[key][2](value)
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
        imap_password=environ.get("DIGEST_IMAP_PASSWORD", ""),
        dkim_key=environ.get("DIGEST_DKIM_KEY", ""),
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

    for key, (_group, _name, check, env) in SCHEMA.items():
        if env and env in environ:
            try:
                values[key] = check(environ[env])
            except ValueError as err:
                raise ConfigError(f"environment variable {env} (setting {key}): {err}") from err
    for key in PATH_KEYS & values.keys():
        if values[key] is not None:
            values[key] = root / values[key]

    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key not in SCHEMA:
            raise ValueError(f"no setting {key!r}")  # a programming error, not the user's
        try:
            value = SCHEMA[key][2](value)
        except ValueError as err:
            raise ConfigError(f"{FLAGS.get(key, key)}: {err}") from err
        values[key] = cwd / value if key in PATH_KEYS and value is not None else value

    grouped: dict[str, dict[str, Any]] = {g: {} for g in _GROUPS}
    top: dict[str, Any] = {}
    for key, value in values.items():
        group, name = SCHEMA[key][0], SCHEMA[key][1]
        (grouped[group] if group else top)[name] = value
    paths = grouped.pop("paths")
    defaults = Paths(root=root)
    for name in ("items", "templates", "out", "cache", "locale", "suppressions"):
        paths.setdefault(name, root / getattr(defaults, name))
    return Config(
        paths=Paths(root=root, config_file=path, **paths),
        secrets=_secrets(environ),
        **top,
        **{g: _GROUPS[g](**v) for g, v in grouped.items()},
    )
