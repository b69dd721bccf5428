"""Pipelining across messages (RFC 2920): one round trip per message, and faults in the middle of a
pipelined batch assigned to the right recipients, against a real aiosmtpd server that injects them."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import Result
from smtpserver import (
    MONTH,
    OK,
    Handler,
    Msg,
    Server,
    deliver_all,
    journal_rows,
    open_session,
    shown,
    subscribers,
)

Run = Callable[..., Result]


def _proxy_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "latency_proxy.py"
    spec = importlib.util.spec_from_file_location("latency_proxy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["latency_proxy"] = module
    spec.loader.exec_module(module)
    return module


latency_proxy = _proxy_module()


MODES = [
    pytest.param({}, 1, id="classic"),
    pytest.param({"pipelining": True}, 1, id="data"),
    pytest.param({"pipelining": True, "chunking": True}, 1, id="bdat-window-1"),
    pytest.param({"pipelining": True, "chunking": True}, 3, id="bdat-window-3"),
]


@pytest.mark.parametrize("pipelining", [False, True], ids=["classic", "pipelining"])
def test_each_pipelined_message_costs_one_round_trip(pipelining: bool) -> None:
    handler = Handler(pipelining=pipelining)
    messages = [Msg(f"r{n}@example.org") for n in range(10)]
    with Server(handler) as server, latency_proxy.Running(("127.0.0.1", server.port), 0.0) as proxy:
        replies = deliver_all(proxy.port, messages)
        turns = proxy.proxy.turns
    assert replies == [(m.recipient, OK) for m in messages]
    assert handler.counts() == {m.recipient: 1 for m in messages}
    # EHLO, the first envelope, then one turn per message's data (with the next envelope), QUIT.
    if pipelining:
        assert turns <= len(messages) + 3
    else:
        assert turns > 3 * len(messages)


@pytest.mark.parametrize(("offers", "window"), MODES)
def test_faults_in_a_pipelined_batch_go_to_their_own_message(offers: dict[str, bool], window: int) -> None:
    handler = Handler(
        **offers,
        rcpt_faults={"b@example.org": ["451 4.2.0 later"]},
        refuse={"c@example.org": "550 5.1.1 no such user"},
        data_end_refuse={"d@example.org": "554 5.6.0 bad content"},
        data_command_refuse={"e@example.org": "554 5.7.1 not for e"},
    )
    messages = [Msg(f"{x}@example.org") for x in "abcdefg"]
    with Server(handler) as server:
        replies = deliver_all(server.port, messages, window=window)
    data = "BDAT" if offers.get("chunking") else "end of DATA"
    assert replies == [
        ("a@example.org", OK),
        ("b@example.org", "RCPT TO: 451"),
        ("c@example.org", "RCPT TO: 550"),
        ("d@example.org", f"{data}: 554"),
        ("e@example.org", f"{'BDAT' if offers.get('chunking') else 'DATA'}: 554"),
        ("f@example.org", OK),
        ("g@example.org", OK),
    ]
    assert handler.counts() == {"a@example.org": 1, "f@example.org": 1, "g@example.org": 1}
    assert handler.bdats == (len(messages) if offers.get("chunking") else 0)


@pytest.mark.parametrize(("offers", "window"), MODES)
def test_a_drop_after_a_reply_counts_that_message_and_loses_the_next(
    offers: dict[str, bool], window: int
) -> None:
    handler = Handler(**offers, drop_after={"b@example.org"})
    messages = [Msg(f"{x}@example.org") for x in "abcd"]
    with Server(handler) as server:
        replies = deliver_all(server.port, messages, window=window)
    assert replies[:2] == [("a@example.org", OK), ("b@example.org", OK)]  # b's reply came before the drop
    # Whatever was pipelined behind b is lost, never silently dropped: c always, d too when it was written.
    assert [r for r, _ in replies[2:]] == ["c@example.org", "d@example.org"][: max(1, len(replies) - 2)]
    assert all(outcome.startswith("lost: ") for _, outcome in replies[2:])
    assert handler.counts() == {"a@example.org": 1, "b@example.org": 1}


@pytest.mark.parametrize(("offers", "window"), MODES)
def test_a_timeout_after_a_reply_loses_only_the_unanswered(offers: dict[str, bool], window: int) -> None:
    # b's envelope replies never come in time: a's reply stands, b is lost, and the session is done with
    # (its replies could no longer be matched to the commands).
    handler = Handler(**offers, rcpt_delay={"b@example.org": 3.0})
    a, b = Msg("a@example.org"), Msg("b@example.org")
    with Server(handler) as server:
        session = open_session(server.port, window=window, timeout=1)
        try:
            done = session.submit(a) + session.submit(b) + session.drain()
            assert session.broken
            with pytest.raises(RuntimeError):
                session.submit(Msg("c@example.org"))
        finally:
            session.close()
    assert [(m.recipient, shown(o)) for m, o in done] == [
        (a.recipient, OK),
        (b.recipient, "lost: SMTPServerDisconnected"),
    ]
    assert handler.counts() == {"a@example.org": 1}


@pytest.mark.parametrize(("offers", "window"), MODES)
def test_a_refused_message_can_be_submitted_again_on_the_same_session(
    offers: dict[str, bool], window: int
) -> None:
    handler = Handler(**offers, data_faults=["451 4.3.0 busy"], refuse={"b@example.org": "550 5.1.1 no"})
    a, b, c = (Msg(f"{x}@example.org") for x in "abc")
    with Server(handler) as server:
        replies = deliver_all(server.port, [a, b, a, c], window=window)
    data = "BDAT" if offers.get("chunking") else "end of DATA"
    assert replies == [
        ("a@example.org", f"{data}: 451"),
        ("b@example.org", "RCPT TO: 550"),
        ("a@example.org", OK),
        ("c@example.org", OK),
    ]
    assert handler.counts() == {"a@example.org": 1, "c@example.org": 1}
    assert handler.connections == 1


def test_a_354_without_a_recipient_ends_the_empty_message_and_keeps_the_rcpt_refusal() -> None:
    handler = Handler(
        pipelining=True, data_without_rcpt=True, refuse={"b@example.org": "550 5.1.1 no such user"}
    )
    messages = [Msg(f"{x}@example.org") for x in "abc"]
    with Server(handler) as server:
        replies = dict(deliver_all(server.port, messages))
    assert replies["b@example.org"] == "RCPT TO: 550"
    assert replies["c@example.org"].startswith("250 ")
    assert handler.counts() == {"a@example.org": 1, "c@example.org": 1}


def test_stopping_leaves_a_message_whose_data_was_not_written_unsent() -> None:
    # DATA: the next message's envelope is accepted (354) before its data goes; a stop must not send it.
    handler = Handler(pipelining=True)
    a, b = Msg("a@example.org"), Msg("b@example.org")
    with Server(handler) as server:
        session = open_session(server.port)
        try:
            assert session.submit(a) == []
            assert session.submit(b) == []  # a's data and b's envelope, in one write: replies read later
            done = session.drain(hand_over=False)
            assert [(m.recipient, shown(o)) for m, o in done] == [(a.recipient, OK)]
        finally:
            session.close()  # no QUIT: it would be taken as b's data
    assert handler.counts() == {"a@example.org": 1}
    assert handler.rcpts["b@example.org"] == 1


# ---- the whole send: the journal gets each fault on the right row ----


def test_a_send_assigns_mid_batch_faults_to_the_right_rows(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    people = [(f"{x}@example.org", x.upper()) for x in "abcdefgh"]
    handler = Handler(
        pipelining=True,
        rcpt_faults={"b@example.org": ["451 4.2.0 later"]},  # once: the retry gets through
        data_end_refuse={"d@example.org": "554 5.6.0 bad content"},
        drop_after={"f@example.org"},  # f's 250 arrives, then the connection dies
        data_faults=[""] * 0,
    )
    csv = subscribers(ws, people)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retry-delay", "0.01")
    assert result.exit_code == 1, result.stderr
    assert "1 refused, 0 deferred" in result.stderr
    rows = journal_rows(ws)
    assert {k: v[0] for k, v in rows.items()} == {
        **{e: "sent" for e, _ in people if e != "d@example.org"},
        "d@example.org": "failed",
    }
    assert rows["d@example.org"][1:3] == (554, "end of DATA: 5.6.0 bad content")
    assert handler.counts() == {e: 1 for e, _ in people if e != "d@example.org"}
    assert handler.rcpts["b@example.org"] == 2
    assert handler.connections == 3  # the probe, the first connection, the one after the drop


def test_a_send_retries_a_4xx_end_of_data_with_the_next_envelope_open(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    people = [(f"{x}@example.org", x.upper()) for x in "abcd"]
    handler = Handler(pipelining=True)
    original = handler.handle_DATA
    seen = {"n": 0}

    async def second_refused(server_: object, session: object, envelope: object) -> str:
        seen["n"] += 1
        if seen["n"] == 2:
            handler.data_faults.insert(0, "451 4.3.0 busy")
        return await original(server_, session, envelope)  # type: ignore[arg-type]

    handler.handle_DATA = second_refused  # type: ignore[method-assign,assignment]
    csv = subscribers(ws, people)
    with Server(handler) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--retry-delay", "0.01")
    assert result.exit_code == 0, result.stderr
    assert {k: v[0] for k, v in journal_rows(ws).items()} == {e: "sent" for e, _ in people}
    assert handler.counts() == {e: 1 for e, _ in people}
    assert seen["n"] == 5  # four messages and the refused one


def test_a_send_costs_one_round_trip_per_message(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    people = [(f"r{n}@example.org", f"R {n}") for n in range(20)]
    handler = Handler(pipelining=True)
    csv = subscribers(ws, people)
    with Server(handler) as server, latency_proxy.Running(("127.0.0.1", server.port), 0.0) as proxy:
        smtp_env(proxy.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        turns = proxy.proxy.turns
    assert result.exit_code == 0, result.stderr
    assert handler.counts() == {e: 1 for e, _ in people}
    # The probe (EHLO, QUIT), then EHLO, the first envelope, a turn per message and QUIT; without
    # pipelining across messages it would be two turns per message.
    assert turns <= len(people) + 8
