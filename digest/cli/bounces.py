"""`digest bounces`: parse the options, open the mailbox, call digest.bounces.run, print each decision."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.base import State, fail_cleanly, main


@main.command()
@click.option(
    "--imap", "imap_host", metavar="HOST", help="Read this IMAP server (default: [bounces] imap_host)."
)
@click.option("--user", "imap_user", metavar="USER", help="IMAP user (password: DIGEST_IMAP_PASSWORD).")
@click.option("--folder", "imap_folder", metavar="FOLDER", help="IMAP folder (default: INBOX).")
@click.option("--port", "imap_port", type=click.IntRange(1, 65535), help="IMAP port (default: 993 / 143).")
@click.option(
    "--security",
    "imap_security",
    type=click.Choice(["ssl", "starttls", "none"]),
    help="ssl (default), starttls, or none (loopback only).",
)
@click.option(
    "--maildir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Read this Maildir folder instead of an IMAP server.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the built <slug>/ folders and their send journals are.",
)
@click.option(
    "--dry-run", is_flag=True, help="Say what would be decided, message by message; change nothing."
)
@click.pass_obj
@fail_cleanly
def bounces(
    state: State,
    /,
    imap_host: str | None,
    imap_user: str | None,
    imap_folder: str | None,
    imap_port: int | None,
    imap_security: str | None,
    maildir: Path | None,
    out_dir: Path | None,
    dry_run: bool,
) -> None:
    """Read bounces, auto-replies and mailed unsubscribes; suppress whom no more mail must reach."""
    from digest.bounces import run
    from digest.bounces.mailbox import ImapMailbox, Mailbox, MaildirMailbox, imap_settings

    if maildir is not None and imap_host is not None:
        raise click.UsageError("give --imap HOST or --maildir DIR, not both")
    config = state.config(
        **{
            "bounces.imap_host": imap_host,
            "bounces.imap_user": imap_user,
            "bounces.imap_folder": imap_folder,
            "bounces.imap_port": imap_port,
            "bounces.imap_security": imap_security,
            "paths.out": out_dir,
        }
    )
    box: Mailbox = (
        MaildirMailbox(maildir)
        if maildir is not None
        else ImapMailbox(imap_settings(config), readonly=dry_run)
    )
    try:
        report = run(
            config,
            box,
            dry_run=dry_run,
            now=state.now,
            progress=lambda outcome: click.echo(outcome.line(box.name, dry_run=dry_run)),
        )
    finally:
        box.close()
    state.say(report.summary())
