"""The suppression list on its own (digest/suppress.py) and `digest suppress`: normalisation shared with the
subscriber list, first entry kept, history, privacy, concurrent writers, CSV import and export
(digest/suppresscsv.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import Result

from digest.errors import SuppressionError
from digest.send import bad_address
from digest.subscribers import iter_subscribers
from digest.suppress import REASONS, Entry, Suppressions, normalise
from digest.suppresscsv import export_csv, import_csv, read_csv

Run = Callable[..., Result]
T0 = datetime(2021, 3, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["Bob@Example.ORG", "  ann@example.org ", "Zoe.Smith+news@EXAMPLE.net", "a@bücher.example"]
)
def test_an_address_is_normalised_as_the_subscriber_list_keys_it(tmp_path: Path, raw: str) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text(f"email\n{raw}\n", encoding="utf-8")
    (sub,) = iter_subscribers(csv)
    assert normalise(raw) == sub.key
    assert normalise(normalise(raw)) == normalise(raw)


def test_a_bad_address_is_refused_by_name() -> None:
    with pytest.raises(SuppressionError, match=r"^'no-at-sign' is not a valid email address: "):
        normalise("no-at-sign")


def test_the_first_entry_stays_and_every_decision_is_in_the_history(tmp_path: Path) -> None:
    with Suppressions(tmp_path / "s.sqlite") as store:
        assert store.add("Ann@Example.org", reason="unsubscribed", source="one-click", evidence="POST", at=T0)
        later = T0 + timedelta(days=2)
        assert not store.add(
            "ann@example.org", reason="bounced", source="bounce:<m1>", evidence="5.1.1", at=later
        )
        assert store.entries() == [Entry("ann@example.org", "unsubscribed", T0, "one-click", "POST")]
        assert store.is_suppressed("ANN@example.org")
        assert store.remove("ann@EXAMPLE.org", source="command", evidence="asked by phone", at=later)
        assert not store.is_suppressed("ann@example.org")
        assert store.suppressed() == set()
        assert not store.remove("ann@example.org", source="command")  # not on the list: nothing recorded
        assert store.add("ann@example.org", reason="manual", source="command", at=later)
        history = [(e.action, e.reason, e.source, e.evidence, e.at) for e in store.history("Ann@example.org")]
    assert history == [
        ("added", "unsubscribed", "one-click", "POST", T0),
        ("added", "bounced", "bounce:<m1>", "5.1.1", later),
        ("removed", "", "command", "asked by phone", later),
        ("added", "manual", "command", "", later),
    ]


def test_times_are_aware_and_kept_in_utc(tmp_path: Path) -> None:
    paris = timezone(timedelta(hours=1))
    with Suppressions(tmp_path / "s.sqlite") as store:
        store.add(
            "a@example.org", reason="manual", source="command", at=datetime(2021, 3, 1, 10, 30, tzinfo=paris)
        )
        (entry,) = store.entries()
        assert entry.at == T0 and entry.at.utcoffset() == timedelta(0)
        with pytest.raises(ValueError, match="timezone-aware"):
            store.add("b@example.org", reason="manual", source="command", at=datetime(2021, 3, 1))  # noqa: DTZ001
        store.add("c@example.org", reason="manual", source="command")  # now
        assert store.entries()[-1].at.tzinfo is not None


def test_entries_by_reason_and_unknown_reasons(tmp_path: Path) -> None:
    with Suppressions(tmp_path / "s.sqlite") as store:
        for n, reason in enumerate(REASONS):
            store.add(f"p{n}@example.org", reason=reason, source="command", at=T0 + timedelta(minutes=n))
        assert [e.address for e in store.entries()] == [
            "p0@example.org",
            "p1@example.org",
            "p2@example.org",
            "p3@example.org",
        ]
        assert [e.address for e in store.entries("bounced")] == ["p1@example.org"]
        assert set(store.entries_for(["p2@example.org", "nobody@example.org"])) == {"p2@example.org"}
        with pytest.raises(
            SuppressionError, match=r"^unknown reason 'spam': use one of unsubscribed, bounced"
        ):
            store.add("x@example.org", reason="spam", source="command")
        with pytest.raises(SuppressionError, match="unknown reason"):
            store.entries("spam")
        assert not store.is_suppressed("x@example.org")


def test_many_entries_at_once_and_a_fast_set(tmp_path: Path) -> None:
    rows = [(f"r{n}@example.org", "bounced", T0, "") for n in range(2000)]
    with Suppressions(tmp_path / "s.sqlite") as store:
        assert store.add_many(rows, source="import:x.csv") == 2000
        assert store.add_many(rows[:10], source="import:x.csv") == 0
        assert store.suppressed() == {a for a, *_ in rows}
        assert len(store.entries_for(a for a, *_ in rows)) == 2000  # more than one chunk of 500


def test_the_file_and_its_companions_are_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with Suppressions(tmp_path / "s.sqlite") as store:
            store.add("a@example.org", reason="manual", source="command")
            for path in tmp_path.iterdir():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        os.umask(old)


def test_a_file_that_is_not_a_suppression_list_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"not sqlite at all, just some text " * 100)
    with pytest.raises(SuppressionError, match=f"^{path}: not a usable suppression list"):
        Suppressions(path)
    with pytest.raises(SuppressionError, match="cannot open the suppression list"):
        Suppressions(tmp_path / "missing" / "s.sqlite")


def test_a_closed_list_says_so(tmp_path: Path) -> None:
    store = Suppressions(tmp_path / "s.sqlite")
    store.close()
    with pytest.raises(SuppressionError, match="closed"):
        store.suppressed()


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from digest.suppress import Suppressions
    path, who, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    import time
    while time.time() < start:
        pass
    with Suppressions(path) as store:
        for n in range(150):
            store.add(f"{who}{n}@example.org", reason="bounced", source=f"bounce:<{who}{n}>")
            store.add(f"shared{n}@example.org", reason="manual", source=who)
    """
)


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    import time

    path = tmp_path / "s.sqlite"  # not created yet: both also race to create it
    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), who, start], stderr=subprocess.PIPE)
        for who in ("a", "b")
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with Suppressions(path) as store:
        got = store.suppressed()
        assert got == {f"{w}{n}@example.org" for w in ("a", "b", "shared") for n in range(150)}
        for n in (0, 149):
            assert sorted(e.source for e in store.history(f"shared{n}@example.org")) == ["a", "b"]
        assert store.entries("bounced") and len(store.entries("manual")) == 150


def test_export_then_import_round_trips(tmp_path: Path) -> None:
    with Suppressions(tmp_path / "a.sqlite") as a:
        for n, reason in enumerate(REASONS):
            a.add(
                f"p{n}@example.org",
                reason=reason,
                source="command",
                evidence=f"why, {n}",
                at=T0 + timedelta(n),
            )
        out = tmp_path / "export.csv"
        assert export_csv(a, out) == 4
        want = a.entries()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text(encoding="utf-8").splitlines()[:2] == [
        "email,reason,date,source,evidence",
        'p0@example.org,unsubscribed,2021-03-01T09:30:00+00:00,command,"why, 0"',
    ]
    with Suppressions(tmp_path / "b.sqlite") as b:
        done = import_csv(b, out)
        assert (done.rows, done.added, done.problems) == (4, 4, ())
        got = b.entries()
    assert [(e.address, e.reason, e.at) for e in got] == [(e.address, e.reason, e.at) for e in want]
    assert {e.source for e in got} == {"import:export.csv"}
    assert got[0].evidence == "source=command; evidence=why, 0"


def test_an_esp_export_with_its_own_columns_and_dates(tmp_path: Path) -> None:
    csv = tmp_path / "esp.csv"
    csv.write_text(
        "\ufeffEmail,Reason,Date,Code\n"
        "A@Example.org,Bounced,2021-03-01 09:30:00,550\n"
        "b@example.org,,Mon, 01 Mar 2021 09:30:00 +0000,\n"
        "c@example.org,complained,1614591000,\n"
        "d@example.org,unsubscribed,,\n",
        encoding="utf-8",
    )
    rows, problems = read_csv(csv, reason="unsubscribed")
    assert problems == ["esp.csv:3: 5 fields, the header has 4".replace("esp.csv", str(csv))]
    csv.write_text(
        "email,reason,date,code\n"
        "A@Example.org,Bounced,2021-03-01 09:30:00,550\n"
        'b@example.org,,"Mon, 01 Mar 2021 09:30:00 +0000",\n'
        "c@example.org,complained,1614591000,\n"
        "d@example.org,unsubscribed,,\n",
        encoding="utf-8",
    )
    rows, problems = read_csv(csv, reason="unsubscribed")
    assert problems == []
    assert [(a, r, t) for a, r, t, _e in rows] == [
        ("a@example.org", "bounced", T0),
        ("b@example.org", "unsubscribed", T0),
        ("c@example.org", "complained", T0),
        ("d@example.org", "unsubscribed", None),
    ]
    assert rows[0][3] == "code=550" and rows[1][3] == ""


def test_bad_rows_are_each_named_and_nothing_is_imported(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "email,reason,date\nok@example.org,,\nnope,,\nx@example.org,spam,\ny@example.org,,yesterday\n\n",
        encoding="utf-8",
    )
    with Suppressions(tmp_path / "s.sqlite") as store:
        with pytest.raises(SuppressionError) as caught:
            import_csv(store, csv)
        assert str(caught.value).splitlines() == [
            f"3 bad rows in {csv}; nothing imported:",
            f"{csv}:3: 'nope' is not a valid email address: An email address must have an @-sign.",
            f"{csv}:4: unknown reason 'spam': use one of unsubscribed, bounced, complained, manual",
            f"{csv}:5: date 'yesterday' is not ISO 8601, RFC 2822 or Unix time",
            "Fix them, or pass --skip-invalid to import the good rows only.",
        ]
        assert store.suppressed() == set()
        done = import_csv(store, csv, skip_invalid=True)
        assert (done.rows, done.added, len(done.problems)) == (1, 1, 3)
        assert store.suppressed() == {"ok@example.org"}


def test_short_rows_blank_rows_and_utc_dates(tmp_path: Path) -> None:
    csv = tmp_path / "esp.csv"
    csv.write_text(
        "email,reason,date\n"
        "a@example.org,bounced,2021-03-01 09:30:00 UTC\n"
        ",,\n"  # a blank row (commas only) is skipped, not a bad row
        "b@example.org,bounced\n"
        "c@example.org,,2021-03-01T10:30:00+01:00\n",
        encoding="utf-8",
    )
    rows, problems = read_csv(csv)
    assert problems == [f"{csv}:4: 2 fields, the header has 3"]
    assert [(a, r, t) for a, r, t, _e in rows] == [
        ("a@example.org", "bounced", T0),
        ("c@example.org", "manual", T0),
    ]


def test_many_bad_rows_are_listed_up_to_fifty(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("email\n" + "".join(f"nope{n}\n" for n in range(53)), encoding="utf-8")
    with Suppressions(tmp_path / "s.sqlite") as store, pytest.raises(SuppressionError) as caught:
        import_csv(store, csv)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"53 bad rows in {csv}; nothing imported:"
    assert lines[1].startswith(f"{csv}:2: 'nope0'") and lines[50].startswith(f"{csv}:51: 'nope49'")
    assert lines[51:] == ["... and 3 more", "Fix them, or pass --skip-invalid to import the good rows only."]


def test_files_that_cannot_be_imported(tmp_path: Path) -> None:
    no_email = tmp_path / "x.csv"
    no_email.write_text("address\na@example.org\n", encoding="utf-8")
    with pytest.raises(SuppressionError, match=r"x\.csv:1: no 'email' column"):
        read_csv(no_email)
    latin = tmp_path / "l.csv"
    latin.write_bytes("email\nzoë@example.org\n".encode("latin-1"))
    with pytest.raises(SuppressionError, match=r"l\.csv:2: not valid CSV UTF-8"):
        read_csv(latin)
    with pytest.raises(SuppressionError, match="cannot read"):
        read_csv(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("code", "text", "bad"),
    [
        (550, "5.1.1 <a@example.org>: Recipient address rejected: User unknown", True),
        (550, "5.1.10 Null MX", True),
        (550, "5.2.1 Mailbox disabled", True),
        (552, "5.2.2 Mailbox full", False),
        (554, "5.7.1 <a@example.org>: Relay access denied", False),
        (550, "5.7.1 Our IP is on a blocklist", False),
        (550, "No such user", True),
        (551, "User not local", True),
        (553, "Mailbox name not allowed", True),
        (554, "Transaction failed", False),
    ],
)
def test_which_refusals_say_the_address_is_bad(code: int, text: str, bad: bool) -> None:
    assert bad_address(code, text) is bad


# ---- the commands ----


def test_suppress_commands_from_a_fresh_workspace(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("init", "ws").exit_code == 0
    monkeypatch.chdir(tmp_path / "ws")
    added = run(
        "suppress", "add", "Ann@Example.org", "bob@example.org", "--reason", "complained", "--note", "FBL"
    )
    assert added.exit_code == 0, added.stderr
    assert (
        added.stderr == "ann@example.org: suppressed (complained)\nbob@example.org: suppressed (complained)\n"
    )
    again = run("suppress", "add", "ann@example.org")
    assert again.stderr.startswith("ann@example.org: already suppressed: complained (command, ")
    assert again.stderr.endswith("): FBL\n")
    listed = run("suppress", "list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["ann@example.org", "bob@example.org"]
    assert lines[0].split("\t")[1].startswith("complained (command, ")
    assert listed.stderr == "suppressions.sqlite: 2 addresses suppressed\n"
    assert stat.S_IMODE((tmp_path / "ws" / "suppressions.sqlite").stat().st_mode) == 0o600
    removed = run("suppress", "remove", "ANN@example.org", "zed@example.org", "--note", "asked again")
    assert removed.exit_code == 0
    assert removed.stderr.startswith("ann@example.org: no longer suppressed (was complained (command, ")
    assert removed.stderr.endswith("zed@example.org: was not suppressed\n")
    as_json = json.loads(run("suppress", "list", "--json", "--reason", "complained").stdout)
    assert [(r["address"], r["reason"], r["source"], r["evidence"]) for r in as_json] == [
        ("bob@example.org", "complained", "command", "FBL")
    ]
    assert datetime.fromisoformat(as_json[0]["at"]).tzinfo is not None
    assert json.loads(run("suppress", "list", "--json", "--reason", "bounced").stdout) == []


def test_suppress_errors_and_exit_codes(workspace: Path, run: Run) -> None:
    bad = run("suppress", "add", "ok@example.org", "nope")
    assert bad.exit_code == 1
    assert bad.stderr == "Error: 'nope' is not a valid email address: An email address must have an @-sign.\n"
    assert run("suppress", "list").stdout == ""  # the good one was not added either
    reason = run("suppress", "add", "a@example.org", "--reason", "spam")
    assert reason.exit_code == 2
    assert "Invalid value for '--reason': 'spam' is not one of 'unsubscribed', 'bounced'" in reason.stderr
    assert run("suppress", "add").exit_code == 2
    assert run("suppress", "list", "--reason", "nope").exit_code == 2
    assert (
        run("suppress", "import", "missing.csv").stderr
        == "Error: missing.csv: cannot read: No such file or directory\n"
    )


def test_suppress_import_and_export_commands(workspace: Path, run: Run) -> None:
    (workspace / "esp.csv").write_text(
        "email,reason\nq@example.org,bounced\nbad-row,\nr@example.org,\n", encoding="utf-8"
    )
    refused = run("suppress", "import", "esp.csv")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: 1 bad row in esp.csv; nothing imported:\nesp.csv:3: 'bad-row' is not"
    )
    done = run("suppress", "import", "esp.csv", "--skip-invalid", "--reason", "unsubscribed")
    assert done.exit_code == 0, done.stderr
    assert done.stderr.endswith(
        "esp.csv: 2 rows read, 2 newly suppressed, 0 already suppressed, 1 bad row skipped\n"
    )
    assert done.stderr.startswith("Warning: skipped esp.csv:3: 'bad-row' is not a valid email address")
    listed = run("suppress", "list").stdout.splitlines()
    assert [tuple(line.split("\t")[1].split(" ")[:2]) for line in listed] == [
        ("bounced", "(import:esp.csv,"),
        ("unsubscribed", "(import:esp.csv,"),
    ]
    exported = run("suppress", "export", "all.csv")
    assert exported.exit_code == 0
    assert exported.stderr == "all.csv: 2 addresses written\n"
    rows = (workspace / "all.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "email,reason,date,source,evidence" and len(rows) == 3
    nowhere = run("suppress", "export", "missing/all.csv")
    assert nowhere.exit_code == 1
    assert nowhere.stderr == "Error: missing/all.csv: cannot write: No such file or directory\n"
