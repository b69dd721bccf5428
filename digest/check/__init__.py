"""digest check: a built digest (out/<slug>/) -> findings, what a subscriber or a mail client would trip over.

Each finding has a severity (error or warning), a rule id, what is wrong, where to fix it (an item file
or a template, with a line when one can be found) and how. `check` exits non-zero on errors, and with
--strict on warnings too.

What is linted is what the build wrote, and only that: digest.html (the email as sent, preview values
filled in), digest.txt, digest.mjml (the MJML that was compiled), index.html (the web version), and from
manifest.json the subject, the preheader, the web version's address and the items as they were built.
items/ is not read (an item file added or edited since the build changes nothing); the templates folder
only serves to name the template file and line where a finding is fixed.

The package follows the data: built.py reads the folder, html.py parses the HTML, digest.mjmlschema lints
the MJML, rules.py holds the rules, report.py the findings and their report; features.py names the
caniemail features the email uses and clients.py looks them up in the caniemail data for [check] clients;
spam.py scores a sent-shape message in SpamAssassin (`digest check --spam`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from digest import outdir
from digest.check.built import BuiltDigest, load_built
from digest.check.clients import client_findings
from digest.check.html import Doc, Image, Link, parse_html
from digest.check.report import Finding, Report, Severity, format_report
from digest.check.rules import RULES, WEB_RULES
from digest.config import Config
from digest.mjmlschema import MjmlProblem, lint_mjml
from digest.plaintext import display_width
from digest.window import Window

__all__ = [
    "BuiltDigest",
    "Doc",
    "Finding",
    "Image",
    "Link",
    "MjmlProblem",
    "Report",
    "Severity",
    "check",
    "client_findings",
    "display_width",
    "format_report",
    "lint",
    "lint_mjml",
    "load_built",
    "parse_html",
]


def check(config: Config, window: Window) -> Report:
    """Lint the built digest of a window; NotBuilt when it has not been built, OutputError when damaged."""
    parts = load_built(config, window)
    folder = outdir.folder_of(config.paths.out, window.slug)
    findings = lint(parts, clients=config.check.clients)
    # Each further language's digest is held to the same rules; its findings say which one they are about.
    for lang in parts.manifest.languages:
        other = load_built(config, window, lang=lang)
        for f in lint(other, clients=config.check.clients):
            findings.append(replace(f, message=f"[{lang}] {f.message}"))
    return Report(folder=folder, window=window.slug, findings=tuple(findings))


def lint(parts: BuiltDigest, *, clients: Iterable[str] = ()) -> list[Finding]:
    """Every rule over the parts, in a stable order: the email's, the client support of the email's features
    for `clients` (none: not looked up), then the web version's."""
    findings: list[Finding] = []
    email = parse_html(parts.html)
    for rule in RULES:
        findings.extend(rule(parts, email))
    clients = tuple(clients)
    if clients:
        findings.extend(client_findings(parts, clients))
    web = parse_html(parts.web_html)
    for rule in WEB_RULES:
        findings.extend(rule(parts, web))
    return findings
