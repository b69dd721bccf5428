"""A real Exim 4 on loopback for the send tests: an MTA that offers PIPELINING, and CHUNKING (BDAT) unless
told not to (`chunking=False`: the pipelined DATA path), which neither aiosmtpd nor Postfix's smtp-sink does.

`start_exim(...)` runs `exim -bdf` with its own configuration written to a folder of
its own under /tmp (spool, logs, a Maildir): no system configuration, no DNS, no delivery out. Every
message accepted is queued (queue_only); `Exim.deliver()` runs one queue run, which files each message into
the Maildir as the bytes received, with CRLF line ends (use_crlf), after the headers Exim adds. Faults are
Exim's own ACLs: a 4xx or a 5xx to the RCPT of given recipients, a 5xx or a 4xx after the data of others (for BDAT,
the DATA ACL runs once the LAST chunk is in).

Works as root (the daemon keeps root, its files belong to Exim's own user, as deliveries run as that user)
and as any other user (Exim gives up root for a configuration given with -C: everything then runs as the
caller, named as Exim's user in the configuration). Install: apt-get install exim4-daemon-light.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conftest import stop_process

EXIM = next(
    (p for p in (shutil.which("exim4"), shutil.which("exim"), "/usr/sbin/exim4") if p and Path(p).exists()),
    None,
)
INSTALL = "exim is not installed (apt-get install -y --no-install-recommends exim4-daemon-light)"
# Added by the DATA ACL to each message it accepts: the command that carried the data ("BDAT 1234 LAST" or
# "DATA"), so a test sees how each message came.
COMMAND_HEADER = "X-Test-Smtp-Command"
# What Exim puts before the message it received (Return-path, Envelope-to, Received and the ACL's header).
ADDED = ("Return-path:", "Envelope-to:", "Received:", f"{COMMAND_HEADER}:")

CONFIG = """\
primary_hostname = mta.test
qualify_domain = mta.test
{exim_user}spool_directory = {home}/spool
log_file_path = {home}/log/%slog
pid_file_path = {home}/exim.pid
local_interfaces = 127.0.0.1
daemon_smtp_ports = {port}
daemon_startup_retries = 0
tls_advertise_hosts =
chunking_advertise_hosts = {chunking}
host_lookup =
rfc1413_hosts =
keep_environment =
queue_only = true
log_selector = +smtp_connection +pipelining
acl_smtp_rcpt = rcpt
acl_smtp_data = data

begin acl

rcpt:
  defer message = 4.2.0 try again later
        recipients = {defer}
  deny  message = 5.1.1 no such user
        recipients = {deny}
  accept

data:
  deny  message = 5.6.0 content refused
        condition = ${{if inlist{{$recipients}}{{{data_deny}}}}}
  defer message = 4.3.0 content deferred
        condition = ${{if inlist{{$recipients}}{{{data_defer}}}}}
  warn  condition = ${{if inlist{{$recipients}}{{{slow}}}}}
        delay = {delay}
  warn  add_header = :at_start:{command_header}: $smtp_command
  accept

begin routers

everyone:
  driver = accept
  transport = maildir

begin transports

maildir:
  driver = appendfile
  directory = {home}/Maildir
  maildir_format
  create_directory
  use_crlf
  envelope_to_add
  return_path_add
  user = ${{exim_uid}}
  group = ${{exim_gid}}
"""


@dataclass(frozen=True)
class Delivered:
    """One message filed: its envelope recipient, the headers Exim added, and the bytes it received."""

    recipient: str
    added: bytes
    received: bytes

    @property
    def command(self) -> str:
        """The SMTP command that carried its data, as the DATA ACL saw it."""
        for line in self.added.split(b"\r\n"):
            if line.startswith(COMMAND_HEADER.encode() + b":"):
                return line.split(b":", 1)[1].strip().decode()
        return ""


@dataclass(frozen=True)
class Exim:
    """A running Exim: its port, its folder (spool, log, Maildir), and whether it offers CHUNKING."""

    port: int
    home: Path
    config: Path
    chunking: bool = True

    def deliver(self) -> list[Delivered]:
        """One queue run (it returns when every queued message is filed), then every message in the Maildir."""
        assert EXIM is not None
        run = subprocess.run(
            [EXIM, "-C", str(self.config), "-qf"], capture_output=True, text=True, timeout=60, check=False
        )
        assert run.returncode == 0, run.stderr
        out = []
        for path in sorted((self.home / "Maildir" / "new").glob("*")):
            out.append(split_delivered(path.read_bytes()))
        return out

    def accepted(self) -> list[list[str]]:
        """The flags of each message the log records as received: "L" and its mark for PIPELINING, "K" when
        CHUNKING (BDAT) carried it."""
        return [m.group(1).split() for m in re.finditer(r" <= .*? P=\S+((?: \S+)*?) S=\d+", self.log())]

    def log(self) -> str:
        """Exim's main log and what the daemon wrote to its stderr (where it logs when not running as root)."""
        paths = (self.home / "log/mainlog", self.home / "daemon.err")
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())


def split_delivered(raw: bytes) -> Delivered:
    """A Maildir file: the header lines Exim added on top (with their folded lines), then the message."""
    at, recipient = 0, ""
    while True:
        end = raw.index(b"\r\n", at) + 2
        line = raw[at:end]
        if line.startswith(b"Envelope-to:"):
            recipient = line.split(b":", 1)[1].strip().decode()
        if line.startswith(tuple(h.encode() for h in ADDED)) or (at and line[:1] in (b" ", b"\t")):
            at = end
            continue
        return Delivered(recipient, raw[:at], raw[at:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _addresses(addresses: Collection[str]) -> str:
    # An ACL list that matches nothing when empty: an address no test sends to.
    return " : ".join(sorted(addresses)) or "nobody@nowhere.invalid"


def _inlist(addresses: Collection[str]) -> str:
    return ":".join(sorted(addresses)) or "nobody@nowhere.invalid"


@contextmanager
def start_exim(
    *,
    defer: Collection[str] = (),
    deny: Collection[str] = (),
    data_deny: Collection[str] = (),
    data_defer: Collection[str] = (),
    slow: Collection[str] = (),
    delay: str = "2s",
    chunking: bool = True,
) -> Iterator[Exim]:
    """Exim on 127.0.0.1, its RCPT ACL deferring (451) `defer` and refusing (550) `deny`, its DATA ACL
    refusing (550) `data_deny`, deferring (451) `data_defer` and taking `delay` over the data of `slow` (each message has one recipient),
    offering CHUNKING only when `chunking`; stopped, and its folder removed, on leaving."""
    assert EXIM is not None
    # pytest's tmp folders are private to their owner; when root runs the tests, Exim's own user must reach
    # its spool, so the server gets a folder of its own under /tmp.
    home = Path(tempfile.mkdtemp(prefix="exim-"))
    proc = None
    try:
        os.chmod(home, 0o755)  # noqa: S103 - Exim's user must reach its spool; test files only
        for sub in ("spool", "log", "Maildir"):
            (home / sub).mkdir()
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        port = _free_port()
        config = home / "exim.conf"
        config.write_text(
            CONFIG.format(
                home=home,
                port=port,
                # Not root: Exim runs as the caller, who must then be Exim's user for the deliveries.
                exim_user="" if os.geteuid() == 0 else f"exim_user = {me}\nexim_group = {group}\n",
                defer=_addresses(defer),
                deny=_addresses(deny),
                data_deny=_inlist(data_deny),
                data_defer=_inlist(data_defer),
                command_header=COMMAND_HEADER,
                slow=_inlist(slow),
                delay=delay,
                # Exim's default offers CHUNKING to every host; an empty list to none.
                chunking="*" if chunking else "",
            ),
            encoding="utf-8",
        )
        if os.geteuid() == 0:
            shown = subprocess.run(
                [EXIM, "-C", str(config), "-bP", "exim_user"], capture_output=True, text=True, check=True
            )
            user = pwd.getpwnam(shown.stdout.split("=", 1)[1].strip())
            for sub in ("spool", "log", "Maildir"):
                os.chown(home / sub, user.pw_uid, user.pw_gid)
        with open(home / "daemon.err", "wb") as err:
            # A session of its own: the processes it forks for each connection are stopped with it.
            proc = subprocess.Popen(
                [EXIM, "-C", str(config), "-bdf"],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        server = Exim(port, home, config, chunking)
        for _ in range(400):  # ready when it answers; a bounded wait, not a timing assertion
            if proc.poll() is not None:
                raise AssertionError(f"exim did not start:\n{server.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError(f"exim does not answer on port {port}:\n{server.log()}")
        yield server
    finally:
        if proc is not None:
            stop_process(proc)
            # A connection's process may outlive the daemon (one that was waiting in an ACL's delay), and
            # would write its log into the folder removed below.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)
