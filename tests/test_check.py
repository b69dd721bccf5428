"""digest check, end to end: the sample build is clean, the CLI's exit codes, messages and JSON, broken
templates found where they are fixed, and check reads what the build wrote. The rules themselves are tested
on small inline inputs in test_check_rules.py, test_check_html.py and test_check_mjml.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result
from conftest import NOW, REPO, write_item

from digest.build import build
from digest.check import BuiltDigest, check, lint, load_built
from digest.config import Config, load_config
from digest.errors import NotBuilt, OutputError
from digest.window import Window, resolve

Run = Callable[..., Result]
FIXTURES = REPO / "tests" / "fixtures" / "templates"
TITLE = "ILO COOP participates in two parallel events at CSW65"
URL = "https://www.ilo.org/global/topics/cooperatives/news/WCMS_776368/lang--en/index.htm"


def march(config: Config) -> Window:
    return resolve(tz=config.tz, locale=config.language, now=datetime.fromisoformat(NOW), month_="2021-03")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltDigest]:
    """The sample digest of March 2021, built once for the module, as the linter reads it."""
    ws = tmp_path_factory.mktemp("sample")
    shutil.copy(REPO / "digest.toml", ws / "digest.toml")
    shutil.copytree(REPO / "items", ws / "items")
    shutil.copytree(REPO / "templates", ws / "templates")
    config = load_config(ws / "digest.toml", environ={})
    build(config, march(config), now=datetime.fromisoformat(NOW))
    yield load_built(config, march(config))


def test_the_sample_has_no_findings(sample: BuiltDigest) -> None:
    """The passing case of every rule at once: the sample digest, email and web version, is clean."""
    assert sample.web_html and sample.mjml and sample.text
    assert len(sample.items) == 10
    assert lint(sample) == []


def test_check_is_a_library_call(workspace: Path, run: Run) -> None:
    """`digest.check.check` needs no click: a Report of the folder, with its findings."""
    assert run("build", "--month", "2021-03").exit_code == 0
    config = load_config(workspace / "digest.toml", environ={})
    report = check(config, march(config))
    assert (report.folder, report.window, report.findings) == (workspace / "out" / "2021-03", "2021-03", ())
    assert not report.failed(strict=True)


# ---- the command ----


def test_check_the_sample(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--strict")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "check passed (strict): 0 errors, 0 warnings in out/2021-03/" in result.stderr


def test_check_json(workspace: Path, run: Run) -> None:
    run("build", "--month", "2021-03")
    result = run("check", "--month", "2021-03", "--json")
    data = json.loads(result.stdout)
    assert data["passed"] is True and data["findings"] == [] and data["errors"] == 0
    assert data["window"] == "2021-03"


def test_check_before_building(workspace: Path, run: Run) -> None:
    result = run("check", "--month", "2021-03")
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: out/2021-03/ has not been built: run `digest build --month 2021-03` first\n"
    )
    other = run("check", "--since", "2021-03-05", "--until", "2021-03-20", "--out", "elsewhere")
    assert other.stderr == (
        "Error: elsewhere/2021-03-05_2021-03-20/ has not been built: run "
        "`digest build --since 2021-03-05 --until 2021-03-20 --out elsewhere` first\n"
    )
    config = load_config(workspace / "digest.toml", environ={})
    with pytest.raises(NotBuilt) as raised:  # a DigestError of its own, for callers of the library
        check(config, march(config))
    assert raised.value.folder == "out/2021-03"
    assert not (workspace / "out").exists()  # checking builds nothing


@pytest.mark.parametrize(
    ("fixture", "rule", "severity", "where"),
    [
        ("relative-link", "link-relative", "error", "templates/digest.mjml.j2:7"),
        ("unitless-padding", "mjml-padding-zero", "warning", "templates/digest.mjml.j2:6"),
        ("dark-title", "contrast", "error", "templates/digest.mjml.j2:6"),
        ("dark-not-important", "dark-mode-overridden", "warning", "templates/digest.mjml.j2:6"),
        ("no-unsubscribe", "unsubscribe-missing", "error", "templates/digest.mjml.j2"),
        ("read-more", "link-text", "warning", "templates/digest.mjml.j2:6"),
        ("long-lines", "text-width", "warning", "items/"),
    ],
)
def test_check_broken_fixtures(
    workspace: Path, run: Run, fixture: str, rule: str, severity: str, where: str
) -> None:
    """Each broken template fails `check --strict` with the right finding, pointing at the file to fix."""
    for path in (FIXTURES / fixture).iterdir():
        shutil.copy(path, workspace / "templates" / path.name)
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--strict", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["passed"] is False
    hits = [f for f in data["findings"] if f["rule"] == rule]
    assert hits, data["findings"]
    assert {f["severity"] for f in hits} == {severity}
    assert hits[0]["where"].startswith(where)
    assert hits[0]["fix"]
    # without --strict, warnings alone pass
    plain = run("check", "--month", "2021-03")
    assert plain.exit_code == (1 if severity == "error" else 0)
    assert f"{severity}: " in plain.stdout and f"[{rule}]" in plain.stdout
    assert "    where: " in plain.stdout and "    fix:   " in plain.stdout


# ---- check lints what the build wrote, not the workspace as it is now ----


def test_a_bad_item_added_after_the_build_does_not_break_check(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    write_item(workspace / "items", "2021-03-10-bad.md", "---\ntitle: T\ndate: soon\ncategory: News\n---\n")
    write_item(workspace / "items", "2019-01-01-bad.md", "no front matter at all\n")
    assert run("build", "--month", "2021-03").exit_code == 1  # the items are bad indeed
    result = run("check", "--month", "2021-03", "--strict")
    assert result.exit_code == 0, result.output
    assert "check passed (strict): 0 errors, 0 warnings in out/2021-03/" in result.stderr


def test_an_item_edited_after_the_build_creates_no_finding(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    item = next((workspace / "items").glob("2021-03-23-ilo-coop-participates-in-two*.md"))
    item.write_text(item.read_text().replace(TITLE, "A title the build never saw " + "x" * 80))
    result = run("check", "--month", "2021-03", "--strict", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["findings"] == []


def test_a_template_changed_after_the_build_is_not_linted(workspace: Path, run: Run) -> None:
    """The MJML rules read digest.mjml, the MJML that was compiled, not the templates as they are now."""
    assert run("build", "--month", "2021-03").exit_code == 0
    shutil.copy(FIXTURES / "unitless-padding" / "digest.mjml.j2", workspace / "templates" / "digest.mjml.j2")
    assert run("check", "--month", "2021-03", "--strict").exit_code == 0
    assert run("build", "--month", "2021-03").exit_code == 0  # built with it, the check finds it
    result = run("check", "--month", "2021-03", "--json")
    assert [f["rule"] for f in json.loads(result.stdout)["findings"]] == ["mjml-padding-zero"]


def test_the_build_items_come_from_the_manifest(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    config = load_config(workspace / "digest.toml", environ={})
    shutil.rmtree(workspace / "items")
    shutil.rmtree(workspace / "templates")
    parts = load_built(config, march(config))
    assert len(parts.items) == 10
    first = next(i for i in parts.items if i.title == TITLE)
    assert first.url == URL and first.summary and first.source.startswith("items/2021-03-23-")
    assert parts.web_url == "https://example.org/coop-digest/2021-03/"
    out = workspace / "out" / "2021-03"
    assert parts.mjml == (out / "digest.mjml").read_text()
    assert parts.html == (out / "digest.html").read_text()
    assert parts.text == (out / "digest.txt").read_text()
    assert parts.web_html == (out / "index.html").read_text()
    assert parts.unsubscribe_url in parts.html
    assert parts.config_name == "digest.toml"


def test_findings_name_the_config_file_as_given(workspace: Path, run: Run) -> None:
    (workspace / "digest.toml").rename(workspace / "settings.toml")
    config = load_config(workspace / "settings.toml", environ={})
    build(config, march(config), now=datetime.fromisoformat(NOW))
    parts = load_built(config, march(config))
    assert parts.config_name == "settings.toml"
    assert [f.where for f in lint(replace(parts, manifest=replace(parts.manifest, preheader="p" * 101)))] == [
        "settings.toml (preheader)"
    ]


@pytest.mark.parametrize("name", ["digest.html", "digest.txt", "digest.mjml", "index.html"])
def test_a_build_without_a_file_check_reads_asks_for_a_rebuild(workspace: Path, run: Run, name: str) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    (workspace / "out" / "2021-03" / name).unlink()
    result = run("check", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: out/2021-03/{name}: cannot read this file of the build (")
    assert result.stderr.endswith("); build again with `digest build`\n")
    config = load_config(workspace / "digest.toml", environ={})
    with pytest.raises(OutputError):
        check(config, march(config))


def test_a_manifest_without_what_check_reads_asks_for_a_rebuild(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    path = workspace / "out" / "2021-03" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["web_url"]
    path.write_text(json.dumps(manifest))
    result = run("check", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: out/2021-03/manifest.json: not a manifest this digest can read "
        "(missing or malformed field 'web_url'); build again\n"
    )


# ---- the web version (index.html) is linted too ----

WEB_ONLY = """{% extends "default/digest.mjml.j2" %}
{% block footer %}
{{ super() }}
{% if web %}<mj-section><mj-column>
<mj-text><p><a href="#top">Back to the top</a> <img src="{{ web_url }}logo.png"></p></mj-text>
</mj-column></mj-section>{% endif %}
{% endblock %}
"""


def test_a_template_that_breaks_only_the_web_version_fails_check(workspace: Path, run: Run) -> None:
    (workspace / "templates" / "digest.mjml.j2").write_text(WEB_ONLY)
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert [(f["rule"], f["severity"], f["message"].split(":")[0]) for f in findings] == [
        ("img-alt", "error", "index.html"),
        ("link-anchor", "error", "index.html"),
    ]
    assert (
        "the link 'Back to the top' points to #top, which is not in the web version" in findings[1]["message"]
    )
    assert findings[0]["where"] == "templates/digest.mjml.j2:5"
    assert findings[1]["where"] == "templates/digest.mjml.j2:5"


def test_the_web_version_as_written_is_what_is_linted(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    index = workspace / "out" / "2021-03" / "index.html"
    index.write_text(index.read_text().replace("</body>", '<a href="javascript:go()">Go</a></body>'))
    result = run("check", "--month", "2021-03")
    assert result.exit_code == 1
    assert (
        "error: index.html:" in result.stdout
        and "only http(s) and mailto links work in every browser" in (result.stdout)
    )
    # A link with no colour of its own is the browser's blue, dark on the dark page: a contrast warning too.
    assert "check failed: 1 error, " in result.stderr


# ---- issue 9: what real mail clients showed, caught by check ----


def test_the_sample_web_title_bar_has_contrast_in_dark_mode(sample: BuiltDigest) -> None:
    """The web version's title bar was #1f2933 on #15191e (1.20:1) in dark mode."""
    from digest.check import parse_html
    from digest.check.contrast import rule_web_contrast

    assert list(rule_web_contrast(sample, parse_html(sample.web_html))) == []
    assert ".dm-page .muted div" in sample.web_html


def test_a_digest_of_50_items_passes_strict(workspace: Path, run: Run) -> None:
    """Fifty items in three categories, some with bodies and images: `check --strict` finds nothing."""
    shutil.rmtree(workspace / "items")
    for n in range(50):
        day = 1 + n % 28
        body = (
            f"\nA body with *emphasis* and [the report of item {n}](https://example.org/b/{n}).\n"
            if n % 5 == 0
            else ""
        )
        image = f"image: https://example.org/img/{n}.jpg\nimage_alt: Picture {n}\n" if n % 7 == 0 else ""
        write_item(
            workspace / "items",
            f"2021-03-{day:02d}-item-{n}.md",
            f"---\ntitle: Item number {n} of the month\ndate: 2021-03-{day:02d}\n"
            f"category: {['News', 'Events', 'Spotlight Interviews with Co-operators'][n % 3]}\n"
            f"url: https://example.org/news/{n}\n{image}"
            f"summary: What happened in item {n}, told in one or two sentences for the reader.\n---\n{body}",
        )
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--strict", "--json")
    assert json.loads(result.stdout)["findings"] == []
    assert result.exit_code == 0


def test_an_item_with_a_bidi_override_is_named(workspace: Path, run: Run) -> None:
    write_item(
        workspace / "items",
        "2021-03-12-tricky.md",
        '---\ntitle: "Price \u202e001$"\ndate: 2021-03-12\ncategory: News\nsummary: Fine.\n---\n',
    )
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--strict", "--json")
    assert result.exit_code == 1
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["rule"] == "invisible-character"
    assert finding["where"] == "items/2021-03-12-tricky.md (title)"
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in finding["message"]


def test_links_no_reader_can_follow_are_named_with_the_item_s_fix(workspace: Path, run: Run) -> None:
    """A relative or javascript: link in a body shows as its words; a Markdown link typed in the summary
    (plain text) shows as typed: check names the item file and its field, and no misleading template fix."""
    write_item(
        workspace / "items",
        "2021-03-12-links.md",
        "---\ntitle: Links\ndate: 2021-03-12\ncategory: News\n"
        "url: https://coop.example.net/report\n"
        "summary: See [our report](https://coop.example.net/report) for more.\n---\n"
        "Read [about us](/about) and [this](javascript:alert(1)) or [that](https://coop.example.net/ok).\n",
    )
    assert run("build", "--month", "2021-03").exit_code == 0
    html = (workspace / "out" / "2021-03" / "digest.html").read_text(encoding="utf-8")
    assert "[about us]" not in html and "about us" in html and "javascript:" not in html
    result = run("check", "--month", "2021-03", "--json")
    findings = {f["rule"]: f for f in json.loads(result.stdout)["findings"]}
    # The summary's link is not the template's to link; the same address as the item's url is in both parts.
    assert "link-missing-html" not in findings and "link-missing-text" not in findings
    body, summary = findings["item-link"], findings["summary-markdown"]
    assert body["where"] == "items/2021-03-12-links.md (body)"
    assert "links to '/about' (and 1 more)" in body["message"] and "words only" in body["message"]
    assert summary["where"] == "items/2021-03-12-links.md (summary)"
    assert "https://coop.example.net/report" in summary["message"] and "body" in summary["fix"]
