"""Built digest + subscriber list -> the SMTP relay: the run (workers, retries, journal), as library calls.

We feed a relay well; we are not a mail server. Each of `send.connections` threads keeps one SMTP connection
(digest/smtp/: one login) and reuses it for message after message. A 4xx reply or a dropped connection is
retried with exponential backoff (a 421 on a fresh connection); a 5xx for a recipient is recorded and
sending goes on (a 5xx to RCPT TO that says the address is bad also puts it on the suppression list, as
`bounced`, with the reply as evidence); a failed login, TLS handshake or certificate check stops everything
at once. Every result is in the journal (digest/journal.py) the moment it is known, and no message is
handed to the server unless the journal was just written: a result that cannot be kept would be sent again
by the next run. Addresses on the suppression list (digest/suppress.py, loaded once per run) get nothing: the
journal records them as suppressed, with why.

`run`, `send_test`, `dry_run` (digest/presend.py, re-exported here) and `status` are what `digest send`
calls; prompts and progress reach them as callbacks, so Python callers get the same behaviour without click.
"""

from __future__ import annotations

import contextlib
import random
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

from digest import outdir, presend, smtp
from digest.config import Config
from digest.errors import DigestError, SendError, SuppressionError
from digest.journal import Counts, Journal, journal_path
from digest.message import Outgoing
from digest.presend import DryRun, Makers, Prepared, Say, SendOptions, dry_run, prepare, send_test
from digest.subscribers import Subscriber, SubscriberList, check_list, iter_subscribers
from digest.suppress import Suppressions, open_suppressions, why
from digest.window import Window

SALVAGE_WAIT = 30.0  # seconds a connection waits for the replies it is owed after an unexpected error

__all__ = [
    "DryRun",
    "Plan",
    "Prepared",
    "SendOptions",
    "SendReport",
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

    def take(self) -> _Try | None:
        with self.todo_lock:  # each connection takes the next recipient itself: no feeder thread
            sub = next(self.todo, None)
        return None if sub is None else _Try(sub, self.maker.message(sub.email, sub.name, sub.fields))

    def worker(self) -> None:
        lane = _Lane(self)
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


@dataclass
class _Try:
    sub: Subscriber
    message: Outgoing
    attempt: int = 0  # attempts that failed so far


class _Lane:
    """One connection's share of a run: its session, the messages handed over and not yet answered, and
    the ones to try again. Every message handed over gets its result recorded, in the order the server
    answers; at most `send.window` of them are unanswered at a time (smtp.Session)."""

    def __init__(self, work: _Run) -> None:
        self.work = work
        self.session: smtp.Session | None = None
        self.flight: dict[int, _Try] = {}  # id(message) -> its try: handed over, no result yet
        self.again: deque[_Try] = deque()
        self.fresh = False  # a journal write succeeded since the last hand-over
        self.reconnect = False

    def run(self) -> None:
        work = self.work
        while not work.stop.is_set():
            item = self.again.popleft() if self.again else work.take()
            if item is None:
                if not self.flight:
                    return
                self.drain()
                continue
            if item.attempt:
                self.drain()  # nothing waits on the connection while we back off
                work.backoff(item.attempt)
                if work.stop.is_set():
                    break
            self.hand_over(item)
        # Stopped (Ctrl-C or a fatal error): the results of what was handed over are still recorded; a
        # message whose data was not written yet is not handed over now.
        if self.session is not None:
            self.settle(self.session.drain(hand_over=False))

    def salvage(self) -> None:
        """After an unexpected error: record the replies the server still owes (waiting at most
        SALVAGE_WAIT), so that a resume re-sends only what it did not take. If that fails too, what is
        unrecorded stays pending: at most the window, as after a kill."""
        session = self.session
        if session is None or session.broken:
            return
        with contextlib.suppress(Exception):  # the first error is the one reported
            self.settle(session.drain(hand_over=False, wait=SALVAGE_WAIT))

    def hand_over(self, item: _Try) -> None:
        work = self.work
        if self.session is not None:
            self.settle(self.session.ready())  # recorded before anything more goes
        if self.session is None:
            try:
                self.session = smtp.Session(smtp.connect(work.settings), work.sender, window=work.window)
            except smtp.Fatal as err:
                work.fail(str(err))
                return
            except OSError as err:
                self.retry(item, f"{work.settings.address}: {err or type(err).__name__}", None)
                return
        work.limit.wait(work.stop)
        if work.stop.is_set():
            return
        # Hand nothing over unless the journal can keep its result: a write since the last hand-over.
        if self.fresh:
            work.journal.check()
        else:
            work.journal.touch(item.sub.key)
        self.fresh = False
        self.flight[id(item.message)] = item
        self.settle(self.session.submit(item.message))

    def drain(self) -> None:
        if self.session is not None:
            self.settle(self.session.drain())

    def settle(self, results: list[smtp.Done]) -> None:
        for message, outcome in results:
            self.result(self.flight.pop(id(message)), outcome)
        if self.reconnect:  # set by every result a lost connection gives
            self.reconnect = False
            session, self.session = self.session, None
            if session is not None:
                # What it still owes, before it goes (after Ctrl-C, no message whose data was not written).
                for message, outcome in session.drain(hand_over=not self.work.stop.is_set()):
                    self.result(self.flight.pop(id(message)), outcome)
                session.close()
            self.again.extendleft(reversed(self.flight.values()))  # never handed over: not an attempt
            self.flight.clear()

    def result(self, item: _Try, outcome: smtp.Outcome) -> None:
        work, key = self.work, item.sub.key
        if isinstance(outcome, str):
            work.journal.record(key, "sent", code=250, reply=outcome, message_id=item.message.message_id)
            self.fresh = True
            work.done("sent")
            return
        if not isinstance(outcome, smtp.Reply):  # the connection was lost before its reply
            self.reconnect = True
            self.retry(item, f"{work.settings.address}: {outcome or type(outcome).__name__}", None)
            return
        last = f"{outcome.stage}: {outcome.code} {outcome.text}"
        if outcome.stage == "MAIL FROM" and outcome.code == 503:
            # "Bad sequence of commands": the state of this connection was refused, not the sender.
            # Start again on a fresh connection, retried like a 4xx.
            self.reconnect = True
        elif outcome.code >= 500:
            if outcome.stage == "MAIL FROM":
                work.fail(f"{work.settings.address} refused the sender {work.sender}: {outcome}")
                return
            work.journal.record(key, "failed", code=outcome.code, reply=f"{outcome.stage}: {outcome.text}")
            self.fresh = True
            if outcome.stage == "RCPT TO" and bad_address(outcome.code, outcome.text):
                work.bounce(item.sub, f"RCPT TO: {outcome.code} {outcome.text}")
            work.done("failed")
            return
        elif outcome.code == 421:  # the server is closing this connection
            self.reconnect = True
        self.retry(item, last, outcome.code)

    def retry(self, item: _Try, last: str, code: int | None) -> None:
        item.attempt += 1
        if item.attempt <= self.work.options.retries:
            self.again.append(item)
        elif code is None:
            # The relay is unreachable, not this recipient's fault: stop, and leave the rest pending.
            self.work.fail(f"giving up after {item.attempt} attempts: {last}")
        else:
            self.work.journal.record(item.sub.key, "deferred", code=code, reply=last)
            self.fresh = True
            self.work.done("deferred")


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


def bad_address(code: int, text: str) -> bool:
    """Whether a 5xx reply to RCPT TO says the address itself is bad (so it goes on the suppression list).

    With an enhanced status code (RFC 3463): 5.1.x (bad mailbox, bad domain) or 5.2.1 (mailbox disabled).
    5.7.x is policy (relay denied, our IP blocked): true of every recipient, so suppressing on it would
    empty the list. Without one: 550, 551 and 553, the mailbox replies of RFC 5321.
    """
    enhanced = re.match(r"5\.(\d{1,3})\.(\d{1,3})\b", text)
    if enhanced:
        return enhanced[1] == "1" or (enhanced[1], enhanced[2]) == ("2", "1")
    return code in (550, 551, 553)
