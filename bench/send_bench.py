"""`digest send` against Postfix's smtp-sink on loopback, with two baselines measured in the same run.

    ./dev bench send [--subscribers 10000] [--big 100000] [--mailmerge 10000] [--connections 1,2,4]

1. Postfix's smtp-source sends messages of the same size over the same number of connections to the same
   smtp-sink: the upper bound of this machine for that traffic.
2. mailmerge (PyPI, installed into bench/.work/mailmerge-venv) sends the same list, one message per row.
3. `digest send` sends the sample digest to the list, with --connections 1, 2 and 4.
4. Peak memory (max RSS) of `digest send` to --big subscribers.
5. `digest send` with a --suppressed-address suppression list (none of them on the list, so the same
   messages go out), as a ratio to the plain send measured just before and after it.
6. `digest send` with DKIM signing (a 2048-bit RSA key made for the run), as a ratio to the plain send,
   interleaved (--no-dkim skips it).

--chunking replaces smtp-sink by this script's own sink (asyncio, one process, PIPELINING, CHUNKING, BDAT:
smtp-sink takes no BDAT) and measures `digest send` to it with BDAT and, in turn, to the same sink without
CHUNKING (DATA); smtp-source (DATA) runs against it as well.

--latency-ms N puts bench/latency_proxy.py between the senders (digest send and smtp-source alike) and the
sink, N ms each way: a relay 2N ms away rather than on loopback.

smtp-sink and smtp-source come from Debian's postfix package, unpacked (`apt-get download` + `dpkg -x`)
into bench/.work/postfix/: nothing is installed as a service. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".work"
POSTFIX = WORK / "postfix"
MAILMERGE_VENV = WORK / "mailmerge-venv"
MAILMERGE_VERSION = "2.3.0"
SENDER = "news@example.org"
SECRET = "bench-unsubscribe-secret-of-at-least-32-bytes"  # noqa: S105 - a test value


def await_port(port: int, what: str) -> None:
    """Return once something accepts connections on 127.0.0.1:port; give up after 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: {what} did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postfix_tools() -> tuple[Path, Path, dict[str, str]]:
    """smtp-sink and smtp-source from Debian's postfix package, unpacked here (not installed)."""
    sink, source = POSTFIX / "usr/sbin/smtp-sink", POSTFIX / "usr/sbin/smtp-source"
    if not (sink.exists() and source.exists()):
        print("bench: fetching Debian's postfix package for smtp-sink and smtp-source (not installed)")
        with tempfile.TemporaryDirectory() as tmp:
            got = subprocess.run(["apt-get", "download", "postfix"], cwd=tmp, capture_output=True, text=True)
            if got.returncode != 0:
                subprocess.run(["apt-get", "update", "-qq"], check=True)
                subprocess.run(["apt-get", "download", "postfix"], cwd=tmp, check=True)
            (deb,) = glob.glob(f"{tmp}/postfix_*.deb")
            POSTFIX.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg", "-x", deb, str(POSTFIX)], check=True)
    env = {**os.environ, "LD_LIBRARY_PATH": str(POSTFIX / "usr/lib/postfix")}
    return sink, source, env


def mailmerge_bin() -> Path:
    """mailmerge in its own virtual environment (its pinned dependencies stay out of digest's)."""
    exe = MAILMERGE_VENV / "bin" / "mailmerge"
    if not exe.exists():
        print(f"bench: installing mailmerge {MAILMERGE_VERSION} into {MAILMERGE_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(MAILMERGE_VENV)], check=True)
        subprocess.run(
            [str(MAILMERGE_VENV / "bin/pip"), "install", "-q", f"mailmerge=={MAILMERGE_VERSION}"], check=True
        )
    return exe


class Sink:
    """smtp-sink on 127.0.0.1:<port>; it accepts and discards everything, PIPELINING on."""

    def __init__(self, sink: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen([str(sink), *user, f"127.0.0.1:{self.port}", "256"], env=env)
        await_port(self.port, "smtp-sink")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class _SinkProtocol(asyncio.Protocol):
    """One client of the sink: commands, DATA up to CRLF.CRLF, BDAT chunks read by size; all discarded."""

    def __init__(self, chunking: bool) -> None:
        self.chunking = chunking
        self.buf = bytearray()
        self.mode = "cmd"
        self.left = 0  # BDAT: octets of the chunk still to come
        self.scanned = 0  # DATA: where the search for the end may resume

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 bench sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        buf, out = self.buf, []
        buf += data
        while buf:
            if self.mode == "bdat":
                n = min(self.left, len(buf))
                del buf[:n]
                self.left -= n
                if self.left:
                    break
                self.mode = "cmd"
                out.append(b"250 2.0.0 Ok: queued\r\n")
            elif self.mode == "data":
                if buf.startswith(b".\r\n"):
                    end = -2
                else:
                    end = buf.find(b"\r\n.\r\n", self.scanned)
                    if end < 0:
                        self.scanned = max(0, len(buf) - 4)
                        break
                del buf[: end + 5]
                self.mode, self.scanned = "cmd", 0
                out.append(b"250 2.0.0 Ok: queued\r\n")
            else:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    break
                line = bytes(buf[:eol])
                del buf[: eol + 2]
                verb = line[:4].upper()
                if verb == b"EHLO":
                    extra = b"250-CHUNKING\r\n" if self.chunking else b""
                    out.append(b"250-bench\r\n250-PIPELINING\r\n" + extra + b"250 8BITMIME\r\n")
                elif verb == b"DATA":
                    self.mode = "data"
                    out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                elif verb == b"BDAT" and self.chunking:
                    self.mode, self.left = "bdat", int(line.split()[1])
                    if not self.left:
                        self.mode = "cmd"
                        out.append(b"250 2.0.0 Ok: queued\r\n")
                elif verb == b"QUIT":
                    out.append(b"221 Bye\r\n")
                    self.transport.write(b"".join(out))
                    self.transport.close()
                    return
                elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    out.append(b"250 2.0.0 Ok\r\n")
                else:
                    out.append(b"502 5.5.2 not here\r\n")
        if out:
            self.transport.write(b"".join(out))


def serve_sink(port: int, chunking: bool) -> None:
    """Run the sink on 127.0.0.1:port until killed."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _SinkProtocol(chunking), "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


class PySink(Sink):
    """This script's own sink in a process of its own (with or without CHUNKING)."""

    def __init__(self, chunking: bool) -> None:
        self.port = free_port()
        cmd = [sys.executable, __file__, "--serve-sink", str(self.port)] + (
            ["--chunking"] if chunking else []
        )
        self.proc = subprocess.Popen(cmd)
        await_port(self.port, "the sink")


def workspace(root: Path, port: int) -> Path:
    """A copy of the sample workspace, built, sending to the sink."""
    ws = root / "ws"
    ws.mkdir()
    shutil.copy(REPO / "digest.toml", ws / "digest.toml")
    shutil.copytree(REPO / "items", ws / "items")
    shutil.copytree(REPO / "templates", ws / "templates")
    with open(ws / "digest.toml", "a", encoding="utf-8") as f:
        f.write(
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n\n[send]\n'
            'unsubscribe_url = "https://example.org/unsubscribe?u={token}"\n'
            'unsubscribe_mailto = "unsubscribe@example.org"\n'
        )
    digest(ws, "build", "--month", "2021-03")
    return ws


def subscriber_list(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("email,name\n")
        for i in range(n):
            f.write(f"reader{i}@example.org,Reader {i}\n")
    return path


def digest_cmd() -> list[str]:
    exe = shutil.which("digest", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "digest"]


def digest(ws: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    run_env = {**os.environ, "DIGEST_UNSUBSCRIBE_SECRET": SECRET, **(env or {})}
    done = subprocess.run([*digest_cmd(), *args], cwd=ws, env=run_env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: digest {' '.join(args)} failed:\n{done.stderr}")
    return done


def timed(cmd: list[str], **kw: object) -> float:
    began = time.perf_counter()
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - began


def send_digest(
    ws: Path, csv: Path, connections: int, extra_env: dict[str, str] | None = None
) -> tuple[float, int]:
    """Seconds for a whole `digest send` (start-up and list checks included) and its peak RSS in KB."""
    for old in (ws / "out" / "2021-03").glob("journal.sqlite*"):  # the digest's journal: a fresh send
        old.unlink()
    cmd = [*digest_cmd(), "-q", "send", "--month", "2021-03", "--subscribers", str(csv), "--yes"]
    cmd += ["--connections", str(connections)]
    env = {**os.environ, "DIGEST_UNSUBSCRIBE_SECRET": SECRET, **(extra_env or {})}
    # A child of its own, so that RUSAGE_CHILDREN's max RSS is this send's alone.
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=ws, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench: digest send failed:\n{out.stderr}")
    seconds, rss = out.stdout.split()
    return float(seconds), int(rss)


def mailmerge_files(root: Path, ws: Path, csv: Path, port: int) -> Path:
    """mailmerge's three files: the same digest as a multipart/alternative template, same list, same sink."""
    import json

    parts = json.loads((ws / "out/2021-03/digest.parts.json").read_text(encoding="utf-8"))
    greet, unsub = parts["placeholders"]["greeting"], parts["placeholders"]["unsubscribe_url"]
    link = "https://example.org/unsubscribe?email={{email}}"

    def jinja(text: str) -> str:
        raw = "{% raw %}" + text + "{% endraw %}"
        return raw.replace(greet, "{% endraw %}Hello {{name}},{% raw %}").replace(
            unsub, "{% endraw %}" + link + "{% raw %}"
        )

    mm = root / "mailmerge"
    mm.mkdir()
    (mm / "mailmerge_template.txt").write_text(
        "TO: {{email}}\n"
        f"SUBJECT: {parts['subject']}\n"
        f"FROM: Co-operative News <{SENDER}>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="boundary"\n\n'
        "--boundary\n"
        'Content-Type: text/plain; charset="utf-8"\n\n'
        f"{jinja(parts['text'])}\n"
        "--boundary\n"
        'Content-Type: text/html; charset="utf-8"\n\n'
        f"{jinja(parts['html'])}\n"
        "--boundary--\n",
        encoding="utf-8",
    )
    shutil.copy(csv, mm / "mailmerge_database.csv")
    (mm / "mailmerge_server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\nratelimit = 0\n", encoding="utf-8"
    )
    return mm


def suppressed_run(ws: Path, csv: Path, n: int, size: int, connections: int) -> None:
    """Run 5: plain, suppressed, plain, suppressed sends; the best of each, as a ratio."""
    from digest.suppress import Suppressions

    store = ws / "suppressions.sqlite"  # the sample's default place
    rows = ((f"gone{i}@example.net", "unsubscribed", None, "bench") for i in range(size))
    with Suppressions(store) as s:
        s.add_many(rows, source="import:bench")
    aside = store.with_name("bench-suppressions.sqlite")
    plain, listed = [], []
    for _ in range(2):
        os.replace(store, aside)
        plain.append(send_digest(ws, csv, connections)[0])
        os.replace(aside, store)
        listed.append(send_digest(ws, csv, connections)[0])
    best_plain, best_listed = min(plain), min(listed)
    print(
        f"suppression list of {size} addresses, --connections {connections}: {n / best_listed:.0f} msg/s vs "
        f"{n / best_plain:.0f} plain = {best_plain / best_listed:.2f}x the plain send's throughput"
    )
    for path in ws.glob("suppressions.sqlite*"):
        path.unlink()


def dkim_run(ws: Path, csv: Path, n: int, connections: int) -> None:
    """Run 6: plain, DKIM-signed, plain, signed sends (an RSA 2048 key made here); the best of each."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signed_env = {
        "DIGEST_DKIM_KEY": pem,
        "DIGEST_DKIM_DOMAIN": "example.org",
        "DIGEST_DKIM_SELECTOR": "bench",
    }
    plain, signed = [], []
    for _ in range(2):
        plain.append(send_digest(ws, csv, connections)[0])
        signed.append(send_digest(ws, csv, connections, signed_env)[0])
    best_plain, best_signed = min(plain), min(signed)
    print(
        f"DKIM (rsa-sha256, 2048 bits), --connections {connections}: {n / best_signed:.0f} msg/s vs "
        f"{n / best_plain:.0f} plain = {best_plain / best_signed:.2f}x the plain send's throughput"
    )


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000, help="subscribers for the memory run (0: skip)")
    parser.add_argument("--mailmerge", type=int, default=10_000, help="rows for mailmerge (0: skip)")
    parser.add_argument("--connections", default="1,2,4")
    parser.add_argument(
        "--suppressed", type=int, default=100_000, help="suppression list size for run 5 (0: skip)"
    )
    parser.add_argument("--no-dkim", action="store_true", help="skip run 6, the DKIM-signed send")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="send through a proxy adding this delay each way"
    )
    parser.add_argument(
        "--chunking", action="store_true", help="this script's sink, with CHUNKING (BDAT) and without"
    )
    parser.add_argument("--window", type=int, default=0, help="digest send --window (0: the default)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each send, interleaved; medians")
    parser.add_argument("--serve-sink", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(args.serve_sink, args.chunking)
        return
    n = args.subscribers
    conns = [int(c) for c in args.connections.split(",")]
    sink_bin, source_bin, pf_env = postfix_tools()
    sink = PySink(chunking=True) if args.chunking else Sink(sink_bin, pf_env)
    plain = PySink(chunking=False) if args.chunking else None
    try:
        with contextlib.ExitStack() as stack:
            port, plain_port = sink.port, plain.port if plain else 0
            if args.latency_ms:
                sys.path.insert(0, str(Path(__file__).parent))
                from latency_proxy import Running

                delay = args.latency_ms / 1000
                port = stack.enter_context(Running(("127.0.0.1", sink.port), delay)).port
                if plain is not None:
                    plain_port = stack.enter_context(Running(("127.0.0.1", plain.port), delay)).port
                print(f"through a proxy adding {args.latency_ms:g} ms each way")
            if args.window:
                os.environ["DIGEST_SEND_WINDOW"] = str(args.window)
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="send-bench-"))
            root = Path(tmp)
            ws = workspace(root, port)
            csv = subscriber_list(root / "subscribers.csv", n)
            sample = digest(ws, "send", "--month", "2021-03", "--subscribers", str(csv), "--dry-run")
            size = len(sample.stdout.encode())
            print(f"message size {size} bytes; {n} subscribers; cores {os.cpu_count()}")
            rows = []
            for c in conns:
                # -d: keep each connection for the next message, as digest does.
                source = [str(source_bin), "-d", "-s", str(c), "-m", str(n), "-l", str(size), "-f", SENDER]
                srcs, secs_all, rss_all, data_all = [], [], [], []
                for _ in range(args.runs):  # interleaved: the machine's drift hits each the same
                    srcs.append(timed([*source, "-t", "reader@example.org", f"127.0.0.1:{port}"], env=pf_env))
                    secs, rss = send_digest(ws, csv, c)
                    secs_all.append(secs)
                    rss_all.append(rss)
                    if plain is not None:
                        data_all.append(send_digest(ws, csv, c, {"DIGEST_SMTP_PORT": str(plain_port)})[0])
                src, secs, rss = statistics.median(srcs), statistics.median(secs_all), max(rss_all)
                rows.append((c, n / src, n / secs, rss))
                how = " (BDAT)" if plain is not None else ""
                print(
                    f"connections {c}: smtp-source {n / src:7.0f} msg/s | digest send{how} {n / secs:7.0f} "
                    f"msg/s = {src / secs:.2f}x smtp-source (medians of {args.runs}; "
                    f"peak RSS {rss / 1024:.0f} MB)"
                )
                if data_all:
                    data = statistics.median(data_all)
                    print(
                        f"  same sink without CHUNKING: digest send (DATA) {n / data:7.0f} msg/s; "
                        f"BDAT = {data / secs:.2f}x DATA"
                    )
            if args.mailmerge:
                exe = mailmerge_bin()
                m = args.mailmerge
                mm = mailmerge_files(root, ws, subscriber_list(root / "mm.csv", m), port)
                cmd = [str(exe), "--no-dry-run", "--no-limit", "--output-format", "raw"]
                secs = timed(cmd, cwd=mm, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                mm_rate = m / secs
                print(f"mailmerge {MAILMERGE_VERSION}: {m} messages in {secs:.1f} s = {mm_rate:.0f} msg/s")
                for c, _src, rate, _rss in rows:
                    print(f"  digest send --connections {c}: {rate / mm_rate:.1f}x mailmerge")
            if args.suppressed:
                suppressed_run(ws, csv, n, args.suppressed, conns[0])
            if not args.no_dkim:
                dkim_run(ws, csv, n, conns[0])
            if args.big:
                big = subscriber_list(root / "big.csv", args.big)
                secs, rss = send_digest(ws, big, max(conns))
                print(
                    f"{args.big} subscribers, --connections {max(conns)}: {secs:.1f} s "
                    f"({args.big / secs:.0f} msg/s), peak RSS {rss / 1024:.0f} MB"
                )
    finally:
        sink.stop()
        if plain is not None:
            plain.stop()


if __name__ == "__main__":
    main()
