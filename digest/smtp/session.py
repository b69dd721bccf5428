"""One connection's messages, pipelined across messages (RFC 2920), with BDAT (RFC 3030) when the server
offers CHUNKING: `Session` returns each message's reply or refusal, or the error that lost it, in order.
"""

from __future__ import annotations

import smtplib
import time
from collections import deque

from digest.smtp.connect import Message, Reply, close, deliver, reply_text, rset

Outcome = str | Reply | smtplib.SMTPException | OSError  # the reply to the data, a refusal, a lost connection
Done = tuple[Message, Outcome]


class Session:
    """One connection's transactions, pipelined across messages when the server offers PIPELINING.

    `submit(message)` hands a message over and returns the results that came in meanwhile, each message's
    exactly once, in order; `drain()` waits for the rest. A message counts as sent only on the reply to its
    data. Three ways, by what the server's EHLO offers:

    - CHUNKING and PIPELINING (RFC 3030, 2920): MAIL, RCPT and `BDAT <size> LAST` with the message, in one
      write, with no wait: at most `window` messages are written whose replies have not been read.
    - PIPELINING: the end of one message's data and the next one's MAIL, RCPT and DATA go in one write; its
      data waits for the 354, so one message is unanswered: one round trip per message.
    - neither: one command at a time (`deliver`).

    A connection that fails gives every message still unanswered that error (`broken` is then set): the
    ones answered before it keep their replies.
    """

    def __init__(self, conn: smtplib.SMTP, sender: str, *, window: int = 1) -> None:
        self.conn, self.sender, self.window = conn, sender, max(1, window)
        self.pipelining = conn.has_extn("pipelining")
        self.chunking = self.pipelining and conn.has_extn("chunking")
        self.broken = False
        self._flight: deque[Message] = deque()  # its data written, the reply to it not read yet
        self._asked: Message | None = None  # DATA: its MAIL, RCPT and DATA written, their replies not read
        self._open: Message | None = None  # DATA: its envelope accepted (354), its data not written yet

    def ready(self) -> list[Done]:
        """The results that must be in before the next message goes: with DATA the replies to the last
        write, with BDAT the oldest until fewer than `window` are unanswered. Recording them before the next
        `submit` keeps what a kill can re-send to the messages unanswered."""
        done: list[Done] = []  # nothing is pending without PIPELINING, nor once the connection is lost
        try:
            if self.chunking:
                while len(self._flight) >= self.window:
                    done.append(self._bdat_reply())
            else:
                self._read(done)
        except (smtplib.SMTPException, OSError) as err:
            done.extend(self._lost(err))
        return done

    def submit(self, message: Message) -> list[Done]:
        """Hand `message` over (with DATA: its envelope; its data goes with the next write) and return at
        once: its replies are read by a later `ready`, `submit` or `drain`, so the caller's work meanwhile
        (making the next message) overlaps the server's. Returns `ready()`'s results when it was not called
        (and, without PIPELINING, the message's own)."""
        if self.broken:
            raise RuntimeError("this session's connection failed: open a new one")
        if not self.pipelining:
            try:
                return [(message, deliver(self.conn, self.sender, message))]
            except Reply as refused:
                return [(message, refused)]
            except (smtplib.SMTPException, OSError) as err:
                self.broken = True
                return [(message, err)]
        done = self.ready()  # a connection lost there is closed: the write below fails, and `message` with it
        try:
            if self.chunking:
                data = message.data
                self._flight.append(message)
                # RSET first: after a refused RCPT or BDAT a server may keep the sender (Postfix does), and
                # the next MAIL would then be "503 nested" while its RCPT and BDAT still went through.
                self.conn.send(b"RSET\r\n" + self._envelope(message) + b"BDAT %d LAST\r\n" % len(data) + data)
                return done
            opened, self._open = self._open, None
            self._asked = message
            if opened is None:
                self.conn.send(self._envelope(message) + b"DATA\r\n")
            else:
                self._flight.append(opened)
                self.conn.send(opened.wire + self._envelope(message) + b"DATA\r\n")
        except (smtplib.SMTPException, OSError) as err:
            done.extend(self._lost(err, message))
        return done

    def drain(self, *, hand_over: bool = True, wait: float | None = None) -> list[Done]:
        """The results of every message handed over; with DATA, the data of the message whose envelope is
        accepted goes first (not with hand_over=False: it stays with the caller, unsent). With `wait`, no
        reply is waited for past that many seconds from now: the ones still owed then get a TimeoutError,
        as from a lost connection (the session is broken)."""
        done: list[Done] = []  # nothing is pending without PIPELINING, nor once the connection is lost
        deadline = None if wait is None else time.monotonic() + wait
        try:
            if not self.chunking:
                self._until(deadline)
                self._read(done)
            if self._open is not None and hand_over:
                opened, self._open = self._open, None
                self._flight.append(opened)
                self.conn.send(opened.wire)
            while self._flight:
                self._until(deadline)
                done.append(self._bdat_reply() if self.chunking else self._data_reply())
        except (smtplib.SMTPException, OSError) as err:
            done.extend(self._lost(err))
        return done

    def _until(self, deadline: float | None) -> None:
        # The socket's own timeout bounds each read; a deadline bounds them all (what is left of it).
        sock = self.conn.sock
        if deadline is not None and sock is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply in the time given")
            sock.settimeout(min(left, sock.gettimeout() or left))

    def _read(self, done: list[Done]) -> None:
        """DATA: the replies to the last write, in its order: the data's, then the envelope's."""
        if self._flight:
            done.append(self._data_reply())
        asked = self._asked
        if asked is not None:
            answer = self._replies()
            self._asked = None
            if answer is None:
                self._open = asked
            else:
                done.append((asked, answer))

    def _lost(self, err: smtplib.SMTPException | OSError, extra: Message | None = None) -> list[Done]:
        self.broken = True
        lost = [*self._flight, *(m for m in (self._asked, self._open) if m is not None)]
        if extra is not None and all(m is not extra for m in lost):
            lost.append(extra)
        self._flight.clear()
        self._asked = self._open = None
        return [(m, err) for m in lost]

    def _envelope(self, message: Message) -> bytes:
        return f"MAIL FROM:<{self.sender}>\r\nRCPT TO:<{message.recipient}>\r\n".encode()

    def _data_reply(self) -> Done:
        code, text = self.conn.getreply()
        message = self._flight.popleft()
        if code != 250:
            return message, Reply(code, reply_text(text), "end of DATA")
        return message, f"{code} {reply_text(text)}"

    def _bdat_reply(self) -> Done:
        # RSET, MAIL, RCPT, BDAT. A refused MAIL or RCPT makes the server refuse the BDAT too, after reading
        # (and discarding) its chunk; what state it is left in is the server's (RFC 1830 asked for a RSET),
        # hence the RSET before each message. A 250 to the BDAT means the server took the message: sent,
        # whatever came before it, so that it is never sent again.
        conn = self.conn
        (xcode, xtext), (mcode, mtext) = conn.getreply(), conn.getreply()
        (rcode, rtext), (bcode, btext) = conn.getreply(), conn.getreply()
        message = self._flight.popleft()
        if bcode == 250:
            return message, f"{bcode} {reply_text(btext)}"
        if xcode != 250:
            return message, Reply(xcode, reply_text(xtext), "RSET")
        if mcode != 250:
            return message, Reply(mcode, reply_text(mtext), "MAIL FROM")
        if rcode not in (250, 251):
            return message, Reply(rcode, reply_text(rtext), "RCPT TO")
        if bcode != 250:
            return message, Reply(bcode, reply_text(btext), "BDAT")
        return message, f"{bcode} {reply_text(btext)}"

    def _replies(self) -> Reply | None:
        """The replies to MAIL, RCPT and DATA: None when the server waits for the data, else the refusal
        (the transaction ended, so the connection is ready for the next one)."""
        conn = self.conn
        (mcode, mtext), (rcode, rtext), (dcode, dtext) = conn.getreply(), conn.getreply(), conn.getreply()
        if dcode == 354:
            if mcode == 250 and rcode in (250, 251):
                return None
            conn.send(b".\r\n")  # a server that said 354 with no recipient: end the empty message
            conn.getreply()
        else:
            rset(conn)
        if mcode != 250:
            return Reply(mcode, reply_text(mtext), "MAIL FROM")
        if rcode not in (250, 251):
            return Reply(rcode, reply_text(rtext), "RCPT TO")
        return Reply(dcode, reply_text(dtext), "DATA")

    def close(self) -> None:
        """QUIT, or just close when the server waits for a message's data (QUIT would be data)."""
        if self._open is not None or self._asked is not None or self._flight or self.broken:
            self.conn.close()
        else:
            close(self.conn)
