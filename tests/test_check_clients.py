"""digest check, client support: the features the email uses, looked up in the caniemail data.

Inline HTML against the shipped data (what a team's template would meet) and against small data made here
(to pin the rules: the latest result counts, partial support is said with its note), then the sample.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import REPO
from test_check_rules import HTML, digest, with_html

from digest.check import lint
from digest.check.clients import (
    DATA_FILE,
    CanIEmail,
    Client,
    client_findings,
    features,
    load_data,
    resolve_clients,
)
from digest.errors import DigestError

Run = Callable[..., Result]
DEFAULT = ("gmail", "outlook-windows", "outlook-com", "apple-mail", "ios-mail", "yahoo")
PAGE = """<!doctype html>
<html lang="en"><head><style>
@media (prefers-color-scheme: dark) { .card > p { color: #eee !important } }
@media only screen and (max-width: 480px) { td.pad a { padding-left: 16px } }
</style></head><body>
<div style="display:flex; width:100%">x</div>
<p><a href="#one">One</a> <a href="#two">Two</a></p>
<a name="two"></a><h2 id="two">Two</h2>
<h2 id="one">One</h2>
<img src="https://example.org/p/pic.WEBP?x=1" alt="A picture">
</body></html>
"""


def small_data(
    stats: dict[str, Any], notes: dict[str, str] | None = None, slug: str = "css-display-flex"
) -> CanIEmail:
    """Caniemail data with one feature (and the client names the real data has)."""
    real = load_data()
    feature = {"slug": slug, "title": "The feature", "stats": stats, "notes_by_num": notes or {}}
    return CanIEmail("2024-01-02 03:04:05 +0000", {slug: feature}, real.families, real.platforms)


# ---- the data ----


def test_the_shipped_data_is_caniemail_with_its_licence_beside_it() -> None:
    raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    assert {"api_version", "last_update_date", "nicenames", "data"} <= set(raw)
    data = load_data()
    assert len(data.features) > 250 and "html-anchor-links" in data.features
    licence = DATA_FILE.with_name("caniemail.LICENSE").read_text(encoding="utf-8")
    assert "Copyright (c) 2019 HTeuMeuLeu" in licence and "MIT License" in licence


def test_damaged_data_is_a_digest_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "caniemail.json"
    bad.write_text('{"data": []}', encoding="utf-8")
    with pytest.raises(DigestError, match=rf"^{bad}: not the caniemail data \('last_update_date'\)"):
        load_data(bad)


def test_the_latest_result_counts_and_notes_are_read() -> None:
    data = small_data({"outlook": {"windows": {"2007": "y", "2019": "a #2"}}}, {"2": "Only on tables."})
    support = data.support("css-display-flex", Client("outlook", "windows", "Outlook Windows"))
    assert support is not None
    assert (support.status, support.notes, support.version) == ("a", ("Only on tables.",), "2019")
    assert data.support("css-display-flex", Client("gmail", "ios", "Gmail iOS")) is None
    assert data.support("css-no-such-thing", Client("outlook", "windows", "Outlook Windows")) is None


# ---- the client names ----


def test_client_names_aliases_families_and_platforms() -> None:
    data = load_data()
    names = [c.name for c in resolve_clients(DEFAULT, data)]
    assert names == [
        "Gmail Desktop Webmail",
        "Gmail iOS",
        "Gmail Android",
        "Outlook Windows",
        "Outlook.com",
        "Apple Mail macOS",
        "Apple Mail iOS",
        "Yahoo! Mail Desktop Webmail",
        "Yahoo! Mail iOS",
        "Yahoo! Mail Android",
    ]
    assert [(c.family, c.platform) for c in resolve_clients(["gmail.ios", "gmail.ios"], data)] == [
        ("gmail", "ios")
    ]
    whole = {(c.family, c.platform) for c in resolve_clients(["gmail"], data)}
    family = {(c.family, c.platform) for c in resolve_clients(["gmail.*"], data)}
    assert ("gmail", "mobile-webmail") in family - whole  # the alias leaves out Gmail's old mobile web
    assert family == {(c.family, c.platform) for c in resolve_clients(["gmail.*"], data)}
    assert {c.platform for c in resolve_clients(["thunderbird"], data)} >= {"macos", "windows"}


@pytest.mark.parametrize("name", ["hotmail", "gmail.windows", "outlook.", "ios"])
def test_an_unknown_client_is_an_error_naming_the_setting(name: str) -> None:
    with pytest.raises(
        DigestError, match=rf"^\[check\] clients: unknown mail client '{name}'; use one of gmail"
    ):
        resolve_clients(["gmail", name], load_data())


# ---- what the HTML uses ----


def test_features_of_inline_html() -> None:
    found = features(PAGE)
    assert found["css-display-flex"].example == "display:flex"
    assert found["css-display-flex"].line == 6
    assert found["css-at-media-prefers-color-scheme"].line == 3
    assert found["css-at-media"].line == 3
    assert found["css-important"].line == 3
    assert found["css-selector-child"].example == ".card > p"
    assert found["css-selector-descendant"].example == "td.pad a"
    assert found["css-padding"].example == "padding-left:16px"  # a side of padding is padding
    assert found["css-unit-percent"].line == 6
    assert found["css-unit-px"].line == 4
    assert found["image-webp"].example == '<img src="https://example.org/p/pic.WEBP?x=1">'
    assert found["html-anchor-links:id"].example == '<a href="#one">'  # #two has an <a name>
    assert found["html-anchor-links"].example == '<a href="#two">'
    assert {"html-doctype", "html-lang", "html-h1-h6", "html-style", "html-div", "html-img"} <= set(found)
    assert "css-display-none" not in found and "html-width" not in found
    assert features("") == {}
    assert features("<!-- nothing -->") == {}


def test_features_of_elements_and_attributes() -> None:
    found = features(
        '<table cellpadding="0" width="10"><tr><td valign="top" align="left">'
        '<ul><li><a href="mailto:a@example.org">a</a></li></ul><form><input name="q"><button>Go</button></form>'
        '<svg></svg><video></video><img src="data:image/png;base64,AAAA" srcset="a.png 2x">'
        '<img src="logo.jpeg"><map name="m"></map><section>s</section>'
        '<meta name="color-scheme" content="light dark"></td></tr></table>'
    )
    for slug in [
        "html-cellpadding",
        "html-width",
        "html-valign",
        "html-align",
        "html-lists",
        "html-mailto-links",
        "html-form",
        "html-input-text",
        "html-button-submit",
        "html-svg",
        "html-video",
        "image-base64",
        "html-srcset",
        "image-jpg",
        "html-image-maps",
        "html-semantics",
        "html-meta-color-scheme",
    ]:
        assert slug in found, slug
    assert "image-png" not in found  # a data: URI is base64, whatever its type


def test_features_in_css_values_and_at_rules() -> None:
    found = features(
        "<html><head><style>/* a comment\n */ @import url(x.css);\n"
        "@font-face { font-family: X }\n"
        ":root { --c: red }\np + p ~ p, * [data-x] { width: calc(100% - var(--c)); color: rgb(1,2,3) }\n"
        "a:hover::before { margin: clamp(1px, 2vw, 3px) }\n"
        "@media (orientation: landscape) { p { display: grid; position: relative } }\n"
        "</style></head><body><p style='max-width: min(100%, 10em)'>x</p></body></html>"
    )
    expected = {
        "css-at-import": 2,
        "css-at-font-face": 3,
        "css-selector-adjacent-sibling": 5,
        "css-selector-general-sibling": 5,
        "css-selector-grouping": 5,
        "css-selector-universal": 5,
        "css-selector-attribute": 5,
        "css-unit-calc": 5,
        "css-variables": 5,
        "css-rgb": 5,
        "css-pseudo-class-hover": 6,
        "css-pseudo-element-before": 6,
        "css-function-clamp": 6,
        "css-unit-vw": 6,
        "css-at-media-orientation": 7,
        "css-display-grid": 7,
        "css-position": 7,
        "css-function-min": 8,
        "css-unit-em": 8,
    }
    assert {slug: found[slug].line for slug in expected if slug in found} == expected
    assert "css-function-max" not in found and "css-rgba" not in found


# ---- the findings ----


def test_anchors_by_id_only_warn_naming_the_clients_and_the_fix() -> None:
    findings = client_findings(digest(), DEFAULT)  # HTML: <h2 id="news"> and no link to it
    assert findings == []
    parts = with_html('<p><a href="#news">News</a></p>')
    (finding,) = client_findings(parts, DEFAULT)
    assert finding.severity == "warning" and finding.rule == "client-support"
    assert finding.message.startswith(
        'Local anchors (<a href="#news">, line 9 of digest.html): in-page links whose target is only an '
        "`id` go nowhere in Gmail Desktop Webmail, Outlook Windows, Yahoo! Mail Desktop Webmail; "
        "no markup helps in Gmail iOS, Yahoo! Mail iOS, Yahoo! Mail Android (caniemail data of 20"
    )
    assert finding.fix.startswith('put an empty <a name="news"></a> just before the element with id="news"')
    assert finding.fix.endswith("see https://www.caniemail.com/features/html-anchor-links/")
    assert finding.where.startswith("default/digest.mjml.j2:")  # the template's <h2 id="{{ ...
    # The fix works: with an <a name> as well, nothing to say.
    fixed = digest(html=HTML.replace('<h2 id="news">', '<a name="news"></a><h2 id="news">'))
    assert client_findings(replace_html(fixed, '<p><a href="#news">News</a></p>'), DEFAULT) == []
    # Only the clients chosen are named; Apple Mail follows ids: nothing to say.
    assert client_findings(parts, ["apple-mail", "ios-mail"]) == []
    (gmail,) = client_findings(parts, ["gmail.desktop-webmail"])
    assert "go nowhere in Gmail Desktop Webmail (caniemail" in gmail.message


def replace_html(parts: Any, snippet: str) -> Any:
    from dataclasses import replace

    return replace(parts, html=parts.html.replace("</body>", f"{snippet}\n</body>"))


def test_an_unsupported_feature_that_matters_warns() -> None:
    parts = with_html('<div style="display: flex">a</div><img src="https://example.org/a.webp" alt="a">')
    by_title = {f.message.split(" (", 1)[0]: f for f in client_findings(parts, ["outlook-windows"])}
    assert set(by_title) == {"display:flex", "webP image format"}
    flex = by_title["display:flex"]
    assert flex.message.startswith(
        "display:flex (display:flex, line 9 of digest.html): the layout falls apart in "
    )
    assert "Outlook Windows" in flex.message
    assert flex.fix.startswith("lay it out with tables")
    assert (
        by_title["webP image format"].where
        == "default/digest.mjml.j2 (the packaged default: copy it to templates/ to change it)"
    )


def test_what_degrades_gracefully_is_no_finding() -> None:
    # Gmail has no prefers-color-scheme and Outlook no media queries: the email still reads.
    parts = with_html("<style>@media (prefers-color-scheme: dark) { p { color: #fff } }</style>")
    assert client_findings(parts, DEFAULT) == []


def test_partial_support_is_said_with_its_note_and_unknown_is_not() -> None:
    data = small_data(
        {
            "gmail": {"ios": {"2019": "n", "2026-03": "a #1"}, "android": {"2026-03": "y"}},
            "outlook": {"windows": {"2019": "u"}, "outlook-com": {"2007": "n", "2019": "y"}},
        },
        {"1": "Not supported with non Google accounts."},
    )
    parts = with_html('<div style="display:flex">a</div>')
    (finding,) = client_findings(parts, ["gmail", "outlook-windows", "outlook-com"], data=data)
    assert finding.message == (
        "The feature (display:flex, line 9 of digest.html): only partly supported in "
        "Gmail iOS (Not supported with non Google accounts.) (caniemail data of 2024-01-02)"
    )
    data = small_data({"gmail": {"ios": {"2026-03": "a"}}, "yahoo": {"ios": {"2019": "n"}}})
    (finding,) = client_findings(parts, ["gmail.ios", "yahoo.ios"], data=data)
    assert "the layout falls apart in Yahoo! Mail iOS; only partly supported in Gmail iOS (no details)" in (
        finding.message
    )
    assert client_findings(parts, ["gmail.ios"], data=small_data({"gmail": {"ios": {"1": "y"}}})) == []


def test_lint_looks_clients_up_only_when_given_some() -> None:
    parts = with_html('<div style="display:flex">a</div>')
    assert lint(parts) == []
    assert [f.rule for f in lint(parts, clients=["outlook-windows"])] == ["client-support"]


# ---- the sample and the command ----


def test_the_sample_uses_nothing_its_clients_lack(workspace: Path, run: Run) -> None:
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03", "--json")
    findings = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "client-support"]
    assert findings == []


def test_check_names_a_bad_client_setting(workspace: Path, run: Run) -> None:
    toml = workspace / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[check]\nclients = ["gmail", "lotus-notes"]\n')
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("check", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: [check] clients: unknown mail client 'lotus-notes'; use one of gmail"
    )


def test_check_uses_the_configured_clients(workspace: Path, run: Run) -> None:
    toml = workspace / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[check]\nclients = ["apple-mail"]\n')
    template = workspace / "templates" / "digest.mjml.j2"
    text = template.read_text(encoding="utf-8")
    template.write_text(text.replace("<mj-text>", '<mj-text><div style="display:grid">g</div>', 1))
    assert run("build", "--month", "2021-03").exit_code == 0
    data = json.loads(run("check", "--month", "2021-03", "--json").stdout)
    assert [f for f in data["findings"] if f["rule"] == "client-support"] == []  # Apple Mail has grid
    toml.write_text(toml.read_text(encoding="utf-8").replace('["apple-mail"]', '["outlook-windows"]'))
    result = run("check", "--month", "2021-03", "--json")
    found = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "client-support"]
    (grid,) = [f for f in found if "display:grid" in f["message"]]
    assert grid["message"].startswith("display:grid (display:grid, line ")
    assert grid["where"].startswith("templates/digest.mjml.j2:")


# ---- shipping and refreshing the data ----


def test_the_wheel_holds_the_data_and_its_licence(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("newsletter_digest-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"digest/check/caniemail.json", "digest/check/caniemail.LICENSE"} <= names
    assert zipfile.ZipFile(wheel).read("digest/check/caniemail.json") == DATA_FILE.read_bytes()


def refresh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "refresh_caniemail.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_refresh_copies_a_given_file_after_checking_it(tmp_path: Path) -> None:
    dest = tmp_path / "caniemail.json"
    source = tmp_path / "new.json"
    raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    raw["last_update_date"] = "2030-01-01 00:00:00 +0000"
    source.write_text(json.dumps(raw), encoding="utf-8")
    done = refresh("--from", str(source), "--dest", str(dest))
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == source.read_bytes()
    assert "2030-01-01" in done.stdout and f"{len(raw['data'])} features" in done.stdout
    assert load_data(dest).updated.startswith("2030-01-01")

    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({"api_version": "1", "last_update_date": "x", "nicenames": {}, "data": [{}]})
    )
    failed = refresh("--from", str(broken), "--dest", str(dest))
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"refresh_caniemail: {broken}: not the caniemail data")
    assert load_data.__wrapped__(dest).updated.startswith("2030-01-01")  # left as it was
    assert refresh("--from", str(tmp_path / "missing.json"), "--dest", str(dest)).returncode == 1


def test_what_is_not_a_feature_use() -> None:
    found = features(
        "<style>@media screen, print {}\n@media (PREFERS-COLOR-SCHEME: dark) {}\n"
        "div { grid-template-columns: minmax(1px, 2px) }</style>"
        '<h5>Small heading</h5><a href="#">Back to the top</a>'
    )
    assert "css-selector-grouping" not in found  # an at-rule's prelude is not a selector
    assert found["css-at-media-prefers-color-scheme"].line == 2  # media features in any case
    assert "css-function-max" not in found  # minmax() is not max()
    assert found["html-h1-h6"].example == "<h5>"
    assert not {"html-anchor-links", "html-anchor-links:id"} & set(found)  # "#" alone goes to the top


def test_the_anchor_finding_names_the_targets_template_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text('<div id="top">\n<p>x</p>\n<h2 id="news">News</h2>\n')
    parts = with_html('<p><a href="#news">News</a></p>', templates_dir=templates, root=tmp_path)
    (finding,) = client_findings(parts, ["gmail"])
    assert finding.where == "templates/digest.mjml.j2:3"
