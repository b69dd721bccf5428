"""Built digest + subscriber list -> the SMTP relay: the run (workers, retries, journal), as library calls.

We feed a relay well; we are not a mail server. Each of `send.connections` threads keeps one SMTP connection
(digest/smtp/: one login) and reuses it for message after message. A 4xx reply or a dropped connection is
retried with exponential backoff (a 421 on a fresh connection); a 5xx for a recipient is recorded and sending
goes on (a 5xx to RCPT TO that says the address is bad also puts it on the suppression list, as `bounced`,
with the reply as evidence); a failed login, TLS handshake or certificate check stops everything at once.
Every result is in the journal (digest/journal.py) the moment it is known, and no message is handed to the
server unless the journal was just written: a result that cannot be kept would be sent again by the next run
(those rules are one connection's work: digest/lane.py). Addresses on the suppression list
(digest/suppress.py, loaded once per run) get nothing: the journal records them as suppressed, with why.

`run`, `send_test`, `dry_run` (digest/presend.py, re-exported here) and `status` are what `digest send`
calls; prompts and progress reach them as callbacks, so Python callers get the same behaviour without click.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

from digest import outdir, presend, smtp
from digest.config import Config
from digest.errors import DigestError, SendError, SuppressionError
from digest.journal import Counts, Journal, journal_path
from digest.lane import Lane, Try, bad_address
from digest.presend import DryRun, Makers, Prepared, Say, SendOptions, dry_run, prepare, send_test
from digest.subscribers import Subscriber, SubscriberList, check_list, iter_subscribers
from digest.suppress import Suppressions, open_suppressions, why
from digest.window import Window

__all__ = [
    "DryRun",
    "Plan",
    "Prepared",
    "SendOptions",
    "SendReport",
    "bad_address",
    "dry_run",
    "prepare",
    "run",
    "send_test",
]


@dataclass(frozen=True)
class Plan:
    """What a send is about to do, for the confirmation callback."""

    todo: int
    counts: Counts
    subject: str
    address: str
    # What still points at a reserved domain (example.org, ...): presend.placeholders.
    placeholders: tuple[str, ...] = ()


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
    suppressed: int = 0  # people on the list skipped by this run: on the suppression list
    bounced: list[str] = field(default_factory=list)  # addresses this run put on the suppression list
    problems: list[str] = field(default_factory=list)  # bounces that could not be put on it, and why


# ---- the run ----


@dataclass
class _Run:
    settings: smtp.SmtpSettings
    sender: str
    maker: Makers
    journal: Journal
    options: SendOptions
    progress: Callable[[int, int], None] | None
    limit: smtp.RateLimit
    todo: Iterator[Subscriber]
    total: int
    store: Suppressions
    source: str  # of the suppressions this run makes: send:<slug>
    window: int = 1  # messages a connection may have unanswered (BDAT)
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: list[str] = field(default_factory=list)
    tally: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0, "deferred": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)
    todo_lock: threading.Lock = field(default_factory=threading.Lock)
    live: int = 0
    finished: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False
    bounced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def done(self, status: str) -> None:
        with self.lock:
            self.tally[status] += 1
            n = sum(self.tally.values())
        if self.progress is not None:
            self.progress(n, self.total)

    def backoff(self, attempt: int) -> None:
        delay = min(self.options.retry_delay * 2 ** (attempt - 1), 300.0)
        self.stop.wait(delay * random.uniform(0.8, 1.2))  # jitter, not security

    def take(self) -> Try | None:
        with self.todo_lock:  # each connection takes the next recipient itself: no feeder thread
            sub = next(self.todo, None)
        return None if sub is None else Try(sub, self.maker.message(sub.email, sub.name, sub.fields))

    def worker(self) -> None:
        lane = Lane(self)
        try:
            lane.run()
        except DigestError as err:  # the journal cannot be written: stop everyone, say why
            self.fail(str(err))
        except Exception as err:
            self.fail(f"{type(err).__name__}: {err}")
            lane.salvage()
        finally:
            if lane.session is not None:
                lane.session.close()
            with self.lock:
                self.live -= 1
                if self.live == 0:
                    self.finished.set()

    def bounce(self, sub: Subscriber, evidence: str) -> None:
        # Not a reason to stop the run: the journal already keeps the refusal for this digest.
        try:
            self.store.add(sub.key, reason="bounced", source=self.source, evidence=evidence)
        except SuppressionError as err:
            with self.lock:
                self.problems.append(f"{sub.email}: not put on the suppression list: {err}")
            return
        with self.lock:
            self.bounced.append(sub.email)

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
    presend.repeats(config, target, ready, options, subscribers, dry_run=False, say=say)
    listed = check_list(subscribers, uses=ready.maker.greeting_uses, skip_invalid=options.skip_invalid)
    parts, path = ready.parts, journal_path(ready.folder)
    began = time.monotonic()
    with (
        outdir.holding(ready.folder, content_hash=ready.content_hash, wait=presend.LOCK_WAIT),
        Journal(path) as journal,
        open_suppressions(config) as store,
    ):
        journal.bind(
            content_hash=ready.content_hash,
            subject=parts.subject,
            subscribers=subscribers.resolve(),
            allow_changed=options.allow_changed,
        )
        blocked = store.suppressed()  # once per run: then one set lookup per recipient
        hits: set[str] = set()

        def pending() -> Iterator[tuple[str, str]]:
            for s in iter_subscribers(subscribers, listed):
                if s.key in blocked:
                    hits.add(s.key)
                yield s.key, s.email

        journal.add_pending(pending())
        done = journal.done_keys()
        hits -= done  # sent (or refused) before it was suppressed: the result stands
        entries = store.entries_for(hits)
        journal.mark_suppressed(
            ((k, why(e)) for k, e in entries.items()), lifted=journal.keys("suppressed") - blocked
        )
        skip = done | hits
        todo = sum(s.key not in skip for s in iter_subscribers(subscribers, listed))
        if todo and confirm is not None:
            shown_as = presend.placeholders(config, ready.built)
            plan = Plan(todo, journal.counts(), parts.subject, ready.settings.address, shown_as)
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
            (s for s in iter_subscribers(subscribers, listed) if s.key not in skip),
            todo,
            store,
            f"send:{ready.folder.name}",
            config.send.window,
        )
        if todo:
            smtp.probe(ready.settings)  # fail fast: TLS and login checked before any thread starts
            if progress is not None:
                progress(0, todo)
            work.go(config.send.connections)
        report = _finish(journal, work, ready, listed, subscribers, todo, len(hits), began, config)
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
    suppressed: int,
    began: float,
    config: Config,
) -> SendReport:
    # Judged on the list as it is now: rows of people taken off it since an earlier run do not count.
    sent_keys, failed_keys = journal.keys("sent"), journal.keys("failed")
    finished = sent_keys | failed_keys | journal.keys("suppressed")
    refused = unfinished = 0
    for s in iter_subscribers(subscribers, listed):
        refused += s.key in failed_keys
        unfinished += s.key not in finished
    if not work.fatal and unfinished == 0:
        journal.sent_in_full(
            newest_end=ready.built.newest_end(config.tz),
            content_hash=ready.content_hash,
            items=ready.built.item_slugs(),
            sent_now=work.tally["sent"] > 0,
        )
    return SendReport(
        journal.path,
        listed,
        listed.count - todo - suppressed,
        work.tally["sent"],
        work.tally["failed"],
        work.tally["deferred"],
        time.monotonic() - began,
        journal.counts(),
        journal.failures(),
        refused,
        unfinished,
        suppressed,
        work.bounced,
        work.problems,
    )
