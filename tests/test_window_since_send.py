"""`--since-last-send` across consecutive sends: no item lost between two sends, none sent twice.

Every send here is a real one, to aiosmtpd on loopback; the clock is the global --now option. The sample
workspace is in Zurich (UTC+2 in April): 12:00 UTC is 14:00 there.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from conftest import news_item
from smtpserver import MONTH, Handler, Server, subscribers

Run = Callable[..., Result]
ANN = [("ann@example.org", "Ann")]


def _send(ws: Path, run: Run, now: str, *window: str) -> Result:
    """A real send of the window to Ann at `now`."""
    result = run("--now", now, "send", *window, "--subscribers", str(subscribers(ws, ANN)), "--yes")
    assert result.exit_code == 0, result.stderr
    return result


def _titles(ws: Path, said: str) -> list[str]:
    """The titles in the digest a command said it built or sent ("out/<slug>/ ...")."""
    folder = re.search(r"(out/[^/]+)/", said)
    assert folder, said
    manifest = json.loads((ws / folder[1] / "manifest.json").read_text(encoding="utf-8"))
    return sorted(i["title"] for i in manifest["items"])


def test_an_item_dated_today_added_after_a_send_today_goes_in_the_next(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-15T12:00:00+00:00", *MONTH)
        news_item(workspace, "morning", "2021-04-15")
        # 14:00 in Zurich: the morning item goes out.
        first = _send(workspace, run, "2021-04-15T12:00:00+00:00", "--since-last-send")
        assert "1 sent" in first.stderr
        assert _titles(workspace, first.stderr) == ["Morning"]
        # Written at 16:00 the same day, dated that day: it was in no digest.
        news_item(workspace, "afternoon", "2021-04-15")
        # The next morning: the afternoon item, and not the morning one again.
        result = run("--now", "2021-04-16T06:00:00+00:00", "build", "--since-last-send")
        assert result.exit_code == 0, result.stderr
        assert "1 item in 1 category -> out/2021-04-15_2021-04-16/" in result.stderr
        assert _titles(workspace, result.stderr) == ["Afternoon"]


def _subjects(server: Server) -> list[str]:
    """The Subject of every message Ann got, in order."""
    return [
        str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])
        for _, raw in server.handler.received
    ]


def test_three_sends_on_one_day_then_the_next_day_nothing_twice(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-15T06:00:00+00:00", *MONTH)
        news_item(workspace, "morning", "2021-04-15")
        first = _send(workspace, run, "2021-04-15T08:00:00+00:00", "--since-last-send")
        assert _titles(workspace, first.stderr) == ["Morning"]
        news_item(workspace, "noon", "2021-04-15")
        second = _send(workspace, run, "2021-04-15T12:00:00+00:00", "--since-last-send")
        assert "out/2021-04-15_2021-04-15/" in second.stderr
        assert _titles(workspace, second.stderr) == ["Noon"]
        news_item(workspace, "evening", "2021-04-15T18:00:00+02:00")
        # A third window of that day: not the second's folder (sent in full), its own.
        third = _send(workspace, run, "2021-04-15T17:00:00+00:00", "--since-last-send")
        assert "out/2021-04-15_2021-04-15-2/" in third.stderr
        assert _titles(workspace, third.stderr) == ["Evening"]
        assert "1 sent" in third.stderr
        again = run("--now", "2021-04-16T06:00:00+00:00", "build", "--since-last-send")
        assert again.exit_code == 3, again.stderr
        assert again.stderr == "Nothing to do: no items between 2021-04-15 and 2021-04-16: nothing built\n"
        assert _subjects(server) == [
            "Co-operative News Digest: March 2021",
            "Co-operative News Digest: Mar 31 – Apr 15, 2021",
            "Co-operative News Digest: April 15, 2021",
            "Co-operative News Digest: April 15, 2021",
        ]


def test_an_item_edited_after_its_send_is_not_new_a_renamed_one_is(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-15T06:00:00+00:00", *MONTH)
        news_item(workspace, "story", "2021-04-15")
        sent = _send(workspace, run, "2021-04-15T12:00:00+00:00", "--since-last-send")
        assert _titles(workspace, sent.stderr) == ["Story"]
    # Corrected the next day, and dated that day: the same slug, so the same item, already sent.
    news_item(workspace, "story", "2021-04-16", title="Story (corrected)")
    same = run("--now", "2021-04-16T12:00:00+00:00", "build", "--since-last-send")
    assert same.exit_code == 3, same.stderr
    explained = run("--now", "2021-04-16T12:00:00+00:00", "list", "--since-last-send", "--explain", "--json")
    (story,) = [v for v in json.loads(explained.stdout)["items"] if v["slug"] == "story"]
    assert (story["status"], story["reason"]) == ("out", "sent")
    # Under a new file name it is another item.
    (workspace / "items" / "story.md").rename(workspace / "items" / "story-2.md")
    renamed = run("--now", "2021-04-16T12:00:00+00:00", "build", "--since-last-send")
    assert renamed.exit_code == 0, renamed.stderr
    assert _titles(workspace, renamed.stderr) == ["Story (corrected)"]


def test_a_sent_folder_rebuilt_with_the_same_items_still_says_what_went(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-15T06:00:00+00:00", *MONTH)
    # Rebuilt later with the same items: the same version, so its items are known.
    assert run("--now", "2021-04-20T06:00:00+00:00", "build", *MONTH).exit_code == 0
    news_item(workspace, "late", "2021-03-31", title="Late")  # written after March went out
    result = run("--now", "2021-04-20T06:00:00+00:00", "build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    assert "1 item in 1 category -> out/2021-03-31_2021-04-20/" in result.stderr
    assert _titles(workspace, result.stderr) == ["Late"]


def test_an_embargo_lifted_on_the_windows_days_is_taken_once(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-15T06:00:00+00:00", *MONTH)
        news_item(workspace, "news", "2021-04-15")
        news_item(workspace, "held", "2021-04-15", extra="publish_after: 2021-04-15T18:00:00+02:00")
        first = _send(workspace, run, "2021-04-15T12:00:00+00:00", "--since-last-send")
        assert _titles(workspace, first.stderr) == ["News"]
        second = _send(workspace, run, "2021-04-16T06:00:00+00:00", "--since-last-send")
        assert _titles(workspace, second.stderr) == ["Held"]
    assert run("--now", "2021-04-17T06:00:00+00:00", "build", "--since-last-send").exit_code == 3


def test_an_embargo_lifted_after_its_month_went_out_goes_in_the_next_digest(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    news_item(workspace, "held", "2021-03-20", extra="publish_after: 2021-04-18")
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-15T06:00:00+00:00", *MONTH)
    result = run("--now", "2021-04-20T06:00:00+00:00", "build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    assert _titles(workspace, result.stderr) == ["Held"]


def test_the_items_sent_in_every_language_are_left_out(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write('\n[languages.fr]\ntitle = "Actualités coopératives"\n')
    news_item(workspace, "fr-sent", "2021-03-31", title="Envoyée", extra="lang: fr")
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-15T06:00:00+00:00", *MONTH)
    news_item(workspace, "fr-late", "2021-03-31", title="Tardive", extra="lang: fr")
    result = run("list", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    assert [line.split("  ")[2] for line in result.stdout.splitlines()] == ["Tardive"]


def test_the_items_the_web_version_held_were_sent_too(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    toml = workspace / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("limit = 0", "limit = 1"), encoding="utf-8")
    news_item(workspace, "eve-a", "2021-03-31T20:00:00+02:00", title="Eve A")
    news_item(
        workspace, "eve-b", "2021-03-31T19:00:00+02:00", title="Eve B"
    )  # over the limit: web version only
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-15T06:00:00+00:00", *MONTH)
    assert "Eve B" not in _titles(workspace, "out/2021-03/")
    result = run("list", "--since-last-send")
    assert (result.exit_code, result.stdout) == (0, ""), result.stderr


def test_build_check_then_send_since_the_last_send_is_not_refused_as_stale(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    """The team's order: build, look, send. The items of the window's first day that went out already
    are left out by the build and by the send's check that the build is current alike."""
    with Server(Handler()) as server:
        smtp_env(server.port)
        _send(workspace, run, "2021-04-01T08:00:00+00:00", *MONTH)
        news_item(workspace, "late31", "2021-03-31", title="Late March")
        news_item(workspace, "april1", "2021-04-01", title="April one")
        built = run("--now", "2021-04-02T08:00:00+00:00", "build", "--since-last-send")
        assert built.exit_code == 0, built.stderr
        assert _titles(workspace, built.stderr) == ["April one", "Late March"]
        assert run("--now", "2021-04-02T08:01:00+00:00", "check", "--since-last-send").exit_code == 0
        sent = _send(workspace, run, "2021-04-02T08:05:00+00:00", "--since-last-send")
        assert "1 sent" in sent.stderr
        assert len(server.handler.received) == 2  # March's, and this one


def test_an_embargoed_item_is_not_sent_again_after_its_digest_is_rebuilt(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    """What a send took is in its journal: a rebuild of the sent folder (a typo fixed) changes nothing."""
    news_item(
        workspace, "emb", "2021-03-20", title="Embargoed", extra="publish_after: 2021-03-31T20:00:00+00:00"
    )
    with Server(Handler()) as server:
        smtp_env(server.port)
        first = _send(workspace, run, "2021-04-01T08:00:00+00:00", *MONTH)
        assert "Embargoed" in _titles(workspace, first.stderr)
    sample = next((workspace / "items").glob("2021-03-31-*.md"))
    sample.write_text(sample.read_text(encoding="utf-8").replace("title: ", "title: (fixed) ", 1))
    assert run("--now", "2021-04-10T08:00:00+00:00", "build", *MONTH).exit_code == 0  # a new version
    news_item(workspace, "april5", "2021-04-05", title="April 5")
    result = run("--now", "2021-04-15T08:00:00+00:00", "build", "--since-last-send")
    assert result.exit_code == 0, result.stderr
    assert _titles(workspace, result.stderr) == ["April 5"]
