"""The one error hierarchy. The CLI turns a DigestError into "Error: ..." on stderr and exit code 1."""

from __future__ import annotations


class DigestError(Exception):
    """Base class: something the user can fix (bad input, bad config, unreachable server)."""


class ConfigError(DigestError):
    """digest.toml or an environment variable is missing, malformed or has a bad value."""


class ItemError(DigestError):
    """One or more item files are bad; the message lists every problem of each as `path:line: what is wrong`,
    a line each. `problems` has one entry per file (its lines joined), so the header counts files."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        n = len(problems)
        head = f"{n} bad item file{'s' if n != 1 else ''}:" if n > 1 else ""
        super().__init__("\n".join([head, *problems]) if head else problems[0])


class WindowError(DigestError):
    """A date-window option (--month, --week, --since/--until, --last) cannot be understood."""


class TemplateError(DigestError):
    """A Jinja2 template or the MJML it produced is broken; the message names the template and line."""


class OutputError(DigestError):
    """The build folder cannot be written."""


class NotBuilt(DigestError):
    """Raised when `digest check` or `digest shots` is asked about a window whose out/<slug>/ folder has not
    been built (it has no manifest.json); `folder` is the folder as the message shows it, `command` the build
    that makes it, when the caller knows the window's options."""

    def __init__(self, folder: str, command: str = "") -> None:
        self.folder = folder
        how = f"run `{command}` first" if command else "run `digest build` for this window first"
        super().__init__(f"{folder}/ has not been built: {how}")


class BrowserError(DigestError):
    """Headless Chromium (or Playwright, which drives it) is missing or cannot start or load the page."""


class ScreenshotError(DigestError):
    """The screenshots show a layout problem: the page scrolls sideways, or an image does not load."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the screenshots show problems:\n" + "\n".join(f"  {p}" for p in problems))


class EmptyWindow(DigestError):
    """No item falls inside the window. Not a failure: the CLI exits 3 so cron and CI can tell."""

    exit_code = 3


class SubscriberError(DigestError):
    """The subscriber list (CSV) cannot be read or has bad rows, each listed as `file:line: what is wrong`."""

    def __init__(self, problems: list[str], *, more: int = 0, rows: bool = False) -> None:
        self.problems = problems
        if not rows:
            super().__init__("\n".join(problems))
            return
        n = len(problems) + more
        lines = [f"{n} bad row{'s' if n != 1 else ''} in the subscriber list:", *problems]
        if more:
            lines.append(f"... and {more} more")
        lines.append("Fix them, or pass --skip-invalid to send to the good rows only.")
        super().__init__("\n".join(lines))


class JournalError(DigestError):
    """The send journal cannot be used: unreadable, in use by another send, or kept for other content."""


class SendError(DigestError):
    """Sending stopped or did not reach everyone: SMTP settings, TLS, login or connection failures, or
    recipients that failed (the journal keeps the details; running the command again resumes)."""


class SuppressionError(DigestError):
    """The suppression list (config.paths.suppressions) cannot be opened, read or written, or a command or
    import gave it a bad address, reason or row (each named, with the file and line for an import)."""


class MailboxError(DigestError):
    """The bounce mailbox (IMAP or Maildir) cannot be reached, logged into, opened or marked."""


class FeedError(DigestError):
    """A feed cannot be fetched or read at all (HTTP status, network, not a feed); the message names it."""
