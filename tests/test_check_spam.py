"""digest check --spam: SpamAssassin (local rules) on the message as it is sent.

The tests that run SpamAssassin skip when it is not installed, unless DIGEST_REQUIRE_TOOLS=1 (CI sets it):
then a missing spamassassin fails them. The variable is read at import, before conftest's isolated_env
clears the DIGEST_* variables of each test.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from conftest import require_tool, write_item

from digest.check.spam import (
    RECIPIENT,
    Hit,
    SpamReport,
    find_spamassassin,
    parse_report,
    score,
    sent_messages,
    spam_findings,
)
from digest.config import load_config
from digest.errors import DigestError
from digest.window import resolve

Run = Callable[..., Result]
SECRET = "s" * 40
NOW = datetime(2021, 4, 15, 12, tzinfo=UTC)

OUTPUT = """From: a@example.org
Subject: x

Content analysis details:   (2.4 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
-0.0 NO_RECEIVED            Informational: message has no Received headers
 0.7 HTML_FONT_LOW_CONTRAST BODY: HTML font color similar or identical to
                            background
 1.5 GB_CUSTOM_HTM_URI      Custom html uri
-1.0 ALL_TRUSTED            Passed through trusted hosts only via SMTP
-0.5 OWN_BONUS              A rule of ours that takes points away
 0.1 DKIM_SIGNED            Message has a DKIM or DK signature, not necessarily valid

 0.9 AFTER_THE_TABLE        not part of it
"""


@pytest.fixture
def spamassassin() -> str:
    """The spamassassin command; skip (or, with DIGEST_REQUIRE_TOOLS=1, fail) when it is not installed."""
    found = find_spamassassin()
    require_tool(
        found, "spamassassin is not installed (apt-get install --no-install-recommends spamassassin)"
    )
    assert found is not None
    return found


def test_the_report_is_read_with_wrapped_descriptions_and_signs() -> None:
    report = parse_report(OUTPUT)
    assert report is not None
    assert report.score == 2.4
    assert [(h.rule, h.points) for h in report.hits] == [
        ("NO_RECEIVED", -0.0),
        ("HTML_FONT_LOW_CONTRAST", 0.7),
        ("GB_CUSTOM_HTM_URI", 1.5),
        ("ALL_TRUSTED", -1.0),
        ("OWN_BONUS", -0.5),
        ("DKIM_SIGNED", 0.1),
    ]
    assert report.hits[1].description == "BODY: HTML font color similar or identical to background"
    assert parse_report("From: a@example.org\n\nno report here\n") is None


def test_ours_and_the_environments() -> None:
    report = parse_report(OUTPUT)
    assert report is not None
    assert [h.rule for h in report.hits if h.ours] == [
        "HTML_FONT_LOW_CONTRAST",
        "GB_CUSTOM_HTM_URI",
        "OWN_BONUS",
    ]
    assert report.own_points == 2.2  # a rule of ours taking points away does not hide another's
    for rule in [
        "RDNS_NONE",
        "SPF_NONE",
        "T_SPF_HELO_TEMPERROR",
        "DKIM_ADSP_NXDOMAIN",
        "RCVD_IN_DNSWL_NONE",
        "DMARC_NONE",
        "URIBL_BLOCKED",
        "DATE_IN_PAST_03_06",
        "HTML_MESSAGE",
        "NO_RELAYS",
    ]:
        assert not Hit(rule, 1.0, "").ours, rule
    for rule in ["MISSING_MID", "HTML_IMAGE_ONLY_08", "MIME_HTML_ONLY", "FREEMAIL_REPLYTO", "SUBJ_ALL_CAPS"]:
        assert Hit(rule, 1.0, "").ours, rule
    assert SpamReport(0.0, ()).own_points == 0


def test_findings_are_the_own_rules_that_add_points() -> None:
    report = parse_report(OUTPUT)
    assert report is not None
    findings = spam_findings(report)
    assert [(f.severity, f.rule) for f in findings] == [("warning", "spam-score")] * 2
    low, uri = findings
    assert low.message == (
        "SpamAssassin rule HTML_FONT_LOW_CONTRAST adds 0.7 points: "
        "BODY: HTML font color similar or identical to background"
    )
    assert low.fix.startswith("do not hide text by giving it the background's colour")
    assert uri.fix.startswith("keep the recipient's address out of links")
    assert low.where == "default/digest.mjml.j2 and the [send] settings"
    (other,) = spam_findings(SpamReport(1.0, (Hit("SUBJ_ALL_CAPS", 1.0, "Subject is all capitals"),)))
    assert other.fix == "find what SUBJ_ALL_CAPS matches: grep -rn SUBJ_ALL_CAPS /usr/share/spamassassin/"


def test_low_contrast_text_is_scored(spamassassin: str) -> None:
    message = (
        b"From: News <news@example.org>\r\nTo: reader@example.com\r\nSubject: Monthly news\r\n"
        b"Date: Thu, 15 Apr 2021 12:00:00 +0000\r\nMessage-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/html; charset="utf-8"\r\n\r\n'
        b'<html><body style="background:#ffffff"><p>The news of the month, in a few lines of text.</p>'
        b'<div style="color:#ffffff">hidden words hidden words hidden words</div></body></html>\r\n'
    )
    report = score(message, executable=spamassassin)
    hits = {h.rule: h for h in report.hits}
    assert "HTML_FONT_LOW_CONTRAST" in hits and hits["HTML_FONT_LOW_CONTRAST"].ours
    assert hits["HTML_FONT_LOW_CONTRAST"].points > 0
    assert "NO_RELAYS" in hits and not hits["NO_RELAYS"].ours


def configure_sending(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample with the send settings of a real list: a one-click unsubscribe URL and its secret."""
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_URL", "https://example.org/unsubscribe?u={token}")
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_SECRET", SECRET)


def test_the_message_scored_is_the_sent_one(
    workspace: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_sending(workspace, monkeypatch)
    assert run("build", "--month", "2021-03").exit_code == 0
    config = load_config(workspace / "digest.toml")
    window = resolve(tz=config.tz, locale=config.language, now=NOW, month_="2021-03")
    (lang, data), *others = sent_messages(config, window, now=NOW)
    assert (lang, others) == ("en", [])
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["To"] == RECIPIENT and msg["From"] == "Co-operative News <news@example.org>"
    assert msg["List-Unsubscribe"].startswith("<https://example.org/unsubscribe?u=")
    assert "PREVIEW" not in str(msg["List-Unsubscribe"])  # the real token, not the build's stand-in
    assert msg.get_content_type() == "multipart/alternative"


def test_each_language_s_message_is_scored(
    workspace: Path, run: Run, monkeypatch: pytest.MonkeyPatch, spamassassin: str
) -> None:
    """A French subscriber gets another message (its words, its subject, its greeting): it is scored too,
    and named as the lint names a further language's findings."""
    configure_sending(workspace, monkeypatch)
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write('\n[languages.fr]\ntitle = "Actualités coopératives"\n')
    write_item(
        workspace / "items",
        "fr-1.md",
        "---\ntitle: Une nouvelle\ndate: 2021-03-12\ncategory: News\nlang: fr\nsummary: Du nouveau.\n---\n",
    )
    assert run("build", "--month", "2021-03").exit_code == 0
    config = load_config(workspace / "digest.toml")
    window = resolve(tz=config.tz, locale=config.language, now=NOW, month_="2021-03")
    messages = sent_messages(config, window, now=NOW)
    assert [lang for lang, _ in messages] == ["en", "fr"]
    french = email.message_from_bytes(messages[1][1], policy=email.policy.default)
    assert french["Subject"] == "Actualités coopératives: mars 2021"
    result = run("check", "--month", "2021-03", "--spam")
    assert result.exit_code == 0, result.stderr
    assert "\nspamassassin: " in result.stderr and "\nspamassassin [fr]: " in result.stderr
    report = SpamReport(5.0, (Hit("HTML_FONT_LOW_CONTRAST", 1.5, "low contrast"),))
    assert [f.message for f in spam_findings(report, lang="fr")] == [
        "[fr] SpamAssassin rule HTML_FONT_LOW_CONTRAST adds 1.5 points: low contrast"
    ]


def test_the_sample_scores_no_points_of_our_own(
    workspace: Path, run: Run, monkeypatch: pytest.MonkeyPatch, spamassassin: str
) -> None:
    configure_sending(workspace, monkeypatch)
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--spam", "--json")
    assert "of our own making" in result.stderr
    spam = [f["message"] for f in json.loads(result.stdout)["findings"] if f["rule"] == "spam-score"]
    assert spam == []


def test_check_spam_lists_every_hit(workspace: Path, run: Run, spamassassin: str) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--spam")
    assert (
        "NO_RELAYS: Informational: message was not relayed via SMTP  (environment, not ours)" in result.stderr
    )
    assert "spamassassin: " in result.stderr and " points, " in result.stderr


def test_check_spam_without_spamassassin_says_how_to_install_it(
    workspace: Path, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = run("check", "--month", "2021-03", "--spam")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --spam needs SpamAssassin, which is not installed (no spamassassin on the PATH): "
        "apt-get install --no-install-recommends spamassassin (Debian), then run the check again\n"
    )
    assert run("check", "--month", "2021-03").exit_code == 0  # without --spam it is not needed


def test_a_command_that_gives_no_report_is_an_error(tmp_path: Path) -> None:
    fake = tmp_path / "not-spamassassin"
    fake.write_text("#!/bin/sh\necho 'starting' >&2\necho 'oops:' >&2\necho 'no rules' >&2\nexit 2\n")
    fake.chmod(0o755)
    with pytest.raises(
        DigestError, match=rf"^{fake}: no report from SpamAssassin \(exit 2\): oops: no rules$"
    ):
        score(b"Subject: x\r\n\r\nx\r\n", executable=str(fake))
    with pytest.raises(DigestError, match=rf"^{tmp_path}: cannot run SpamAssassin: Permission denied$"):
        score(b"x", executable=str(tmp_path))


def test_spam_check_says_what_is_missing_before_anything_else(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from digest.check.spam import MISSING, spam_check

    monkeypatch.setenv("PATH", str(tmp_path))  # no spamassassin; and the window is not built either
    config = load_config(workspace / "digest.toml")
    window = resolve(tz=config.tz, locale=config.language, now=NOW, month_="2021-03")
    with pytest.raises(DigestError) as raised:
        spam_check(config, window, now=NOW)
    assert str(raised.value) == MISSING


def test_own_points_fail_a_strict_check(workspace: Path, run: Run, spamassassin: str) -> None:
    template = workspace / "templates" / "digest.mjml.j2"
    text = template.read_text(encoding="utf-8")
    hidden = '<p style="color:#ffffff">words nobody sees, words nobody sees, words nobody sees</p>'
    template.write_text(text.replace("<mj-text>", "<mj-text>" + hidden, 1), encoding="utf-8")
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--spam", "--strict", "--json")
    assert result.exit_code == 1
    spam = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "spam-score"]
    assert [f["message"].split(" adds ")[0] for f in spam] == ["SpamAssassin rule HTML_FONT_LOW_CONTRAST"]
    assert "HTML_FONT_LOW_CONTRAST: BODY: HTML font color similar" in result.stderr
