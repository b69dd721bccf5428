"""digest check: every rule fails on a broken digest and passes on a sound one; CLI exit codes and JSON."""

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
from digest.check import BuiltDigest, Finding, display_width, lint, lint_mjml, load_built
from digest.config import load_config
from digest.errors import NotBuilt
from digest.render import default_templates_dir
from digest.window import resolve

Run = Callable[..., Result]
FIXTURES = REPO / "tests" / "fixtures" / "templates"
TITLE = "ILO COOP participates in two parallel events at CSW65"
URL = "https://www.ilo.org/global/topics/cooperatives/news/WCMS_776368/lang--en/index.htm"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltDigest]:
    """The sample digest of March 2021, built once for the module, as the linter reads it."""
    ws = tmp_path_factory.mktemp("sample")
    shutil.copy(REPO / "digest.toml", ws / "digest.toml")
    shutil.copytree(REPO / "items", ws / "items")
    shutil.copytree(REPO / "templates", ws / "templates")
    config = load_config(ws / "digest.toml", environ={})
    now = datetime.fromisoformat(NOW)
    window = resolve(tz=config.tz, locale=config.language, now=now, month_="2021-03")
    build(config, window, now=now)
    yield load_built(config, window)


def found(parts: BuiltDigest) -> dict[str, list[Finding]]:
    by_rule: dict[str, list[Finding]] = {}
    for finding in lint(parts):
        by_rule.setdefault(finding.rule, []).append(finding)
    return by_rule


def with_html(parts: BuiltDigest, snippet: str) -> BuiltDigest:
    """The sample with some HTML added at the end of the body."""
    return replace(parts, html=parts.html.replace("</body>", f"{snippet}</body>"), html_bytes=0)


def test_the_sample_has_no_findings(sample: BuiltDigest) -> None:
    """The passing case of every rule at once: the sample digest, as built, is clean."""
    assert lint(sample) == []


# ---- each rule: a failing case, and a passing case next to it ----


def test_html_size(sample: BuiltDigest) -> None:
    def padded(kb: float) -> BuiltDigest:
        pad = int(kb * 1024) - len(sample.html.encode()) - len("<!---->")
        return with_html(sample, f"<!--{'x' * pad}-->")

    assert [f.severity for f in found(padded(102.5))["html-size"]] == ["error"]
    assert [f.severity for f in found(padded(95))["html-size"]] == ["warning"]
    assert "html-size" not in found(padded(89.9))
    assert "Gmail clips" in found(padded(103))["html-size"][0].message


def test_img_alt(sample: BuiltDigest) -> None:
    missing = found(with_html(sample, '<img src="https://example.org/chart.png">'))["img-alt"]
    assert [f.severity for f in missing] == ["error"]
    assert "chart.png" in missing[0].message and "no alt attribute" in missing[0].message
    empty = found(with_html(sample, '<img src="https://example.org/chart.png" alt="">'))["img-alt"]
    assert [f.severity for f in empty] == ["warning"]
    assert "img-alt" not in found(with_html(sample, '<img src="https://example.org/c.png" alt="A chart">'))
    pixel = '<img src="https://example.org/p.gif" alt="" width="1" height="1">'
    assert "img-alt" not in found(with_html(sample, pixel))


def test_img_alt_points_at_the_item(sample: BuiltDigest) -> None:
    item = replace(sample.items[0], image="https://example.org/photo.jpg")
    parts = with_html(
        replace(sample, items=(item, *sample.items[1:])), '<img src="https://example.org/photo.jpg">'
    )
    finding = found(parts)["img-alt"][0]
    assert finding.where == f"{item.source} (image)"
    assert finding.fix == "give the item an image_alt describing the picture"


def test_img_alt_of_an_item_with_image_alt_points_at_the_template(sample: BuiltDigest) -> None:
    """The item has its alt text: the template that drops it is the place to fix."""
    item = replace(sample.items[0], image="https://example.org/photo.jpg", image_alt="A photo")
    parts = with_html(
        replace(sample, items=(item, *sample.items[1:])), '<img src="https://example.org/photo.jpg">'
    )
    finding = found(parts)["img-alt"][0]
    assert finding.where.startswith("templates/digest.mjml.j2:")
    assert "{{ item.image_alt }}" in finding.fix


@pytest.mark.parametrize(
    ("href", "rule"),
    [
        ("", "link-empty"),
        ("   ", "link-empty"),
        ("archive.html", "link-relative"),
        ("/archive/", "link-relative"),
        ("javascript:alert(1)", "link-scheme"),
        ("ftp://example.org/file", "link-scheme"),
        ("#nowhere", "link-anchor"),
    ],
)
def test_bad_links(sample: BuiltDigest, href: str, rule: str) -> None:
    findings = found(with_html(sample, f'<a href="{href}">Somewhere</a>'))
    assert [f.severity for f in findings[rule]] == ["error"]
    assert not {"link-empty", "link-relative", "link-scheme", "link-anchor"} - {rule} & findings.keys()


@pytest.mark.parametrize(
    "href", ["https://example.org/a", "http://example.org/b", "mailto:news@example.org", "#news"]
)
def test_good_links(sample: BuiltDigest, href: str) -> None:
    findings = found(with_html(sample, f'<a href="{href}">Somewhere</a>'))
    assert not {"link-empty", "link-relative", "link-scheme", "link-anchor"} & findings.keys()


def test_an_anchor_without_href_is_empty(sample: BuiltDigest) -> None:
    assert "link-empty" in found(with_html(sample, "<a>Nowhere</a>"))


def test_link_text_repeated_for_different_targets(sample: BuiltDigest) -> None:
    links = "".join(f'<a href="https://example.org/{n}">Read more</a>' for n in range(3))
    finding = found(with_html(sample, links))["link-text"]
    assert len(finding) == 1 and finding[0].severity == "warning"
    assert "'Read more' is used for 3 different addresses" in finding[0].message
    # the same text for the same address is fine (a title link and its "Read more" may repeat)
    same = '<a href="https://example.org/1">Read more</a>' * 2
    assert "link-text" not in found(with_html(sample, same))


def test_item_missing_from_the_text_part(sample: BuiltDigest) -> None:
    text = sample.text.replace(TITLE, "Something else")
    finding = found(replace(sample, text=text))["item-missing-text"]
    assert len(finding) == 1 and TITLE[:40] in finding[0].message
    assert finding[0].where.endswith("digest.txt.j2")


def test_item_missing_from_the_html(sample: BuiltDigest) -> None:
    html = sample.html.replace(TITLE, "Something else")
    finding = found(replace(sample, html=html))["item-missing-html"]
    assert len(finding) == 1 and finding[0].where.endswith("digest.mjml.j2")


def test_a_title_only_in_the_hidden_preheader_does_not_count(sample: BuiltDigest) -> None:
    first = sample.items[0].title
    html = sample.html.replace(first, "Something else")
    hidden = html.replace("<body", f'<body><div style="display:none">{first}</div', 1)
    assert "item-missing-html" in found(replace(sample, html=hidden))


def test_link_missing_from_the_text_part(sample: BuiltDigest) -> None:
    finding = found(replace(sample, text=sample.text.replace(URL, "")))["link-missing-text"]
    assert len(finding) == 1 and finding[0].severity == "warning"
    assert finding[0].where.endswith("digest.txt.j2")


def test_link_in_the_text_part_missing_from_the_html(sample: BuiltDigest) -> None:
    text = sample.text + "\nSee also https://example.org/elsewhere.\n"
    finding = found(replace(sample, text=text))["link-missing-html"]
    assert len(finding) == 1 and "https://example.org/elsewhere" in finding[0].message


def test_markdown_links_in_the_text_part_are_read_whole(sample: BuiltDigest) -> None:
    parts = with_html(sample, '<a href="https://example.org/x_(y)">x</a>')
    parts = replace(parts, text=parts.text + "\nSee [x](https://example.org/x_(y)).\n")
    assert "link-missing-html" not in found(parts) and "link-missing-text" not in found(parts)


def test_text_width(sample: BuiltDigest) -> None:
    long = "word " * 16 + "wordy"  # 85 columns
    finding = found(replace(sample, text=sample.text + long + "\n"))["text-width"]
    assert len(finding) == 1 and "85 columns" in finding[0].message
    exact = "x" * 70 + " " + "y" * 7  # 78 columns
    assert "text-width" not in found(replace(sample, text=sample.text + exact + "\n"))
    url_line = "   https://example.org/" + "a" * 90
    assert "text-width" not in found(replace(sample, text=sample.text + url_line + "\n"))


def test_text_width_counts_wide_characters_twice(sample: BuiltDigest) -> None:
    assert display_width("日本") == 4
    cjk = "日本語" * 14  # 42 characters, 84 columns
    assert "text-width" in found(replace(sample, text=sample.text + cjk + "\n"))
    assert "text-width" not in found(replace(sample, text=sample.text + "日本語" * 13 + "\n"))


def test_text_width_points_at_the_item(sample: BuiltDigest, tmp_path: Path) -> None:
    item = sample.items[0]
    line = "   " + item.summary[:90]
    finding = found(replace(sample, text=sample.text + line + "\n"))["text-width"][0]
    assert finding.where == f"{item.source} (summary) (shown by templates/digest.txt.j2)"


def test_subject_and_preheader_length(sample: BuiltDigest) -> None:
    assert "subject-length" in found(replace(sample, subject="s" * 79))
    assert "subject-length" not in found(replace(sample, subject="s" * 78))
    assert "preheader-length" in found(replace(sample, preheader="p" * 101))
    assert "preheader-length" not in found(replace(sample, preheader="p" * 100))
    assert found(replace(sample, subject="s" * 79))["subject-length"][0].where == "digest.toml (subject)"


def test_unsubscribe_missing(sample: BuiltDigest) -> None:
    html = sample.html.replace(sample.unsubscribe_url, "https://example.org/").replace(">Unsubscribe<", "><")
    findings = found(replace(sample, html=html))["unsubscribe-missing"]
    assert [f.message for f in findings] == ["the HTML has no unsubscribe link"]
    text = "\n".join(line for line in sample.text.splitlines() if "nsubscribe" not in line)
    findings = found(replace(sample, text=text))["unsubscribe-missing"]
    assert [f.message for f in findings] == ["the text part has no unsubscribe link"]


def test_an_unsubscribe_link_of_your_own_counts(sample: BuiltDigest) -> None:
    html = sample.html.replace(sample.unsubscribe_url, "https://lists.example.org/leave?id=1")
    assert "unsubscribe-missing" not in found(replace(sample, html=html))


def test_web_version_link_missing(sample: BuiltDigest) -> None:
    html = sample.html.replace(sample.web_url, "https://example.org/elsewhere/")
    findings = found(replace(sample, html=html))["web-link-missing"]
    assert [f.message for f in findings] == [f"the HTML has no link to the web version ({sample.web_url})"]
    text = sample.text.replace(sample.web_url, "")
    findings = found(replace(sample, text=text))["web-link-missing"]
    assert [f.message for f in findings] == [
        f"the text part has no link to the web version ({sample.web_url})"
    ]


MJML_OK = """<mjml>
  <mj-head>
    <mj-attributes><mj-all font-family="Arial" /><mj-text color="#000" padding="0" /></mj-attributes>
    <mj-style>a { color: red; }</mj-style>
    <mj-raw><meta name="color-scheme" content="light dark"></mj-raw>
  </mj-head>
  <mj-body width="600px" css-class="page">
    <mj-section padding="0"><mj-column>
      <mj-text><p>Text with <b>HTML</b> and <mj-whatever> inside is not MJML</p></mj-text>
      <mj-image src="https://example.org/a.png" alt="A" width="100px" />
    </mj-column></mj-section>
  </mj-body>
</mjml>"""


def test_mjml_sound() -> None:
    assert lint_mjml(MJML_OK) == []


@pytest.mark.parametrize(
    ("broken", "rule", "words"),
    [
        ("<mj-text>", "<mj-txt>", "unknown MJML tag <mj-txt> (did you mean <mj-text>?)"),
        ("<mj-text>", '<mj-text colr="red">', "<mj-text> has no attribute 'colr' (did you mean 'color'?)"),
        ('alt="A" ', "", "<mj-image> without alt text"),
        (
            '<mj-section padding="0"><mj-column>',
            "<mj-column><mj-section>",
            "<mj-column> cannot be inside <mj-body>",
        ),
        ("<mj-text><p>", "<div>x</div><mj-text><p>", "<div> directly inside <mj-column>"),
    ],
)
def test_mjml_broken(broken: str, rule: str, words: str) -> None:
    source = MJML_OK.replace(broken, rule, 1)
    if rule == "<mj-txt>":
        source = source.replace("</mj-text>", "</mj-txt>", 1)
    problems = lint_mjml(source)
    assert any(words in p[3] for p in problems), problems


def test_mjml_findings_name_the_template_line(sample: BuiltDigest, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(FIXTURES / "unknown-tag", templates)
    mjml = sample.mjml.replace(
        "</mj-body>", "<mj-section><mj-column><mj-txt>Hi</mj-txt></mj-column></mj-section></mj-body>"
    )
    finding = found(replace(sample, mjml=mjml, templates_dir=templates, root=tmp_path))["mjml-unknown-tag"][0]
    assert finding.severity == "error"
    assert finding.where == "templates/digest.mjml.j2:7"
    assert finding.message.startswith("line ")


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
    assert result.stderr == (
        "Error: out/2021-03/ has not been built: run `digest build` for this window first\n"
    )
    config = load_config(workspace / "digest.toml", environ={})
    window = resolve(tz=config.tz, locale=config.language, now=datetime.fromisoformat(NOW), month_="2021-03")
    with pytest.raises(NotBuilt) as raised:  # a DigestError of its own, for callers of the library
        load_built(config, window)
    assert raised.value.folder == "out/2021-03"


@pytest.mark.parametrize(
    ("fixture", "rule", "severity", "where"),
    [
        ("relative-link", "link-relative", "error", "templates/digest.mjml.j2:7"),
        ("unknown-tag", "mjml-unknown-tag", "error", "templates/digest.mjml.j2:7"),
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


def test_where_names_the_packaged_default_when_the_workspace_has_no_template(
    sample: BuiltDigest, tmp_path: Path
) -> None:
    parts = replace(sample, text=sample.text.replace(TITLE, "Something else"), templates_dir=tmp_path)
    finding = found(parts)["item-missing-text"][0]
    assert finding.where == "default/digest.txt.j2 (the packaged default: copy it to templates/ to change it)"


def test_template_tries_each_needle_in_order(sample: BuiltDigest, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text(
        "{# needle-one here is a comment #}\nx\nneedle-two\nneedle-one\n"
    )
    parts = replace(sample, templates_dir=templates, root=tmp_path)
    assert parts.template("digest.txt.j2", "needle-one", "needle-two") == "templates/digest.txt.j2:4"
    assert parts.template("digest.txt.j2", "absent", "needle-two") == "templates/digest.txt.j2:3"
    assert parts.template("digest.txt.j2", "absent") == "templates/digest.txt.j2"
    assert parts.template("digest.txt.j2") == "templates/digest.txt.j2"
    # a needle only the packaged default has: the default, with its line
    default = (default_templates_dir() / "digest.txt.j2").read_text()
    line = next(n for n, text in enumerate(default.splitlines(), 1) if "{{ intro" in text)
    assert parts.template("digest.txt.j2", "absent", "{{ intro") == (
        f"default/digest.txt.j2:{line} (the packaged default: copy it to templates/ to change it)"
    )


def test_a_long_subject_line_in_the_text_points_at_the_config(sample: BuiltDigest) -> None:
    subject = "A subject that is much too long for the first line of the text part of the digest, surely"
    parts = replace(sample, subject=subject + " x", text=f"{subject} x\n{sample.text}")
    assert found(parts)["text-width"][0].where == "digest.toml (subject)"


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
    shutil.copy(FIXTURES / "unknown-tag" / "digest.mjml.j2", workspace / "templates" / "digest.mjml.j2")
    assert run("check", "--month", "2021-03", "--strict").exit_code == 0
    assert run("build", "--month", "2021-03").exit_code == 0  # built with it, the check finds it
    result = run("check", "--month", "2021-03", "--json")
    assert [f["rule"] for f in json.loads(result.stdout)["findings"]] == ["mjml-unknown-tag"]


def test_the_build_items_come_from_the_manifest(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    config = load_config(workspace / "digest.toml", environ={})
    window = resolve(tz=config.tz, locale=config.language, now=datetime.fromisoformat(NOW), month_="2021-03")
    manifest = json.loads((workspace / "out" / "2021-03" / "manifest.json").read_text())
    assert set(manifest["items"][0]) == {
        *("slug", "title", "date", "category", "url", "source"),  # as before
        *("summary", "body", "image", "image_alt"),  # for check
    }
    shutil.rmtree(workspace / "items")
    parts = load_built(config, window)
    assert len(parts.items) == 10
    first = next(i for i in parts.items if i.title == TITLE)
    assert first.url == URL and first.summary and first.source.startswith("items/2021-03-23-")
    assert parts.web_url == "https://example.org/coop-digest/2021-03/"
    assert parts.mjml == (workspace / "out" / "2021-03" / "digest.mjml").read_text()


def test_a_build_without_what_check_reads_asks_for_a_rebuild(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    out = workspace / "out" / "2021-03"
    (out / "digest.mjml").unlink()
    result = run("check", "--month", "2021-03")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: out/2021-03/: digest.mjml is missing: run `digest build` for this window again\n",
    )
    assert run("build", "--month", "2021-03").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["web_url"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = run("check", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: out/2021-03/manifest.json lacks what `digest check` reads ('web_url'): "
        "it was written by an older digest; run `digest build` for this window again\n"
    )
