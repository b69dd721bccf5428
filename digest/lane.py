"""One connection's share of a send: hand messages over (digest/smtp/ Session), turn each reply into the
journal's row the moment it comes, and try again what the server deferred. The journal's rules live here:
a message counts as sent only on the reply to its data; nothing is handed over unless the journal was just
written; a 5xx is recorded as failed (and a bad address put on the suppression list); a 4xx or a lost
connection is tried again, then recorded as deferred. digest/send.py runs the lanes (threads, stop, report).
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from digest import smtp
from digest.message import Outgoing
from digest.subscribers import Subscriber

if TYPE_CHECKING:
    import threading

    from digest.journal import Journal
    from digest.presend import SendOptions

SALVAGE_WAIT = 30.0  # seconds a connection waits for the replies it is owed after an unexpected error


@dataclass
class Try:
    """One subscriber's message, and how many attempts at it failed."""

    sub: Subscriber
    message: Outgoing
    attempt: int = 0  # attempts that failed so far


class Run(Protocol):
    """What a lane needs of the send it is part of (digest/send.py's run): its settings and journal, the
    next subscriber, and where results, bounces and fatal errors go."""

    settings: smtp.SmtpSettings
    sender: str
    journal: Journal
    options: SendOptions
    limit: smtp.RateLimit
    window: int
    stop: threading.Event

    def take(self) -> Try | None: ...
    def done(self, status: str) -> None: ...
    def fail(self, why: str) -> None: ...
    def bounce(self, sub: Subscriber, evidence: str) -> None: ...
    def backoff(self, attempt: int) -> None: ...


class Lane:
    """One connection's share of a run: its session, the messages handed over and not yet answered, and
    the ones to try again. Every message handed over gets its result recorded, in the order the server
    answers; at most `send.window` of them are unanswered at a time (smtp.Session)."""

    def __init__(self, work: Run) -> None:
        self.work = work
        self.session: smtp.Session | None = None
        self.flight: dict[int, Try] = {}  # id(message) -> its try: handed over, no result yet
        self.again: deque[Try] = deque()
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
        if session is None:
            return
        with contextlib.suppress(Exception):  # the first error is the one reported
            self.settle(session.drain(hand_over=False, wait=SALVAGE_WAIT))

    def hand_over(self, item: Try) -> None:
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

    def result(self, item: Try, outcome: smtp.Outcome) -> None:
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

    def retry(self, item: Try, last: str, code: int | None) -> None:
        item.attempt += 1
        if item.attempt <= self.work.options.retries:
            self.again.append(item)
        elif code is None:
            # The relay is unreachable, not this recipient's fault: stop, and leave the rest pending.
            self.work.fail(f"giving up after {item.attempt} attempts: {last}")
        else:
            # The code has its own column: the reply is said as a failed one's is, "stage: text".
            reply = last.replace(f": {code} ", ": ", 1)
            self.work.journal.record(item.sub.key, "deferred", code=code, reply=reply)
            self.fresh = True
            self.work.done("deferred")


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
