"""`--since-last-send` across consecutive sends: no item lost between two sends, none sent twice.

Every send here is a real one, to aiosmtpd on loopback; the clock is the global --now option. The sample
workspace is in Zurich (UTC+2 in April): 12:00 UTC is 14:00 there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from click.testing import Result
from conftest import write_item
from smtpserver import MONTH, Handler, Server, subscribers

from digest.journal import Journal, journal_path, last_sent_in_full

Run = Callable[..., Result]
ANN = [("ann@example.org", "Ann")]


def _item(ws: Path, name: str, when: str, *, title: str | None = None, extra: str = "") -> None:
    write_item(
        ws / "items",
        f"{name}.md",
        f"""
        ---
        title: {title or name.capitalize()}
        date: {when}
        category: News
        summary: Something.
        {extra}
        ---
        """,
    )


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
        _item(workspace, "morning", "2021-04-15")
        # 14:00 in Zurich: the morning item goes out.
        first = _send(workspace, run, "2021-04-15T12:00:00+00:00", "--since-last-send")
        assert "1 sent" in first.stderr
        assert _titles(workspace, first.stderr) == ["Morning"]
        # Written at 16:00 the same day, dated that day: it was in no digest.
        _item(workspace, "afternoon", "2021-04-15")
        # The next morning: the afternoon item, and not the morning one again.
        result = run("--now", "2021-04-16T06:00:00+00:00", "build", "--since-last-send")
        assert result.exit_code == 0, result.stderr
        assert "1 item in 1 category -> out/2021-04-15_2021-04-16/" in result.stderr
        assert _titles(workspace, result.stderr) == ["Afternoon"]
