"""`digest suppress`: list, add, remove, import and export the workspace's suppression list."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digest.cli.base import State, fail_cleanly, main
from digest.fsutil import shown
from digest.suppress import REASONS, Entry, normalise, open_suppressions, why
from digest.suppresscsv import export_csv, import_csv
from digest.words import plural

_REASON = click.Choice(REASONS)


@main.group()
def suppress() -> None:
    """The suppression list: who gets no digest (unsubscribed, bounced, complained, manual), and why."""


def _line(entry: Entry) -> str:
    return f"{entry.address}\t{why(entry)}"


@suppress.command("list")
@click.option("--reason", type=_REASON, help="Only the addresses suppressed for this reason.")
@click.option("--json", "as_json", is_flag=True, help="JSON: address, reason, at, source, evidence.")
@click.pass_obj
@fail_cleanly
def list_(state: State, /, reason: str | None, as_json: bool) -> None:
    """Print the suppressed addresses with why (reason, source, time, evidence), oldest first."""
    config = state.config()
    with open_suppressions(config) as store:
        entries = store.entries(reason)
    if as_json:
        rows = [
            {"address": e.address, "reason": e.reason, "at": e.at.isoformat(), "source": e.source,
             "evidence": e.evidence}
            for e in entries
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for entry in entries:
            click.echo(_line(entry))
    state.say(
        f"{shown(config.paths.suppressions)}: {plural(len(entries), 'address', 'addresses')} suppressed"
    )


def _addresses(raw: tuple[str, ...]) -> list[str]:
    # Every address checked before any is written: a typo in the third must not leave two done.
    return [normalise(a) for a in raw]


@suppress.command()
@click.argument("addresses", nargs=-1, required=True, metavar="ADDRESS...")
@click.option("--reason", type=_REASON, default="manual", show_default=True, help="Why they get no mail.")
@click.option("--note", default="", help="Evidence to keep with the entry (e.g. a ticket or a request).")
@click.pass_obj
@fail_cleanly
def add(state: State, /, addresses: tuple[str, ...], reason: str, note: str) -> None:
    """Suppress ADDRESS...: no send reaches them until `digest suppress remove`."""
    keys = _addresses(addresses)
    with open_suppressions(state.config()) as store:
        for key in keys:
            if store.add(key, reason=reason, source="command", evidence=note):
                state.say(f"{key}: suppressed ({reason})")
            else:
                (entry,) = store.entries_for([key]).values()
                state.say(f"{key}: already suppressed: {why(entry)}")


@suppress.command()
@click.argument("addresses", nargs=-1, required=True, metavar="ADDRESS...")
@click.option("--note", default="", help="Evidence to keep with the removal (e.g. the person's request).")
@click.pass_obj
@fail_cleanly
def remove(state: State, /, addresses: tuple[str, ...], note: str) -> None:
    """Take ADDRESS... off the list (a re-subscribe): the next send reaches them. The history keeps both."""
    keys = _addresses(addresses)
    with open_suppressions(state.config()) as store:
        for key in keys:
            before = store.entries_for([key]).get(key)
            if before is not None and store.remove(key, source="command", evidence=note):
                state.say(f"{key}: no longer suppressed (was {why(before)})")
            else:
                state.say(f"{key}: was not suppressed")


@suppress.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False), metavar="CSV")
@click.option(
    "--reason", type=_REASON, default="manual", show_default=True, help="For rows without a reason."
)
@click.option("--skip-invalid", is_flag=True, help="Import the good rows even when some rows are bad.")
@click.pass_obj
@fail_cleanly
def import_(state: State, /, csv_file: Path, reason: str, skip_invalid: bool) -> None:
    """Suppress every row of CSV (e.g. an ESP's export): an `email` column; `reason` and `date` optional."""
    with open_suppressions(state.config()) as store:
        done = import_csv(store, csv_file, reason=reason, skip_invalid=skip_invalid)
    for problem in done.problems:
        state.warn(f"skipped {problem}")
    state.say(
        f"{csv_file}: {plural(done.rows, 'row')} read, {done.added} newly suppressed, "
        f"{done.rows - done.added} already suppressed"
        + (f", {plural(len(done.problems), 'bad row')} skipped" if done.problems else "")
    )


@suppress.command("export")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False), metavar="CSV")
@click.pass_obj
@fail_cleanly
def export(state: State, /, csv_file: Path) -> None:
    """Write the list to CSV (email, reason, date, source, evidence), all at once; the file is private."""
    with open_suppressions(state.config()) as store:
        n = export_csv(store, csv_file)
    state.say(f"{csv_file}: {plural(n, 'address', 'addresses')} written")
