"""digest check --spam: SpamAssassin's score of the message exactly as `digest send` makes it.

The message comes from the one path to a message (digest.message.personaliser, as a send uses it, with the
build's preview stand-ins where the send settings are not set yet), addressed to a subscriber who is not the
sender. SpamAssassin runs with local rules only (`spamassassin -t -L`: no DNS, no network tests). Each rule
hit is listed with its points; those of our own making (the HTML, the headers digest writes) are findings.
What the message cannot have before it leaves (Received headers, a DKIM signature added on sending, the
relay's reverse DNS, SPF and DMARC of the domain) belongs to the environment: listed, never a finding.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest import outdir
from digest.check.report import Finding
from digest.config import Config
from digest.errors import DigestError
from digest.message import personaliser
from digest.render import HTML_TEMPLATE
from digest.render import default_templates_dir as _templates
from digest.window import Window

RECIPIENT = "reader@example.com"  # a subscriber: not the sender, as every sent message is
TIMEOUT = 120.0
MISSING = (
    "--spam needs SpamAssassin, which is not installed (no spamassassin on the PATH): "
    "apt-get install --no-install-recommends spamassassin (Debian), then run the check again"
)

# Rules about where and how the message travels, not what digest writes: not ours (docs/checks.md).
ENVIRONMENT = frozenset(
    {
        "NO_RECEIVED",  # Received headers are added by the relays
        "NO_RELAYS",
        "ALL_TRUSTED",
        "UNPARSEABLE_RELAY",
        "NO_DNS_FOR_FROM",  # DNS of the sender's domain
        "HTML_MESSAGE",  # 0.001, informational: every HTML email hits it
    }
)
ENVIRONMENT_PREFIXES = (
    "RCVD_IN_",  # blocklists of the sending relay's address
    "RDNS_",  # the relay's reverse DNS
    "SPF_",
    "T_SPF_",
    "DKIM_",  # signed on sending ([dkim]) or by the relay
    "T_DKIM_",
    "DMARC_",
    "KAM_DMARC_",
    "URIBL_",  # DNS blocklists of the links' domains
    "DATE_IN_",  # scored at another time than it is sent
)

# What to do about the rules a template or the settings are known to trip.
FIXES = {
    "HTML_FONT_LOW_CONTRAST": "do not hide text by giving it the background's colour (the preheader: hide it "
    "with display:none; max-height:0; overflow:hidden and the text's normal colour)",
    "GB_CUSTOM_HTM_URI": "keep the recipient's address out of links: the unsubscribe link's signed {token} "
    "is enough to find the subscriber",
    "MIME_HTML_ONLY": "send a text part too",
    "MISSING_MID": "give every message a Message-ID",
}


@dataclass(frozen=True)
class Hit:
    """One SpamAssassin rule the message hit: its name, points, description, and whether it is ours."""

    rule: str
    points: float
    description: str

    @property
    def ours(self) -> bool:
        """Made by the HTML or the headers digest writes (not by the way the message travels)."""
        return self.rule not in ENVIRONMENT and not self.rule.startswith(ENVIRONMENT_PREFIXES)


@dataclass(frozen=True)
class SpamReport:
    """SpamAssassin's verdict: the total, the points of our own making, and every rule hit."""

    score: float
    hits: tuple[Hit, ...]

    @property
    def own_points(self) -> float:
        """The points of the rules of our own making (negative ones do not make up for the others)."""
        return round(sum(h.points for h in self.hits if h.ours and h.points > 0), 3)


def find_spamassassin() -> str | None:
    """The spamassassin command on the PATH (Debian's spamassassin package), or None."""
    return shutil.which("spamassassin")


def sent_messages(config: Config, window: Window, *, now: datetime) -> list[tuple[str, bytes]]:
    """(language, message) of each digest the build made, as a send makes it to a subscriber, its own
    language's first (NotBuilt when it is not built): a subscriber of each language gets another message
    (its words, its greeting), which scores on its own."""
    built = outdir.load(outdir.folder_of(config.paths.out, window.slug))
    found = []
    for each in (built, *built.languages()):
        lang = each.manifest.lang or config.language
        maker = personaliser(config, each.parts(), now=now, preview=True, lang=lang)
        found.append((lang, maker.message(RECIPIENT).data))
    return found


def score(message: bytes, *, executable: str | None = None) -> SpamReport:
    """Run `spamassassin -t -L` on a message and read its report; DigestError when it cannot run."""
    exe = executable or find_spamassassin()
    if exe is None:
        raise DigestError(MISSING)
    with tempfile.TemporaryDirectory(prefix="digest-spam-") as tmp:
        # Its own preferences file: a check leaves the user's ~/.spamassassin alone.
        command = [exe, "-t", "-L", "-p", str(Path(tmp) / "user_prefs")]
        try:
            done = subprocess.run(command, input=message, capture_output=True, timeout=TIMEOUT, check=False)
        except OSError as err:
            raise DigestError(f"{exe}: cannot run SpamAssassin: {err.strerror}") from err
        except subprocess.TimeoutExpired as err:
            raise DigestError(f"{exe}: SpamAssassin gave no answer in {TIMEOUT:.0f} seconds") from err
    output = done.stdout.decode("utf-8", "replace")
    report = parse_report(output)
    if report is None:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DigestError(
            f"{exe}: no report from SpamAssassin (exit {done.returncode}): {' '.join(said[-2:])}"
        )
    return report


_TOTAL = re.compile(r"^Content analysis details:\s+\((-?\d+(?:\.\d+)?) points", re.M)
_ROW = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")


def parse_report(output: str) -> SpamReport | None:
    """The score and rule hits in `spamassassin -t` output ("Content analysis details"); None if absent."""
    total = _TOTAL.search(output)
    if total is None:
        return None
    hits: list[Hit] = []
    lines = output[total.end() :].splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("----")), len(lines))
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        row = _ROW.match(line)
        if row:
            hits.append(Hit(row[2], float(row[1]), row[3].strip()))
        elif hits:  # a description continued on the next line
            last = hits[-1]
            hits[-1] = Hit(last.rule, last.points, f"{last.description} {line.strip()}")
    return SpamReport(float(total[1]), tuple(hits))


def spam_check(config: Config, window: Window, *, now: datetime) -> list[tuple[str, SpamReport]]:
    """Score the message of each language's digest as a send makes it in SpamAssassin (local rules only):
    (language, report), the digest's own language first."""
    exe = find_spamassassin()
    if exe is None:  # before loading the build: installing it is the first thing to do
        raise DigestError(MISSING)
    return [(lang, score(data, executable=exe)) for lang, data in sent_messages(config, window, now=now)]


def spam_findings(report: SpamReport, *, templates_dir: Path | None = None, lang: str = "") -> list[Finding]:
    """A warning for each rule of our own making that adds points (`lang`: a further language's digest,
    named in the message as the lint's findings name it)."""
    where = _template_where(templates_dir)
    said = f"[{lang}] " if lang else ""
    return [
        Finding(
            "warning",
            "spam-score",
            f"{said}SpamAssassin rule {h.rule} adds {h.points:.1f} points: {h.description}",
            where,
            FIXES.get(h.rule, f"find what {h.rule} matches: grep -rn {h.rule} /usr/share/spamassassin/"),
        )
        for h in report.hits
        if h.ours and h.points > 0
    ]


def _template_where(templates_dir: Path | None) -> str:
    if templates_dir is not None and (templates_dir / HTML_TEMPLATE).is_file():
        return f"{templates_dir.name}/{HTML_TEMPLATE} and the [send] settings"
    return f"default/{_templates().joinpath(HTML_TEMPLATE).name} and the [send] settings"
