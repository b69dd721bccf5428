"""Built digest + subscriber list -> the SMTP relay: the run (workers, retries, journal), as library calls.

We feed a relay well; we are not a mail server. Each of `send.connections` threads keeps one SMTP connection
(digest/smtp.py: one login) and reuses it for message after message. A 4xx reply or a dropped connection is
retried with exponential backoff (a 421 on a fresh connection); a 5xx for a recipient is recorded and
sending goes on; a failed login, TLS handshake or certificate check stops everything at once. Every result
is in the journal (digest/journal.py) the moment it is known, and no message is handed to the server unless
the journal was just written: a result that cannot be kept would be sent again by the next run.

`run`, `send_test`, `dry_run` and `status` are what `digest send` calls; prompts and progress reach them as
callbacks, so Python callers get the same behaviour without click.
"""

from __future__ import annotations

import random
import signal
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

from email_validator import EmailNotValidError, validate_email

from digest import outdir, smtp
from digest.config import Config
from digest.errors import DigestError, SendError
from digest.fsutil import shown
from digest.journal import Counts, Journal, journal_path, read_counts
from digest.message import Outgoing, Personaliser, personaliser
from digest.subscribers import Subscriber, SubscriberList, check_list, iter_subscribers
from digest.window import Window

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


@dataclass(frozen=True)
class Plan:
    """What a send is about to do, for the confirmation callback."""

    todo: int
    counts: Counts
    subject: str
    address: str


@dataclass(frozen=True)
class SendReport:
    """What one run did, and the journal's state after it."""

    journal: Path
    listed: SubscriberList
    already_done: int
    sent: int
    failed: int
    deferred: int
    elapsed: float
    counts: Counts
    failures: list[tuple[str, int | None, str]]
    refused: int = 0  # people on the list now whom the server refused for good (5xx)
    unfinished: int = 0  # people on the list now still pending or deferred: the next run tries them


@dataclass(frozen=True)
class Prepared:
    """A built folder ready to send from: its parts, the message maker and the checked SMTP settings."""

    folder: Path
    built: outdir.Built
    parts: outdir.Parts
    maker: Personaliser
    settings: smtp.SmtpSettings
    sender: str


def prepare(
    config: Config, target: Window | Path, *, now: datetime, what: str, as_built: bool, say: Say | None = None
) -> Prepared:
    """Check the settings, load the built folder (building a window not built yet) and refuse a stale one."""
    settings = smtp.smtp_settings(config)  # a mistake there should not wait for a build
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
        if not as_built:
            from digest.build import changes_since, stale_message

            changes = changes_since(config, built)
            if changes:
                raise SendError(stale_message(folder, changes, what=what))
    parts = built.parts()
    maker = personaliser(config, parts, now=now)
    return Prepared(folder, built, parts, maker, settings, config.sender.addr_spec)


# ---- the run ----


@dataclass
class _Run:
    settings: smtp.SmtpSettings
    sender: str
    maker: Personaliser
    journal: Journal
    options: SendOptions
    progress: Callable[[int, int], None] | None
    limit: smtp.RateLimit
    todo: Iterator[Subscriber]
    total: int
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: list[str] = field(default_factory=list)
    tally: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0, "deferred": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)
    todo_lock: threading.Lock = field(default_factory=threading.Lock)
    live: int = 0
    finished: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False

    def done(self, status: str) -> None:
        with self.lock:
            self.tally[status] += 1
            n = sum(self.tally.values())
        if self.progress is not None:
            self.progress(n, self.total)

    def backoff(self, attempt: int) -> None:
        delay = min(self.options.retry_delay * 2 ** (attempt - 1), 300.0)
        self.stop.wait(delay * random.uniform(0.8, 1.2))  # jitter, not security

    def worker(self) -> None:
        conn: smtplib.SMTP | None = None
        try:
            while not self.stop.is_set():
                with self.todo_lock:  # each connection takes the next recipient itself: no feeder thread
                    sub = next(self.todo, None)
                if sub is None:
                    break
                conn = self.send(conn, sub)
        except DigestError as err:  # the journal cannot be written: stop everyone, say why
            self.fail(str(err))
        except Exception as err:
            self.fail(f"{type(err).__name__}: {err}")
        finally:
            smtp.close(conn)
            with self.lock:
                self.live -= 1
                if self.live == 0:
                    self.finished.set()

    def send(self, conn: smtplib.SMTP | None, sub: Subscriber) -> smtplib.SMTP | None:
        message = self.maker.message(sub.email, sub.name, sub.fields)
        attempt = 0
        last = ""
        fresh = False  # this worker's last journal write (a result) just succeeded
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = smtp.connect(self.settings)
                self.limit.wait(self.stop)
                if self.stop.is_set():
                    break
                # Hand nothing over unless the journal can keep its result: a write just before it.
                if fresh:
                    self.journal.check()
                else:
                    self.journal.touch(sub.key)
                reply = smtp.deliver(conn, self.sender, message)
            except smtp.Fatal as err:
                self.fail(str(err))
                return None
            except smtp.Reply as err:
                code: int | None = err.code
                last = f"{err.stage}: {err.code} {err.text}"
                if err.stage == "MAIL FROM" and err.code == 503:
                    # "Bad sequence of commands": the state of this connection was refused, not the sender.
                    # Start again on a fresh connection, retried like a 4xx.
                    smtp.close(conn)
                    conn = None
                elif err.code >= 500:
                    if err.stage == "MAIL FROM":
                        self.fail(f"{self.settings.address} refused the sender {self.sender}: {err}")
                        return conn
                    self.journal.record(sub.key, "failed", code=err.code, reply=f"{err.stage}: {err.text}")
                    self.done("failed")
                    return conn
                elif err.code == 421:  # the server is closing this connection
                    smtp.close(conn)
                    conn = None
            except (smtplib.SMTPException, OSError) as err:
                smtp.close(conn)
                conn = None
                last = f"{self.settings.address}: {err or type(err).__name__}"
                code = None
            else:
                self.journal.record(sub.key, "sent", code=250, reply=reply, message_id=message.message_id)
                self.done("sent")
                return conn
            fresh = False
            attempt += 1
            if attempt > self.options.retries:
                if code is None:
                    # The relay is unreachable, not this recipient's fault: stop, and leave the rest pending.
                    self.fail(f"giving up after {attempt} attempts: {last}")
                    return None
                self.journal.record(sub.key, "deferred", code=code, reply=last)
                self.done("deferred")
                return conn
            self.backoff(attempt)
        return conn

    def fail(self, why: str) -> None:
        with self.lock:
            self.fatal.append(why)
        self.stop.set()

    def interrupt(self, _signum: int, _frame: FrameType | None) -> None:
        # Ctrl-C: no exception in the main thread; each connection finishes and records its message.
        self.interrupted = True
        self.stop.set()

    def go(self, connections: int) -> None:
        """Start the workers and wait for all of them; Ctrl-C only asks them to stop."""
        workers = [
            threading.Thread(target=self.worker, name=f"smtp-{n}", daemon=True)
            for n in range(min(connections, self.total))
        ]
        self.live = len(workers)
        catch = threading.current_thread() is threading.main_thread()
        before = signal.signal(signal.SIGINT, self.interrupt) if catch else None
        try:
            for t in workers:
                t.start()
            # Not Thread.join: on 3.11/3.12 a signal can make it return while the thread still runs.
            while not self.finished.wait(0.5):
                pass
        finally:
            if catch:
                signal.signal(signal.SIGINT, before)
        if self.interrupted:
            raise KeyboardInterrupt


def run(
    config: Config,
    target: Window | Path,
    subscribers: Path,
    options: SendOptions | None = None,
    *,
    now: datetime,
    confirm: Callable[[Plan], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
    say: Say | None = None,
) -> SendReport:
    """Send the digest of `target` (a window, or a built folder) to every subscriber not yet sent or
    refused, recording each result in the digest's journal; SendError when it stops before the end.

    `confirm(plan)` may decline (SendError, nothing sent); `progress(done, todo)` is called with (0, todo)
    when sending starts and after each result; `say` gets status lines. Rate and connections: config.send.
    KeyboardInterrupt (Ctrl-C) once every connection has recorded the message it was on.
    """
    options = options or SendOptions()
    ready = prepare(config, target, now=now, what="send", as_built=options.as_built, say=say)
    listed = check_list(subscribers, uses=ready.maker.greeting_uses, skip_invalid=options.skip_invalid)
    parts, path = ready.parts, journal_path(ready.folder)
    began = time.monotonic()
    with (
        outdir.holding(ready.folder, content_hash=parts.content_hash, wait=LOCK_WAIT),
        Journal(path) as journal,
    ):
        journal.bind(
            content_hash=parts.content_hash,
            subject=parts.subject,
            subscribers=subscribers.resolve(),
            allow_changed=options.allow_changed,
        )
        journal.add_pending((s.key, s.email) for s in iter_subscribers(subscribers, listed))
        done = journal.done_keys()
        todo = sum(s.key not in done for s in iter_subscribers(subscribers, listed))
        if todo and confirm is not None:
            plan = Plan(todo, journal.counts(), parts.subject, ready.settings.address)
            if not confirm(plan):
                raise SendError("not sent: confirmation declined")
        work = _Run(
            ready.settings,
            ready.sender,
            ready.maker,
            journal,
            options,
            progress,
            smtp.RateLimit(config.send.rate),
            (s for s in iter_subscribers(subscribers, listed) if s.key not in done),
            todo,
        )
        if todo:
            smtp.probe(ready.settings)  # fail fast: TLS and login checked before any thread starts
            if progress is not None:
                progress(0, todo)
            work.go(config.send.connections)
        report = _finish(journal, work, ready, listed, subscribers, todo, time.monotonic() - began, config)
    if work.fatal:
        raise SendError(
            f"sending stopped: {work.fatal[0]}\n{report.sent} sent in this run; {report.counts}. "
            "Run the same command again to resume."
        )
    return report


def _finish(
    journal: Journal,
    work: _Run,
    ready: Prepared,
    listed: SubscriberList,
    subscribers: Path,
    todo: int,
    elapsed: float,
    config: Config,
) -> SendReport:
    # Judged on the list as it is now: rows of people taken off it since an earlier run do not count.
    sent_keys, failed_keys = journal.keys("sent"), journal.keys("failed")
    refused = unfinished = 0
    for s in iter_subscribers(subscribers, listed):
        refused += s.key in failed_keys
        unfinished += s.key not in sent_keys and s.key not in failed_keys
    if not work.fatal and unfinished == 0:
        journal.sent_in_full(
            newest_end=ready.built.manifest.newest_end(config.tz),
            content_hash=ready.parts.content_hash,
            sent_now=work.tally["sent"] > 0,
        )
    return SendReport(
        journal.path,
        listed,
        listed.count - todo,
        work.tally["sent"],
        work.tally["failed"],
        work.tally["deferred"],
        elapsed,
        journal.counts(),
        journal.failures(),
        refused,
        unfinished,
    )


# ---- the other library calls of `digest send` ----


def send_test(
    config: Config,
    target: Window | Path,
    address: str,
    *,
    now: datetime,
    as_built: bool = False,
    say: Say | None = None,
) -> str:
    """Send one copy to `address`, outside the journal; the server's reply."""
    try:
        email = validate_email(address, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as err:
        raise SendError(f"--test {address!r}: not a valid email address: {err}") from None
    ready = prepare(config, target, now=now, what="send a test of", as_built=as_built, say=say)
    return smtp.send_one(ready.settings, ready.sender, ready.maker.message(email))


@dataclass(frozen=True)
class DryRun:
    """What a send would do now: the first message, the list's counts, the journal's, how many would go."""

    message: Outgoing | None
    listed: SubscriberList
    counts: Counts | None
    would_send: int
    address: str


def dry_run(
    config: Config,
    target: Window | Path,
    subscribers: Path,
    options: SendOptions | None = None,
    *,
    now: datetime,
    say: Say | None = None,
) -> DryRun:
    """Every check a real send makes (settings, staleness, the list), then the first message; connects to
    nothing and writes no journal."""
    options = options or SendOptions()
    ready = prepare(config, target, now=now, what="dry-run", as_built=options.as_built, say=say)
    listed = check_list(subscribers, uses=ready.maker.greeting_uses, skip_invalid=options.skip_invalid)
    first = next(iter_subscribers(subscribers, listed), None)
    message = ready.maker.message(first.email, first.name, first.fields) if first else None
    path = journal_path(ready.folder)
    counts = read_counts(path)[0] if path.exists() else None
    finished = counts.sent + counts.failed if counts else 0
    return DryRun(message, listed, counts, max(listed.count - finished, 0), ready.settings.address)
