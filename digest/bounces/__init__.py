"""`digest bounces`: read the bounce mailbox and decide, message by message, whom to suppress and why.

- A permanent failure (DSN Status 5.x.x, or a non-standard bounce's permanent failure) of an address we sent
  a digest to suppresses it as `bounced`, with the Status, the Diagnostic-Code and the reporting MTA.
- A transient failure (4.x.x) is counted per address and day (the bounce's date); on
  `[bounces] transient_days` distinct days the address is suppressed, with those days as evidence.
- A mail to `[send] unsubscribe_mailto` with the subject "unsubscribe" from an address we sent a digest to
  suppresses it as `unsubscribed`.
- Auto-replies (vacation, out of office) and delivery notices that report no failure are marked and ignored.
- Everything else, and a bounce or an unsubscribe about an address we never sent to (backscatter, forged
  mail), is left untouched and unmarked, for a person to read.

Whom a bounce is about: our Message-ID in the returned headers, looked up in the send journals
(out/<slug>/journal.sqlite keeps each recipient's Message-ID), names the address and the digest; without
it, the DSN's Original-Recipient or Final-Recipient must be an address some journal has.
The transient counts live in the suppression list's SQLite file, in a table of their own.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from digest.bounces.mailbox import Mailbox, Stored
from digest.bounces.parse import Failure, Parsed, parse
from digest.config import Config
from digest.journal import journals, message_ids
from digest.suppress import Suppressions, normalise

__all__ = ["Decision", "Outcome", "Report", "Sent", "known_recipients", "run"]

_TRANSIENTS = """
create table if not exists bounce_transients (
    address text not null,             -- normalised as the suppression list keeps it
    day text not null,                 -- the bounce's date (UTC), YYYY-MM-DD
    source text not null,              -- bounce:<message-id>
    evidence text not null default '',
    primary key (address, day)
)
"""


@dataclass(frozen=True)
class Sent:
    """Whom a digest went to: the address as the journal keeps it, and the digest's folder name."""

    address: str
    digest: str


@dataclass
class Recipients:
    """What the send journals know: each Message-ID's recipient, and every address some digest went to."""

    by_id: dict[str, Sent] = field(default_factory=dict)
    by_address: dict[str, str] = field(default_factory=dict)


def known_recipients(out_dir: Path) -> Recipients:
    """Every journal under out/, read-only: Message-ID -> (address, digest), and address -> digest."""
    found = Recipients()
    for path in journals(out_dir):
        digest = path.parent.name
        for email, message_id in message_ids(path):
            address = str(email).lower()
            found.by_address[address] = digest
            if message_id:
                found.by_id[str(message_id).lower()] = Sent(address, digest)
    return found


@dataclass(frozen=True)
class Decision:
    """What one message means for one address: suppress, count (a transient bounce), ignore or leave."""

    action: str
    why: str
    address: str = ""
    reason: str = ""  # the suppression's reason
    evidence: str = ""
    new: bool = True  # False: the address was suppressed already


@dataclass(frozen=True)
class Outcome:
    """One message: where it is, what it is, the decisions; marked as processed unless all are `leave`."""

    key: str
    parsed: Parsed
    decisions: tuple[Decision, ...]

    @property
    def processed(self) -> bool:
        """Understood: marked in the mailbox, skipped by the next run."""
        return any(d.action != "leave" for d in self.decisions)

    def line(self, mailbox: str, *, dry_run: bool) -> str:
        """One line for the report: the message, then each decision and why."""
        parts = []
        for d in self.decisions:
            verb = {"suppress": "would suppress" if dry_run else "suppressed", "count": "counted"}.get(
                d.action, d.action
            )
            if d.action == "suppress" and not d.new:
                verb = "already suppressed"
            who = f" {d.address}" if d.address else ""
            reason = f" ({d.reason})" if d.reason else ""
            parts.append(f"{verb}{who}{reason}: {d.why}")
        subject = self.parsed.subject[:60]
        return f"{mailbox} #{self.key} {subject!r}: " + "; ".join(parts)


@dataclass
class Report:
    """What a run did (or, dry, would do), message by message."""

    mailbox: str
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, action: str) -> int:
        """How many decisions of one kind (suppress: only new suppressions)."""
        return sum(
            1
            for o in self.outcomes
            for d in o.decisions
            if d.action == action and (d.new or action != "suppress")
        )

    @property
    def left(self) -> int:
        """Messages left untouched."""
        return sum(1 for o in self.outcomes if not o.processed)

    def summary(self) -> str:
        """One line: how many messages, and what came of them."""
        n = len(self.outcomes)
        text = (
            f"{n} message{'s' if n != 1 else ''}: {self.count('suppress')} "
            f"{'to suppress' if self.dry_run else 'suppressed'}, {self.count('count')} transient "
            f"bounce{'s' if self.count('count') != 1 else ''} counted, {self.count('ignore')} ignored, "
            f"{self.left} left untouched"
        )
        return text + (" (dry run: nothing changed)" if self.dry_run else "")


class _Transients:
    """Transient bounces per address and day, in the suppression list's file; in memory for a dry run."""

    def __init__(self, path: Path, *, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.seen: dict[str, set[str]] = {}
        self.db: sqlite3.Connection | None = None
        if dry_run:
            if path.exists():
                self.db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        else:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.db.execute(_TRANSIENTS)

    def days(self, address: str) -> set[str]:
        days = set(self.seen.get(address, set()))
        if self.db is not None:
            with contextlib.suppress(sqlite3.OperationalError):  # a dry run before the table exists
                rows = self.db.execute("select day from bounce_transients where address = ?", (address,))
                days.update(str(r[0]) for r in rows)
        return days

    def add(self, address: str, day: str, *, source: str, evidence: str) -> None:
        if self.dry_run or self.db is None:
            self.seen.setdefault(address, set()).add(day)
            return
        self.db.execute(
            "insert or ignore into bounce_transients (address, day, source, evidence) values (?, ?, ?, ?)",
            (address, day, source, evidence),
        )

    def clear(self, address: str) -> None:
        # Once suppressed, the days are in the suppression's evidence; a re-subscribe starts from zero.
        self.seen.pop(address, None)
        if not self.dry_run and self.db is not None:
            self.db.execute("delete from bounce_transients where address = ?", (address,))

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def _whom(failure: Failure, parsed: Parsed, known: Recipients) -> Sent | None:
    sent = [known.by_id[i] for i in parsed.returned_ids if i in known.by_id]
    for s in sent:
        if s.address in (failure.recipient, failure.final):
            return s
    if len(parsed.failures) == 1 and len(sent) == 1:
        return sent[0]  # a forward or an alias: the returned Message-ID says whom we sent it to
    for address in (failure.recipient, failure.final):
        if address in known.by_address:
            return Sent(address, known.by_address[address])
    return None


def _evidence(failure: Failure, parsed: Parsed, sent: Sent) -> str:
    bits = [
        f"Status: {failure.status or '(none)'}",
        f"Diagnostic-Code: {failure.diagnostic or '(none)'}",
        f"Reporting-MTA: {parsed.reporting_mta or parsed.sender or '(unknown)'}",
        f"digest: {sent.digest}",
    ]
    if failure.final and failure.final != sent.address:
        bits.append(f"Final-Recipient: {failure.final}")
    if parsed.kind == "bounce":
        bits.append("non-standard bounce (flufl.bounce)")
    return "; ".join(bits)


class _Decider:
    def __init__(
        self,
        config: Config,
        known: Recipients,
        store: Suppressions | None,
        transients: _Transients,
        *,
        dry_run: bool,
        now: datetime,
    ) -> None:
        self.config, self.known, self.store, self.transients = config, known, store, transients
        self.dry_run, self.now = dry_run, now

    def _suppress(self, address: str, *, reason: str, source: str, evidence: str, why: str) -> Decision:
        key = normalise(address)
        if self.dry_run:
            new = self.store is None or not self.store.is_suppressed(key)
        else:
            assert self.store is not None
            new = self.store.add(key, reason=reason, source=source, evidence=evidence, at=self.now)
        return Decision("suppress", why, key, reason, evidence, new)

    def bounce(self, parsed: Parsed) -> list[Decision]:
        source = f"bounce:{parsed.message_id or '(no Message-ID)'}"
        day = (parsed.date or self.now).astimezone(UTC).date().isoformat()
        out: list[Decision] = []
        for f in parsed.failures:
            sent = _whom(f, parsed, self.known)
            if sent is None:
                out.append(Decision("leave", f"reports {f.recipient}, to whom no digest in out/ was sent"))
                continue
            evidence = _evidence(f, parsed, sent)
            what = f"{f.status or ('permanent' if f.permanent else 'transient')}"
            mta = f" from {parsed.reporting_mta}" if parsed.reporting_mta else ""
            if f.permanent:
                why = f"permanent failure {what}{mta}, digest {sent.digest}"
                out.append(
                    self._suppress(sent.address, reason="bounced", source=source, evidence=evidence, why=why)
                )
                continue
            key = normalise(sent.address)
            self.transients.add(key, day, source=source, evidence=evidence)
            days = sorted(self.transients.days(key))
            need = self.config.bounces.transient_days
            if len(days) >= need:
                why = f"transient failure {what}{mta} on {len(days)} distinct days ({', '.join(days)})"
                d = self._suppress(
                    key,
                    reason="bounced",
                    source=source,
                    evidence=f"transient bounces on {', '.join(days)}; last: {evidence}",
                    why=why,
                )
                self.transients.clear(key)
                out.append(d)
            else:
                why = f"transient failure {what}{mta} on {day}: {len(days)} of {need} days"
                why += f", digest {sent.digest}"
                out.append(Decision("count", why, key, evidence=evidence))
        return out

    def decide(self, parsed: Parsed) -> list[Decision]:
        if parsed.kind in ("dsn", "bounce"):
            if not parsed.failures:
                return [Decision("ignore", parsed.why)]
            return self.bounce(parsed)
        if parsed.kind == "autoreply":
            return [Decision("ignore", parsed.why)]
        if parsed.kind == "unsubscribe":
            if parsed.sender not in self.known.by_address:
                return [Decision("leave", f"{parsed.why} from {parsed.sender}, to whom no digest was sent")]
            when = parsed.date.isoformat() if parsed.date else "(no Date)"
            evidence = f"From: {parsed.sender}; Subject: {parsed.subject}; Date: {when}"
            return [
                self._suppress(
                    parsed.sender,
                    reason="unsubscribed",
                    evidence=evidence,
                    why=parsed.why,
                    source=f"mailto:{parsed.message_id or '(no Message-ID)'}",
                )
            ]
        return [Decision("leave", parsed.why)]


@contextlib.contextmanager
def _stores(config: Config, *, dry_run: bool) -> Iterator[tuple[Suppressions | None, _Transients]]:
    path = config.paths.suppressions
    # A dry run creates nothing: without a suppression list yet, nobody is suppressed.
    store = None if dry_run and not path.exists() else Suppressions(path)
    try:
        transients = _Transients(path, dry_run=dry_run)
        try:
            yield store, transients
        finally:
            transients.close()
    finally:
        if store is not None:
            store.close()


def run(
    config: Config,
    mailbox: Mailbox,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> Report:
    """Read every unprocessed message, decide, suppress and mark (a dry run only reports); the report."""
    now = now or datetime.now(UTC)
    known = known_recipients(config.paths.out)
    report = Report(mailbox.name, dry_run)
    with _stores(config, dry_run=dry_run) as (store, transients):
        decider = _Decider(config, known, store, transients, dry_run=dry_run, now=now)
        for stored in mailbox.unprocessed():
            outcome = _one(stored, decider, config)
            if outcome.processed and not dry_run:
                mailbox.mark(stored.key)
            report.outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    return report


def _one(stored: Stored, decider: _Decider, config: Config) -> Outcome:
    try:
        parsed = parse(stored.raw, unsubscribe_mailto=config.send.unsubscribe_mailto)
    except Exception as err:  # a message no parser understands is left, never a crash
        parsed = Parsed("other", f"cannot be parsed ({type(err).__name__}: {err})")
    return Outcome(stored.key, parsed, tuple(decider.decide(parsed)))
