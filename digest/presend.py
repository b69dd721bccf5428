"""What comes before a send: the options, the checks and the preparation every kind of send makes (the
settings, the built folder, staleness), the test message and the dry run.

`digest send --test` and `--dry-run` are library calls here, as `digest.send.run` is for the real send;
digest/send.py re-exports them, so Python callers find every call of `digest send` in one place.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from digest import outdir, smtp
from digest.config import Config
from digest.dkim import alignment_warning
from digest.errors import SendError
from digest.fsutil import shown
from digest.journal import Counts, journal_path, read_journal
from digest.message import Outgoing, Personaliser, personaliser
from digest.subscribers import Subscriber, SubscriberList, check_list, iter_subscribers, valid_address
from digest.suppress import open_suppressions
from digest.window import Window
from digest.words import lang_code

LOCK_WAIT = 120.0  # seconds a send waits for a build of the same digest to finish writing it

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class SendOptions:
    """How to send, besides config.send (rate, connections): retries, and what to accept."""

    retries: int = 5  # attempts per message after the first, for 4xx replies and dropped connections
    retry_delay: float = 1.0  # seconds before the first retry; doubled each time, capped at 5 minutes
    allow_changed: bool = False  # resume although the digest changed since the journal's first send
    skip_invalid: bool = False  # send to the good rows of a list that has bad ones
    as_built: bool = False  # send a folder although its window's items changed since the build
    resend_items: bool = False  # send although every item went out before in another digest (repeat.py)


@dataclass(frozen=True)
class Prepared:
    """A built folder ready to send from: its parts, the message maker and the checked SMTP settings."""

    folder: Path
    built: outdir.Built
    parts: outdir.Parts  # the digest's own language's
    maker: Makers  # picks each subscriber's language
    settings: smtp.SmtpSettings
    sender: str
    content_hash: str  # of every language's digest: what the journal is bound to


class Makers:
    """The message makers of a digest built in several languages: each subscriber gets the digest in their
    list row's `lang`, else in the digest's own language. A regional tag finds its language (fr-CA: the fr
    digest) and a language finds a regional digest when it has no other (fr: a fr_FR digest)."""

    def __init__(
        self, main: Personaliser, others: Mapping[str, Personaliser] | None = None, *, lang: str = ""
    ) -> None:
        self.main, self.lang = main, lang
        self.others = dict(others or {})
        self.greeting_uses = main.greeting_uses.union(*(m.greeting_uses for m in self.others.values()))

    def for_fields(self, fields: Mapping[str, str] | None) -> Personaliser:
        """The maker of the language a subscriber's row asks for (its `lang` column), else the main one."""
        asked = (fields or {}).get("lang", "").strip()
        return self.for_language(lang_code(asked)) if asked and self.others else self.main

    def for_language(self, code: str) -> Personaliser:
        """The maker of a language (as lang_code writes it), by the rules above."""
        everyone = {self.lang: self.main, **self.others}
        base = code.split("_")[0]
        found = (
            everyone.get(code)
            or everyone.get(base)
            or next((m for c, m in everyone.items() if c.split("_")[0] == base), None)
        )
        if found is not None:
            return found
        return self.main

    def message(self, email: str, name: str = "", fields: Mapping[str, str] | None = None) -> Outgoing:
        """One recipient's complete message, in their language."""
        return self.for_fields(fields).message(email, name, fields)


def prepare(
    config: Config, target: Window | Path, *, now: datetime, what: str, as_built: bool, say: Say | None = None
) -> Prepared:
    """Check the settings, load the built folder (building a window not built yet) and refuse a stale one."""
    settings = smtp.smtp_settings(config)  # a mistake there should not wait for a build
    misaligned = alignment_warning(config)
    if misaligned and say is not None:
        say(f"Warning: {misaligned}")
    folder = outdir.folder_of(config.paths.out, target.slug) if isinstance(target, Window) else target
    with outdir.holding(folder, wait=LOCK_WAIT):  # put back what a build killed mid-swap left aside
        pass
    if isinstance(target, Window) and not outdir.is_built(folder):
        from digest.build import build

        if say is not None:
            say(f"{shown(folder)}/ is not built yet: building it first")
        result = build(config, target, now=now)
        for warning in result.warnings:
            if say is not None:
                say(f"Warning: {warning}")
        built = outdir.load(result.folder)
    else:
        built = outdir.load(folder)
        from digest.build import changes_since, settings_since, stale_message

        other = settings_since(config, built)
        if as_built and other and say is not None:
            say(
                f"Warning: {shown(folder)}/ was built with other settings ({', '.join(other)}): "
                "--as-built sends it as built, with From, Reply-To, List-Id and the greeting made from the "
                "current ones"
            )
        changes = [] if as_built else changes_since(config, built, now=now)
        if not as_built and (changes or other):
            m = built.manifest
            window = target if isinstance(target, Window) else Window(m.start, m.end, m.label, m.slug)
            window = window if window.sent else replace(window, sent=frozenset(m.already_sent))
            rebuild = rebuild_command(config, window, now=now)
            raise SendError(stale_message(folder, changes, what=what, settings=other, rebuild=rebuild))
    parts = built.parts()
    lang = built.manifest.lang or None
    others = {
        b.manifest.lang: personaliser(config, b.parts(), now=now, lang=b.manifest.lang)
        for b in built.languages()
    }
    maker = Makers(personaliser(config, parts, now=now, lang=lang), others, lang=lang or config.language)
    return Prepared(folder, built, parts, maker, settings, config.sender.addr_spec, built.digest_hash())


def rebuild_command(config: Config, window: Window, *, now: datetime) -> str:
    """The `digest build` that makes a window's folder again, with the window options that chose it: a
    --since-last-send window is rebuilt by --since-last-send (so what was sent stays out), not by dates."""
    out = outdir.out_option(config.paths.out, config.paths.root)
    slug, tz = window.slug, config.tz
    if re.fullmatch(r"\d{4}-\d{2}", slug):
        return f"digest build --month {slug}{out}"
    if re.fullmatch(r"\d{4}-W\d{2}", slug):
        return f"digest build --week {slug}{out}"
    if window.sent or _since_last_send(config, window, now=now):
        return f"digest build --since-last-send{out}"
    start, end = window.start.astimezone(tz), window.end.astimezone(tz)
    if end == now.astimezone(tz):  # up to now: --last, or --since without --until
        span = end.astimezone(UTC) - start.astimezone(UTC)
        hours = span / timedelta(hours=1)
        if start.time() != time() and hours == int(hours):
            n, unit = next(
                (int(hours) // h, u) for h, u in ((168, "w"), (24, "d"), (1, "h")) if hours % h == 0
            )
            return f"digest build --last {n}{unit}{out}"
        return f"digest build --since {_when(start)}{out}"
    until = (end - timedelta(days=1)).date().isoformat() if end.time() == time() else _when(end - _TICK)
    return f"digest build --since {_when(start)} --until {until}{out}"


_TICK = timedelta(microseconds=1)  # a --until time takes in that very instant: the window ends just after


def _when(at: datetime) -> str:
    """A --since/--until value: the date at midnight, else the time in the configured zone."""
    if at.time() == time():
        return at.date().isoformat()
    return at.replace(tzinfo=None).isoformat(timespec="seconds" if not at.microsecond else "microseconds")


def _since_last_send(config: Config, window: Window, *, now: datetime) -> bool:
    """Whether `--since-last-send` chooses this window now (its items sent before are left out)."""
    from digest.errors import EmptyWindow
    from digest.sent import last_sent_in_full
    from digest.window import after

    found = last_sent_in_full(config.paths.out, config.tz)
    if found is None:
        return False
    try:
        chosen = after(found[1], config.tz, config.language, now=now)
    except EmptyWindow:
        return False
    return (chosen.slug, chosen.start) == (window.slug, window.start)


def send_test(
    config: Config,
    target: Window | Path,
    address: str,
    *,
    now: datetime,
    as_built: bool = False,
    say: Say | None = None,
    lang: str | None = None,
) -> str:
    """Send one copy to `address`, outside the journal, in the digest's own language or `lang`'s (the
    digest a subscriber with that `lang` gets); the server's reply."""
    try:
        email = valid_address(address)
    except ValueError as err:
        raise SendError(f"--test: {err}") from None
    ready = prepare(config, target, now=now, what="send a test of", as_built=as_built, say=say)
    fields = {"lang": lang} if lang else None
    return smtp.send_one(ready.settings, ready.sender, ready.maker.message(email, fields=fields))


def repeats(
    config: Config,
    target: Window | Path,
    ready: Prepared,
    options: SendOptions,
    subscribers: Path,
    *,
    dry_run: bool,
    say: Say | None,
) -> None:
    """The check for items sent before in another digest (digest/repeat.py); a --since-last-send window
    leaves those out already, so its journals are not read again."""
    if isinstance(target, Window) and target.sent:
        return
    from digest.repeat import check

    items = ready.built.item_slugs()
    check(
        config.paths.out,
        ready.folder,
        items,
        config.tz,
        subscribers=subscribers,
        resend=options.resend_items,
        dry_run=dry_run,
        say=say,
    )


@dataclass(frozen=True)
class DryRun:
    """What a send would do now: the first message, the list's counts, the journal's, how many would go."""

    message: Outgoing | None
    listed: SubscriberList
    counts: Counts | None
    would_send: int
    address: str
    suppressed: int = 0  # on the list, not yet sent, and on the suppression list: would be skipped
    languages: dict[str, int] = field(default_factory=dict)  # of those it would send: how many get which
    placeholders: tuple[str, ...] = ()  # what still points at a reserved domain (placeholders())


def dry_run(
    config: Config,
    target: Window | Path,
    subscribers: Path,
    options: SendOptions | None = None,
    *,
    now: datetime,
    say: Say | None = None,
    lang: str | None = None,
) -> DryRun:
    """Every check a real send makes (settings, staleness, the list), then the first message (in `lang`'s
    digest, when given); connects to nothing and writes no journal."""
    options = options or SendOptions()
    ready = prepare(config, target, now=now, what="dry-run", as_built=options.as_built, say=say)
    repeats(config, target, ready, options, subscribers, dry_run=True, say=say)
    listed = check_list(subscribers, uses=ready.maker.greeting_uses, skip_invalid=options.skip_invalid)
    path = journal_path(ready.folder)
    found = read_journal(path, done=True) if path.exists() else None
    done = found.done if found else frozenset()
    blocked: set[str] = set()
    if config.paths.suppressions.exists():  # a dry run creates nothing
        with open_suppressions(config) as store:
            blocked = store.suppressed()
    first: Subscriber | None = None
    would = suppressed = 0
    langs: dict[str, int] = {}
    names = {id(m): code for code, m in [(ready.maker.lang, ready.maker.main), *ready.maker.others.items()]}
    for s in iter_subscribers(subscribers, listed):
        if s.key in done:
            continue
        if s.key in blocked:
            suppressed += 1
            continue
        would += 1
        first = first or s
        code = names[id(ready.maker.for_fields(s.fields))]
        langs[code] = langs.get(code, 0) + 1
    langs = {code: langs[code] for code in [ready.maker.lang, *ready.maker.others] if code in langs}
    shown_first = None
    if first is not None:
        fields = {**first.fields, "lang": lang} if lang else first.fields
        shown_first = ready.maker.message(first.email, first.name, fields)
    counts = found.counts if found else None
    shown_as = placeholders(config, ready.built)
    return DryRun(shown_first, listed, counts, would, ready.settings.address, suppressed, langs, shown_as)


# Names no one can own (RFC 2606, RFC 6761): a link or an address there is a placeholder left from an
# example, such as the one `digest init` writes (its settings and its example item).
RESERVED_DOMAINS = ("example.com", "example.net", "example.org", "example", "test", "invalid", "localhost")


def placeholder_host(host: str) -> bool:
    """Whether a host is one no reader reaches: a reserved name or below one (example.org, *.test,
    localhost, ...), or an address that is not public (127.0.0.1, 10.0.0.8, [::1], 192.0.2.1)."""
    # As a browser reads a name (UTS 46): full-width letters and the ideographic full stops are the
    # ASCII ones, "ｅｘａｍｐｌｅ。org" is example.org.
    host = unicodedata.normalize("NFKC", host).replace("\u3002", ".").casefold().rstrip(".")
    literal = host.strip("[]").removeprefix("ipv6:")  # an e-mail's address literal: [192.0.2.1], [IPv6:...]
    try:
        return not ipaddress.ip_address(literal).is_global
    except ValueError:
        pass
    # The short forms a browser reads too: 127.1, 0x7f.1, 2130706433.
    if re.fullmatch(r"[0-9a-fx.]+", literal):
        try:
            return not ipaddress.IPv4Address(socket.inet_aton(literal)).is_global
        except OSError:
            pass  # a name
    return any(host == name or host.endswith(f".{name}") for name in RESERVED_DOMAINS)


def placeholders(config: Config, built: outdir.Built) -> tuple[str, ...]:
    """What a digest about to go to a list still points at a reserved domain or a private address with:
    its web version, its unsubscribe link and address, its From and Reply-To addresses, an item's link (in
    every language)."""
    found = []
    if placeholder_host(urlsplit(built.manifest.web_url).hostname or ""):
        found.append(f"its web version, {built.manifest.web_url} (base_url)")
    url, mailto = config.send.unsubscribe_url, config.send.unsubscribe_mailto
    if url and placeholder_host(urlsplit(url.replace("{", "").replace("}", "")).hostname or ""):
        found.append(f"its unsubscribe link, {url} ([send] unsubscribe_url): no reader could unsubscribe")
    if mailto and placeholder_host(mailto.rpartition("@")[2]):
        found.append(f"its unsubscribe address, {mailto} ([send] unsubscribe_mailto)")
    if placeholder_host(config.sender.domain):
        found.append(f"its From address, {config.sender.addr_spec} ([email] from)")
    reply_to = config.reply_to
    if reply_to is not None and placeholder_host(reply_to.domain):
        found.append(f"its Reply-To address, {reply_to.addr_spec} ([email] reply_to)")
    seen = set()
    for each in (built, *built.languages()):
        for item in each.manifest.built_items:
            host = urlsplit(item.url).hostname if item.url else None
            if host and placeholder_host(host) and item.source not in seen:
                seen.add(item.source)
                found.append(f"{item.source}: its link, {item.url}")
    return tuple(found)
