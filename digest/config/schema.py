"""Every setting of digest.toml: its place in Config, its check, its environment variable and flag.

The one table to read to know what a setting is called in the file (a TOML key), in the environment
(DIGEST_*) and on the command line, and which settings are secrets (read only from the environment).
digest/config/__init__.py reads the layers through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from digest.config import values as v
from digest.config.languages import languages

# Settings that are secrets: never read from the file, only from these environment variables.
SECRETS = {
    "smtp.password": "DIGEST_SMTP_PASSWORD",
    "send.unsubscribe_secret": "DIGEST_UNSUBSCRIBE_SECRET",
    "email.unsubscribe_secret": "DIGEST_UNSUBSCRIBE_SECRET",
    "bounces.imap_password": "DIGEST_IMAP_PASSWORD",
    "bounces.password": "DIGEST_IMAP_PASSWORD",
    "dkim.key": "DIGEST_DKIM_KEY",
    "dkim.private_key": "DIGEST_DKIM_KEY",
}

# TOML key -> (group, field, validator, environment variable). The group is a Config field holding a
# dataclass ("" for Config itself); its name is the TOML table's, but for [paths].
SCHEMA: dict[str, tuple[str, str, Callable[[Any], Any], str]] = {
    "title": ("", "title", v.nonempty_line, "DIGEST_TITLE"),
    "intro": ("", "intro", v.text, "DIGEST_INTRO"),
    "language": ("", "language", v.language, "DIGEST_LANGUAGE"),
    "timezone": ("", "timezone", v.timezone, "DIGEST_TIMEZONE"),
    "base_url": ("", "base_url", v.base_url, "DIGEST_BASE_URL"),
    "subject": ("", "subject", v.nonempty_line, "DIGEST_SUBJECT"),
    "preheader": ("", "preheader", v.line, "DIGEST_PREHEADER"),
    "email.from": ("email", "sender", v.address, "DIGEST_FROM"),
    "email.reply_to": ("email", "reply_to", v.optional_address, "DIGEST_REPLY_TO"),
    "email.fit": ("email", "fit", v.boolean, "DIGEST_FIT"),
    "email.fit_budget": ("email", "fit_budget", v.fit_budget, "DIGEST_FIT_BUDGET"),
    "languages": ("", "languages", languages, ""),
    "categories.order": ("categories", "order", v.categories, ""),
    "categories.limit": ("categories", "limit", v.limit, "DIGEST_CATEGORY_LIMIT"),
    "paths.items": ("paths", "items", v.path_value, "DIGEST_ITEMS"),
    "paths.templates": ("paths", "templates", v.path_value, "DIGEST_TEMPLATES"),
    "paths.out": ("paths", "out", v.path_value, "DIGEST_OUT"),
    "paths.cache": ("paths", "cache", v.path_value, "DIGEST_CACHE"),
    "paths.locale": ("paths", "locale", v.path_value, "DIGEST_LOCALE_DIR"),
    "smtp.host": ("smtp", "host", v.nonempty_line, "DIGEST_SMTP_HOST"),
    "smtp.port": ("smtp", "port", v.port, "DIGEST_SMTP_PORT"),
    "smtp.security": ("smtp", "security", v.security, "DIGEST_SMTP_SECURITY"),
    "smtp.username": ("smtp", "username", v.line, "DIGEST_SMTP_USERNAME"),
    "smtp.verify": ("smtp", "verify", v.boolean, "DIGEST_SMTP_VERIFY"),
    "smtp.timeout": ("smtp", "timeout", v.seconds, "DIGEST_SMTP_TIMEOUT"),
    "smtp.ca_file": ("smtp", "ca_file", v.optional_path, "DIGEST_SMTP_CA_FILE"),
    "send.unsubscribe_url": ("send", "unsubscribe_url", v.unsubscribe_url, "DIGEST_UNSUBSCRIBE_URL"),
    "send.unsubscribe_mailto": ("send", "unsubscribe_mailto", v.mailbox, "DIGEST_UNSUBSCRIBE_MAILTO"),
    "send.list_id": ("send", "list_id", v.list_id, "DIGEST_LIST_ID"),
    "send.greeting": ("send", "greeting", v.greeting, "DIGEST_GREETING"),
    "send.greeting_fallback": ("send", "greeting_fallback", v.line, "DIGEST_GREETING_FALLBACK"),
    "send.rate": ("send", "rate", v.rate, "DIGEST_SEND_RATE"),
    "send.connections": ("send", "connections", v.count, "DIGEST_SEND_CONNECTIONS"),
    "send.window": ("send", "window", v.window, "DIGEST_SEND_WINDOW"),
    "paths.suppressions": ("paths", "suppressions", v.path_value, "DIGEST_SUPPRESSIONS"),
    "bounces.imap_host": ("bounces", "imap_host", v.line, "DIGEST_IMAP_HOST"),
    "bounces.imap_port": ("bounces", "imap_port", v.port, "DIGEST_IMAP_PORT"),
    "bounces.imap_security": ("bounces", "imap_security", v.security_imap, "DIGEST_IMAP_SECURITY"),
    "bounces.imap_user": ("bounces", "imap_user", v.line, "DIGEST_IMAP_USER"),
    "bounces.imap_folder": ("bounces", "imap_folder", v.nonempty_line, "DIGEST_IMAP_FOLDER"),
    "bounces.transient_days": ("bounces", "transient_days", v.count, "DIGEST_BOUNCES_TRANSIENT_DAYS"),
    "dkim.domain": ("dkim", "domain", v.line, "DIGEST_DKIM_DOMAIN"),
    "dkim.selector": ("dkim", "selector", v.line, "DIGEST_DKIM_SELECTOR"),
    "dkim.key_file": ("dkim", "key_file", v.optional_path, "DIGEST_DKIM_KEY_FILE"),
    "check.clients": ("check", "clients", v.names, ""),
    "import.default_category": ("feeds_import", "default_category", v.nonempty_line, ""),
    "import.categories": ("feeds_import", "categories", v.category_map, ""),
    "import.summary_length": ("feeds_import", "summary_length", v.summary_length, ""),
    "import.feeds": ("feeds_import", "feeds", v.feed_list, ""),
}
# Relative paths: against the config file's folder when they come from the file or the environment, against
# the current folder when they come from a flag (the user typed them in the shell).
PATH_KEYS = {
    "paths.items",
    "paths.templates",
    "paths.out",
    "paths.cache",
    "paths.locale",
    "paths.suppressions",
    "smtp.ca_file",
    "dkim.key_file",
}
# The command-line flag of a setting, for messages about a flag's value.
FLAGS = {
    "paths.out": "--out",
    "send.rate": "--rate",
    "send.connections": "--connections",
    "send.window": "--window",
    "smtp.verify": "--insecure-no-verify",
    "bounces.imap_host": "--imap",
    "bounces.imap_user": "--user",
    "bounces.imap_folder": "--folder",
    "bounces.imap_port": "--port",
    "bounces.imap_security": "--security",
}
