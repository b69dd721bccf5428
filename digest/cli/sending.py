"""`digest send`: parse the options, call digest.send, show the plan, the progress and the report."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import backdated
from digest.cli.base import State, fail_cleanly, get_window, main, window_options
from digest.config import Config
from digest.errors import DigestError, EmptyWindow, SendError
from digest.fsutil import shown
from digest.words import plural

if TYPE_CHECKING:
    from digest.journal import Status


def _rate(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    from digest.config import parse_rate

    try:
        return None if value is None else parse_rate(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _window(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    from digest.config.values import window

    try:
        return None if value is None else window(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@main.command()
@window_options
@click.option(
    "--subscribers",
    "subscribers",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The subscriber list: CSV with a header row, an 'email' column, optionally 'name' and others.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the built <slug>/ folder is (as for `digest build`).",
)
@click.option("--dry-run", is_flag=True, help="Print the first message and the counts; connect to nothing.")
@click.option(
    "--test", "test_address", metavar="ADDRESS", help="Send one copy to ADDRESS, outside the journal."
)
@click.option(
    "--lang",
    "lang",
    metavar="CODE",
    help="With --test or --dry-run: the digest a subscriber with this lang gets (fr, es...).",
)
@click.option("--status", is_flag=True, help="Print the journal's counts (sent, failed, deferred, pending).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--connections", type=click.IntRange(1, 64), help="SMTP connections in parallel (default 1).")
@click.option(
    "--window",
    "window_size",
    type=int,
    callback=_window,
    help="Messages a connection may have unanswered (BDAT; default 10, at most 32): a kill re-sends at "
    "most these.",
)
@click.option(
    "--rate",
    metavar="N/s|N/m|N/h",
    callback=_rate,
    help="At most this many messages per second, minute or hour.",
)
@click.option("--skip-invalid", is_flag=True, help="Send to the good rows even when some rows are bad.")
@click.option(
    "--allow-changed", is_flag=True, help="Resume a send although the digest changed since it began."
)
@click.option(
    "--as-built",
    is_flag=True,
    help="Send the built folder although the window's items or the settings changed since.",
)
@click.option(
    "--resend-items",
    is_flag=True,
    help="Send although every item of the digest already went out in another digest sent in full.",
)
@click.option(
    "--retries", type=click.IntRange(0, 20), default=5, show_default=True, help="Retries per message."
)
@click.option("--retry-delay", type=click.FloatRange(0, 600), default=1.0, show_default=True, help="Seconds.")
@click.option(
    "--insecure-no-verify",
    is_flag=True,
    help="DANGEROUS: do not check the server's TLS certificate (anyone on the path can read the mail).",
)
@click.pass_obj
@fail_cleanly
def send(
    state: State,
    /,
    subscribers: Path | None,
    out_dir: Path | None,
    dry_run: bool,
    test_address: str | None,
    lang: str | None,
    status: bool,
    yes: bool,
    connections: int | None,
    window_size: int | None,
    rate: float | None,
    skip_invalid: bool,
    allow_changed: bool,
    as_built: bool,
    resend_items: bool,
    retries: int,
    retry_delay: float,
    insecure_no_verify: bool,
    **window: Any,
) -> None:
    """Send the digest of a window (built in out/<slug>/, built first if absent) to a subscriber list."""
    from digest import send as sending
    from digest.journal import status as journal_status
    from digest.smtp import smtp_settings

    flags = {
        "paths.out": out_dir,
        "send.connections": connections,
        "send.window": window_size,
        "send.rate": rate,
        "smtp.verify": False if insecure_no_verify else None,
    }
    config = state.config(**flags)
    if status:
        found = journal_status(_status_folder(state, config, window))
        click.echo(status_line(found))
        for email, why in found.suppressed:  # why they got nothing: the suppression as the send found it
            click.echo(f"  {email}: suppressed: {why}")
        if found.counts.suppressed > len(found.suppressed):
            click.echo(f"  ... and {found.counts.suppressed - len(found.suppressed)} more suppressed")
        return
    win = get_window(state, config, **window)
    if test_address is None and subscribers is None:
        raise click.UsageError("give --subscribers FILE.csv (or --test ADDRESS, or --status)")
    if dry_run and subscribers is None:
        raise click.UsageError("--dry-run needs --subscribers FILE.csv")
    if lang is not None:
        if not dry_run and test_address is None:
            raise click.UsageError(
                "--lang goes with --test or --dry-run (a send reads each row's lang column)"
            )
        from digest.config.values import language

        try:
            lang = language(lang)
        except ValueError as err:
            raise DigestError(f"--lang: {err}") from None
    address = smtp_settings(config).address  # checked first: a mistake there should not wait for a build
    options = sending.SendOptions(
        retries=retries,
        retry_delay=retry_delay,
        allow_changed=allow_changed,
        skip_invalid=skip_invalid,
        as_built=as_built,
        resend_items=resend_items,
    )
    if dry_run:
        assert subscribers is not None
        with backdated.said_when_empty(config, win, state.warn):
            plan = sending.dry_run(config, win, subscribers, options, now=state.now, say=state.say, lang=lang)
        if plan.message is not None:
            click.echo(plan.message.data.decode("ascii"), nl=False)
            # The message is printed as it goes, its Subject encoded (RFC 2047) when it is not ASCII.
            state.say(f"subject: {_subject(plan.message.data)}")
        _report_list(state, plan.listed)
        if len(plan.languages) > 1 or any(code != config.language for code in plan.languages):
            state.say("by language: " + ", ".join(f"{c} {n}" for c, n in plan.languages.items()))
        if plan.counts is not None:
            state.say(f"journal: {plan.counts}")
        state.say(
            f"dry run: would send {plural(plan.would_send, 'message')} via {plan.address} "
            f"({plan.suppressed} suppressed); sent nothing"
        )
        _warn_placeholders(state, plan.placeholders)
        backdated.warn(config, win, state.warn)
        return
    if not config.smtp.verify:
        click.secho(
            f"WARNING: TLS certificate verification is OFF for {address}: "
            "anyone on the network path can read and change these messages.",
            err=True,
            fg="red",
            bold=True,
        )
    if test_address is not None:
        reply = sending.send_test(
            config, win, test_address, now=state.now, as_built=as_built, say=state.say, lang=lang
        )
        state.say(f"test message sent to {test_address} via {address}: {reply}")
        return
    assert subscribers is not None

    def confirm(plan: sending.Plan) -> bool:
        backdated.warn(config, win, state.warn)  # with --yes too: a cron job's log shows it
        if yes:
            return True
        state.say(f"journal: {plan.counts}")
        _warn_placeholders(state, plan.placeholders)
        answer = click.confirm(
            f"Send {plan.subject!r} to {plural(plan.todo, 'recipient')} via {plan.address}?", err=True
        )
        if not sys.stdin.isatty():  # piped: no terminal echoed the answer and its line end
            click.echo(err=True)
        return answer

    progress = _Progress(enabled=state.verbosity >= 0)
    try:
        with backdated.said_when_empty(config, win, state.warn):  # built first, and empty
            report = sending.run(
                config,
                win,
                subscribers,
                options,
                now=state.now,
                confirm=confirm,
                progress=progress.step,
                say=state.say,
            )
    finally:
        progress.close()
    _report_list(state, report.listed)
    rate_done = report.sent / report.elapsed if report.elapsed > 0 else 0.0
    state.say(
        f"{report.sent} sent, {report.failed} failed, {report.deferred} deferred, {report.suppressed} "
        f"suppressed in this run ({report.already_done} done before; {rate_done:.0f} messages/s). "
        f"Journal: {report.counts}"
    )
    for email, code, reply in report.failures:
        state.say(f"  {email}: {code or ''} {reply}".rstrip())
    if report.bounced:
        state.say(
            f"{plural(len(report.bounced), 'address', 'addresses')} refused for good, now on the "
            f"suppression list (bounced): {', '.join(report.bounced)}"
        )
    for problem in report.problems:
        state.warn(problem)
    bad = report.refused + report.unfinished
    if bad:
        raise SendError(
            f"{plural(bad, 'recipient')} did not get the digest "
            f"({report.refused} refused, {report.unfinished} deferred: run again to retry those)"
        )


class _Progress:
    """A progress bar on stderr with the rate and ETA; updated from the sending threads."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.began = 0.0
        self.lock = threading.Lock()

    def step(self, done: int, todo: int) -> None:
        with self.lock:
            if done == 0:
                self.began = time.monotonic()
                if self.enabled:
                    self.bar = click.progressbar(
                        length=todo, label="Sending", show_eta=True, show_pos=True, file=sys.stderr
                    )
                    self.bar.__enter__()
            elif self.bar is not None:
                rate = done / max(time.monotonic() - self.began, 1e-6)
                self.bar.update(1, current_item=f"{rate:.0f}/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _subject(data: bytes) -> str:
    """A message's Subject as a reader sees it."""
    from email import message_from_bytes, policy

    return str(message_from_bytes(data, policy=policy.default)["Subject"])


def _report_list(state: State, listed: Any) -> None:
    for note in listed.notes:
        state.warn(note)
    state.say(
        f"{listed.path}: {plural(listed.count, 'unique address', 'unique addresses')}"
        + (
            f", {listed.duplicates} duplicate{'s' if listed.duplicates != 1 else ''} merged"
            if listed.duplicates
            else ""
        )
        + (
            f", {listed.bad_rows} bad row{'s' if listed.bad_rows != 1 else ''} skipped"
            if listed.bad_rows
            else ""
        )
    )


def _status_folder(state: State, config: Config, window: dict[str, Any]) -> Path:
    """The built folder whose journal `send --status` shows: the window's. With --since-last-send, once the
    last send is complete its window is behind: the window after it shows only when a send of it began
    (its journal), else the last digest sent in full does, and the status says so."""
    from digest import outdir
    from digest.journal import journal_path

    if not window.get("since_last_send"):
        return outdir.folder_of(config.paths.out, get_window(state, config, **window).slug)
    from digest.sent import last_sent_in_full

    try:
        folder: Path | None = outdir.folder_of(config.paths.out, get_window(state, config, **window).slug)
    except EmptyWindow:  # nothing new since that send (its newest item may even be dated ahead)
        folder = None
    last = last_sent_in_full(config.paths.out, config.tz)
    if last is None or (folder is not None and journal_path(folder).exists()):
        assert folder is not None  # get_window refuses --since-last-send before any send in full
        return folder
    began = f"{shown(folder)}/ was not sent yet; " if folder is not None else "nothing new to send; "
    state.say(f"{began}the last digest sent in full: {shown(last[0])}/")
    return last[0]


def _warn_placeholders(state: State, found: tuple[str, ...]) -> None:
    """The prompt's and the dry run's warning: what still points at a reserved domain or an address that is
    not public (placeholders)."""
    if found:
        state.warn(
            "this digest still points at a reserved domain (example.org and the like: no one can own them; "
            "left from an example?) or an address that is not public (127.0.0.1, 10.x, 192.168.x: only "
            "readers inside that network reach it): " + "; ".join(found)
        )


def status_line(found: Status) -> str:
    """`path: counts`, and whether it went out in full: "(complete)" only when nobody is left, as a later run
    to another list may leave some of its people pending or deferred."""
    left = found.counts.pending + found.counts.deferred
    if not found.complete:
        note = ""
    elif left:
        day = found.completed_at[:10]
        note = f" (a list was sent in full{' on ' + day if day else ''}; {left} still to send)"
    else:
        note = " (complete)"
    return f"{shown(found.journal)}: {found.counts}{note}"
