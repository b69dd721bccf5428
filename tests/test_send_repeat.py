"""A digest whose items already went out in a digest sent in full from another folder (digest/repeat.py):
`--last 30d` sent again the next day (a new folder name, a new journal), overlapping `--since` windows.

Every send is a real one, to aiosmtpd on loopback; the clock is the global --now option. The sample items are
dated 23 to 31 March 2021; the workspace is in Zurich.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import news_item
from smtpserver import Handler, Server, subscribers

from digest.config import load_config
from digest.errors import SendError
from digest.send import SendOptions, dry_run
from digest.send import run as send_run
from digest.window import resolve

Run = Callable[..., Result]
PEOPLE = [("ann@example.org", "Ann"), ("bob@example.org", "Bob")]
DAY1, DAY2 = "2021-04-10T10:00:00+00:00", "2021-04-11T10:00:00+00:00"
FIRST = "out/2021-03-11_2021-04-10/"  # the --last 30d folder of DAY1
SENT_AT = r"\(sent in full \d{4}-\d{2}-\d{2} \d{2}:\d{2} CES?T to subscribers\.csv\)"
INSTEAD = "`digest send --since-last-send` sends only what is new"


def _csv(ws: Path) -> str:
    return str(subscribers(ws, PEOPLE))


def _send(ws: Path, run: Run, now: str, *args: str, input: str | None = None) -> Result:
    return run("--now", now, "send", *args, "--subscribers", _csv(ws), input=input)


def _first_send(ws: Path, run: Run, server: Server) -> None:
    first = _send(ws, run, DAY1, "--last", "30d", "--yes")
    assert first.exit_code == 0, first.stderr
    assert "already went out" not in first.stderr  # nothing went out before it
    assert len(server.handler.received) == 2


def test_the_next_days_repeat_of_a_rolling_window_is_refused_even_with_yes(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        again = _send(workspace, run, DAY2, "--last", "30d", "--yes")
        assert len(server.handler.received) == 2  # nobody got it a second time
    assert again.exit_code == 1
    assert re.search(
        r"Error: all 10 items of out/2021-03-12_2021-04-11/ already went out in "
        + re.escape(FIRST)
        + " "
        + SENT_AT
        + ": sending it would mail your list the same items again. "
        + re.escape(INSTEAD)
        + r"; to send these items again anyway, add --resend-items\n$",
        again.stderr,
    ), again.stderr
    assert not (workspace / "out" / "2021-03-12_2021-04-11" / "journal.sqlite").exists()


def test_resend_items_lets_the_repeat_go(workspace: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        again = _send(workspace, run, DAY2, "--last", "30d", "--yes", "--resend-items")
        assert again.exit_code == 0, again.stderr
        assert len(server.handler.received) == 4
    assert "Warning: all 10 items of out/2021-03-12_2021-04-11/ already went out in" in again.stderr
    assert "sent again, as --resend-items asks" in again.stderr


def test_the_same_folder_sent_again_is_left_to_its_journal(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        same = _send(workspace, run, DAY1, "--last", "30d", "--yes")
        assert len(server.handler.received) == 2
    assert same.exit_code == 0, same.stderr
    assert "already went out" not in same.stderr
    assert "0 sent" in same.stderr and "2 done before" in same.stderr


def test_a_dry_run_of_the_repeat_says_a_real_send_is_refused(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        dry = _send(workspace, run, DAY2, "--last", "30d", "--dry-run")
        assert len(server.handler.received) == 2
    assert dry.exit_code == 0, dry.stderr
    assert re.search(
        r"Warning: all 10 items of out/2021-03-12_2021-04-11/ already went out in "
        + re.escape(FIRST)
        + " "
        + SENT_AT
        + ": a real send is refused without --resend-items; "
        + re.escape(INSTEAD)
        + "\n",
        dry.stderr,
    ), dry.stderr
    assert "dry run: would send 2 messages" in dry.stderr


def test_a_partial_overlap_warns_in_the_prompt_the_dry_run_and_with_yes(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    partial = re.escape("Warning: 10 of the 11 items of out/2021-03-12_2021-04-11/ already went out in ")
    partial += (
        re.escape(FIRST)
        + " "
        + SENT_AT
        + ": whoever got them there would get them again; "
        + re.escape(INSTEAD)
    )
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        news_item(workspace, "news", "2021-04-11")
        dry = _send(workspace, run, DAY2, "--last", "30d", "--dry-run")
        declined = _send(workspace, run, DAY2, "--last", "30d", input="n\n")
        assert len(server.handler.received) == 2
        yes = _send(workspace, run, DAY2, "--last", "30d", "--yes")
        assert len(server.handler.received) == 4  # a warning only: it went
    assert dry.exit_code == 0, dry.stderr
    assert re.search(partial, dry.stderr), dry.stderr
    assert declined.exit_code == 1
    # In the prompt: before the question.
    assert re.search(
        partial + r"\n(.*\n)*Send 'Co-operative News Digest: .*' to 2 recipients", declined.stderr
    )
    assert yes.exit_code == 0, yes.stderr
    assert re.search(partial, yes.stderr), yes.stderr


def test_an_overlapping_since_until_window_is_refused_too(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        month = _send(workspace, run, DAY1, "--month", "2021-03", "--yes")
        assert month.exit_code == 0, month.stderr
        again = _send(workspace, run, DAY1, "--since", "2021-03-25", "--until", "2021-04-02", "--yes")
        assert len(server.handler.received) == 2
    assert again.exit_code == 1
    assert re.search(
        r"Error: all 7 items of out/2021-03-25_2021-04-02/ already went out in out/2021-03/ " + SENT_AT,
        again.stderr,
    ), again.stderr


def test_since_last_send_is_not_warned(workspace: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        news_item(workspace, "news", "2021-04-11")
        dry = _send(workspace, run, DAY2, "--since-last-send", "--dry-run")
        sent = _send(workspace, run, DAY2, "--since-last-send", "--yes")
        assert len(server.handler.received) == 4
    assert dry.exit_code == 0, dry.stderr
    assert sent.exit_code == 0, sent.stderr
    assert "already went out" not in dry.stderr + sent.stderr
    assert "2 sent, " in sent.stderr


def test_messages_name_the_newest_digests_first_and_count_the_rest(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        for day in range(10, 15):  # five days in a row, each one on purpose
            result = _send(
                workspace, run, f"2021-04-{day}T10:00:00+00:00", "--last", "30d", "--yes", "--resend-items"
            )
            assert result.exit_code == 0, result.stderr
        out = workspace / "out"
        # Sent one after the other within a minute: the journals say when, so make the order plain.
        for n, folder in enumerate(sorted(p.parent for p in out.glob("*/journal.sqlite"))):
            with sqlite3.connect(folder / "journal.sqlite") as db:
                db.execute(
                    "update meta set value = ? where key = 'completed_at'",
                    (f"2021-04-{10 + n}T08:00:00+00:00",),
                )
        dry = _send(workspace, run, "2021-04-15T10:00:00+00:00", "--last", "30d", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert (
        "Warning: all 10 items of out/2021-03-16_2021-04-15/ already went out in "
        "out/2021-03-15_2021-04-14/ (sent in full 2021-04-14 10:00 CEST to subscribers.csv), "
        "out/2021-03-14_2021-04-13/ (sent in full 2021-04-13 10:00 CEST to subscribers.csv), "
        "out/2021-03-13_2021-04-12/ (sent in full 2021-04-12 10:00 CEST to subscribers.csv) and 2 more digests: "
    ) in dry.stderr


def test_the_library_call_refuses_and_takes_the_option(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    from datetime import datetime

    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        config = load_config(cwd=workspace)
        now = datetime.fromisoformat(DAY2)
        window = resolve(tz=config.tz, locale=config.language, now=now, last_="30d")
        csv = Path(_csv(workspace))
        with pytest.raises(SendError, match=r"^all 10 items of .* add --resend-items$"):
            send_run(config, window, csv, now=now)
        said: list[str] = []
        dry_run(config, window, csv, now=now, say=said.append)
        assert any("a real send is refused without --resend-items" in s for s in said)
        assert len(server.handler.received) == 2
        report = send_run(config, window, csv, SendOptions(resend_items=True), now=now)
        assert report.sent == 2


@pytest.mark.parametrize("same_version", [True, False])
def test_an_older_journal_is_read_with_its_folder_and_an_unknown_digest_is_not_compared(
    workspace: Path, run: Run, smtp_env: Callable[..., None], same_version: bool
) -> None:
    """A journal written before the items were recorded (no `sent_items`): its folder says what went out
    while it holds the version sent; once rebuilt with other items, what went out is not known, and nothing
    is said about it rather than a guess."""
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        with sqlite3.connect(workspace / FIRST / "journal.sqlite") as db:
            db.execute("delete from meta where key = 'sent_items'")
            if not same_version:
                db.execute("update meta set value = 'another' where key = 'sent_content_hash'")
        again = _send(workspace, run, DAY2, "--last", "30d", "--yes")
        assert len(server.handler.received) == (2 if same_version else 4)
    assert again.exit_code == (1 if same_version else 0), again.stderr
    assert ("already went out in" in again.stderr) == same_version


def test_only_the_digests_that_held_some_of_its_items_are_named(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        news_item(workspace, "later", "2021-04-12")
        other = _send(workspace, run, "2021-04-12T10:00:00+00:00", "--since", "2021-04-12", "--yes")
        assert other.exit_code == 0, other.stderr
        dry = _send(workspace, run, DAY2, "--since", "2021-03-20", "--until", "2021-04-05", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert re.search(
        r"Warning: all 10 items of out/2021-03-20_2021-04-05/ already went out in "
        + re.escape(FIRST)
        + " "
        + SENT_AT
        + ": a real send",
        dry.stderr,
    ), dry.stderr


def test_the_message_says_one_item_and_many_digests_plainly(tmp_path: Path) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from digest.repeat import Repeat
    from digest.sent import SentDigest

    at = datetime(2021, 4, 10, 8, 0, tzinfo=UTC)
    one = SentDigest(tmp_path / "a", at, at, frozenset({"x"}))
    found = Repeat(tmp_path / "b", 1, 1, (one,), to_this_list=True)
    assert found.everything
    assert found.what(ZoneInfo("UTC")).startswith(f"the only item of {tmp_path}/b/ already went out in ")
    assert found.where(ZoneInfo("UTC")) == f"{tmp_path}/a/ (sent in full 2021-04-10 08:00 UTC)"
    three = Repeat(tmp_path / "b", 1, 1, (one,) * 3, to_this_list=True).where(ZoneInfo("UTC"))
    assert three.count("(sent in full") == 3 and "more" not in three
    some = Repeat(tmp_path / "b", 2, 5, (one,) * 4, to_this_list=False)
    assert not some.everything
    assert some.what(ZoneInfo("UTC")).startswith(f"2 of the 5 items of {tmp_path}/b/ already went out")
    assert some.where(ZoneInfo("UTC")).endswith(" (sent in full 2021-04-10 08:00 UTC) and 1 more digest")


def test_a_since_last_send_window_does_not_read_the_journals_again(
    workspace: Path, run: Run, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its window already leaves out every item a digest sent in full held: the check would find nothing."""
    from datetime import datetime

    import digest.repeat
    from digest.sent import last_sent_in_full
    from digest.window import after

    calls: list[Path] = []
    real = digest.repeat.sent_in_full
    monkeypatch.setattr(digest.repeat, "sent_in_full", lambda out: calls.append(out) or real(out))
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        assert len(calls) == 1  # the --last send was checked
        news_item(workspace, "news", "2021-04-11")
        config = load_config(cwd=workspace)
        now = datetime.fromisoformat(DAY2)
        found = last_sent_in_full(config.paths.out, config.tz)
        assert found is not None
        window = after(found[1], config.tz, config.language, now=now)
        plan = dry_run(config, window, Path(_csv(workspace)), now=now)
    assert plan.would_send == 2
    assert len(calls) == 1


def test_every_item_sent_to_another_list_is_a_warning_naming_it(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    """The staff got yesterday's --last 30d; the members' list did not: their send goes, with a warning."""
    members = subscribers(workspace, [("zoe@example.net", "Zoe")], name="members.csv")
    with Server(Handler()) as server:
        smtp_env(server.port)
        _first_send(workspace, run, server)
        other = run("--now", DAY2, "send", "--last", "30d", "--subscribers", str(members), "--yes")
        assert other.exit_code == 0, other.stderr
        assert [rcpt for (rcpt, *_), _ in server.handler.received][-1] == "zoe@example.net"
    assert re.search(
        r"Warning: all 10 items of out/2021-03-12_2021-04-11/ already went out in "
        + re.escape(FIRST)
        + " "
        + SENT_AT
        + ": whoever got them there would get them again",
        other.stderr,
    ), other.stderr
