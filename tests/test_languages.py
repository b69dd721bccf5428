"""Several languages: one digest per language that has items (out/<slug>/ and out/<slug>/<lang>/), the
templates' words from the packaged catalogs, the archive linking them all, and a send that gives each
subscriber the digest in their list row's language, with one journal (a real SMTP server on loopback)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from click.testing import Result
from conftest import REPO, write_item
from smtpserver import MONTH, Handler, Server, journal_rows

from digest import outdir
from digest.i18n import LOCALE_DIR

Run = Callable[..., Result]

FRENCH = """
[languages.fr]
title = "Actualités coopératives"
intro = "Les nouvelles du mois, en un seul courriel."
subject = "{{ title }} : {{ window.label }}"
"""


def french_item(
    ws: Path, name: str = "fr-1.md", title: str = "Les coopératives & l'ESS", **more: str
) -> Path:
    extra = "".join(f"{k}: {v}\n" for k, v in more.items())
    return write_item(
        ws / "items",
        name,
        f"---\ntitle: {title}\ndate: 2021-03-12\ncategory: News\nlang: fr\n"
        f"summary: Une journée <b>consacrée</b> aux coopératives.\nurl: https://example.org/fr/{name}\n{extra}---\n",
    )


@pytest.fixture
def bilingual(workspace: Path) -> Path:
    """The sample workspace (English) with a [languages.fr] table and two French items in March 2021."""
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write(FRENCH)
    french_item(workspace)
    french_item(workspace, "fr-2.md", title="Deuxième nouvelle")
    return workspace


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_one_digest_per_language_each_in_its_words(bilingual: Path, run: Run) -> None:
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    assert "en: 10 items in 2 categories -> out/2021-03/" in result.stderr
    assert "fr: 2 items in 1 category -> out/2021-03/fr/" in result.stderr
    top, fr = bilingual / "out" / "2021-03", bilingual / "out" / "2021-03" / "fr"
    main, french = manifest(top), manifest(fr)
    assert (main["lang"], main["languages"]) == ("en", ["fr"])
    assert (french["lang"], french["languages"]) == ("fr", [])
    assert main["item_count"] == 10 and french["item_count"] == 2
    assert french["subject"] == "Actualités coopératives : mars 2021"
    assert french["web_url"] == "https://example.org/coop-digest/2021-03/fr/"
    assert {i["lang"] for i in french["items"]} == {"fr"}
    assert all(i["lang"] == "" for i in main["items"])

    html = (fr / "digest.html").read_text(encoding="utf-8")
    assert 'lang="fr"' in html and 'lang="en"' not in html
    for words in ("Dans ce numéro", "2 articles", "Lire la suite", "Se désabonner", "12 mars 2021"):
        assert words in html, words
    assert "In this issue" not in html and "Read more" not in html
    assert "Les coopératives &amp; l&#39;ESS" in html or "Les coopératives &amp; l'ESS" in html
    assert "<b>consacrée</b>" not in html  # the summary's markup is text, escaped
    assert 'href="https://example.org/coop-digest/2021-03/fr/"' in html
    text = (fr / "digest.txt").read_text(encoding="utf-8")
    assert text.startswith("Actualités coopératives : mars 2021\n")
    assert (
        "Dans ce numéro\u00a0:" in text
        and "Lire en ligne\u00a0: https://example.org/coop-digest/2021-03/fr/" in text
    )
    assert "Les nouvelles du mois, en un seul courriel." in text
    # The greeting of the preview: the default greeting, translated.
    assert "Bonjour" in text and "Hello" not in text
    # The English digest has none of the French items, and its own words.
    en_html = (top / "digest.html").read_text(encoding="utf-8")
    assert "Deuxième nouvelle" not in en_html and "In this issue" in en_html
    assert 'lang="en"' in en_html
    web = (fr / "index.html").read_text(encoding="utf-8")
    assert "Deuxième nouvelle" in web and "Publié le" in web


def test_the_archive_links_every_language(bilingual: Path, run: Run) -> None:
    assert run("build", *MONTH).exit_code == 0
    page = (bilingual / "out" / "index.html").read_text(encoding="utf-8")
    assert 'href="2021-03/fr/index.html" hreflang="fr"' in page
    assert ">français</a> (2)" in page


def test_a_language_with_only_drafts_is_not_built_and_a_dropped_one_is_removed(
    bilingual: Path, run: Run
) -> None:
    assert run("build", *MONTH).exit_code == 0
    (bilingual / "out" / "2021-03" / "fr" / "notes.txt").write_text("mine", encoding="utf-8")
    for name in ("fr-1.md", "fr-2.md"):
        path = bilingual / "items" / name
        path.write_text(path.read_text(encoding="utf-8").replace("lang: fr\n", "lang: fr\ndraft: true\n"))
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    top = bilingual / "out" / "2021-03"
    assert not (top / "fr").exists()  # a language's folder is the build's: the new build has none
    assert manifest(top)["languages"] == []
    assert "fr:" not in result.stderr


def test_without_items_in_the_workspace_language_the_first_that_has_them_is_the_digest(
    workspace: Path, run: Run
) -> None:
    for path in (workspace / "items").glob("*.md"):
        path.unlink()
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write(FRENCH)
    french_item(workspace)
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    top = workspace / "out" / "2021-03"
    assert manifest(top)["lang"] == "fr" and manifest(top)["languages"] == []
    assert manifest(top)["web_url"] == "https://example.org/coop-digest/2021-03/"
    assert "Dans ce numéro" in (top / "digest.html").read_text(encoding="utf-8")


def test_a_language_without_a_table_or_catalog_gets_the_top_level_texts_and_english_words(
    workspace: Path, run: Run
) -> None:
    write_item(
        workspace / "items",
        "de.md",
        "---\ntitle: Genossenschaften\ndate: 2021-03-03\ncategory: News\nlang: de\nsummary: Neu.\n---\n",
    )
    assert run("build", *MONTH).exit_code == 0
    de = workspace / "out" / "2021-03" / "de"
    assert manifest(de)["subject"] == "Co-operative News Digest: März 2021"  # Babel's month, our words
    html = (de / "digest.html").read_text(encoding="utf-8")
    assert 'lang="de"' in html and "In this issue" in html and "3. März 2021" in html
    # The English intro is not borrowed by another language's digest.
    assert "News, stories and statements" not in html


def test_check_holds_every_language_to_the_rules(bilingual: Path, run: Run) -> None:
    assert run("build", *MONTH).exit_code == 0
    result = run("check", *MONTH, "--strict")
    assert result.exit_code == 0, result.stdout + result.stderr
    fr_text = bilingual / "out" / "2021-03" / "fr" / "digest.txt"
    fr_text.write_text(
        fr_text.read_text(encoding="utf-8").replace("Deuxième nouvelle", "X"), encoding="utf-8"
    )
    result = run("check", *MONTH)
    assert result.exit_code == 1
    assert "[fr]" in result.stdout and "Deuxième nouvelle" in result.stdout


def test_a_send_refuses_a_build_whose_further_language_changed(bilingual: Path, run: Run) -> None:
    assert run("build", *MONTH).exit_code == 0
    french_item(bilingual, "fr-3.md", title="Troisième")
    result = run("send", *MONTH, "--subscribers", "nobody.csv", "--dry-run")
    assert result.exit_code == 1
    assert "added:   items/fr-3.md" in result.stderr


def received(server: Server) -> dict[str, EmailMessage]:
    out = {}
    for (rcpt, *_rest), raw in server.handler.received:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        out[rcpt] = msg
    return out


def test_each_subscriber_gets_their_language_in_one_journal(
    bilingual: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    assert run("build", *MONTH).exit_code == 0
    csv = bilingual / "subscribers.csv"
    csv.write_text(
        "email,name,lang\n"
        "ann@example.org,Ann,fr\n"
        "bob@example.org,Bob,FR-ca\n"  # a regional variant: the French digest
        "eve@example.org,Eve,en\n"
        "dan@example.org,Dan,\n"  # no language: the digest's own
        "kim@example.org,Kim,de\n",  # a language not built: the digest's own
        encoding="utf-8",
    )
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 0, result.stderr
        got = received(server)
    assert sorted(got) == [f"{n}@example.org" for n in ("ann", "bob", "dan", "eve", "kim")]
    for who in ("ann", "bob"):
        msg = got[f"{who}@example.org"]
        assert msg["Subject"] == "Actualités coopératives : mars 2021"
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f"Bonjour {who.title()}," in text and "Deuxième nouvelle" in text
        assert "Actualités coopératives" in msg["List-Id"]
        assert msg["Content-Language"] == "fr"
    for who in ("eve", "dan", "kim"):
        msg = got[f"{who}@example.org"]
        assert msg["Subject"] == "Co-operative News Digest: March 2021"
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f"Hello {who.title()}," in text and "Deuxième nouvelle" not in text
        assert msg["Content-Language"] == "en"
    rows = journal_rows(bilingual)
    assert len(rows) == 5 and {r[0] for r in rows.values()} == {"sent"}
    assert not (bilingual / "out" / "2021-03" / "fr" / "journal.sqlite").exists()
    # A second run sends nobody anything again: one journal for the digest as a whole.
    with Server(Handler()) as server:
        smtp_env(server.port)
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert again.exit_code == 0, again.stderr
        assert server.handler.received == []


def test_the_dry_run_shows_the_first_subscribers_language(
    bilingual: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    assert run("build", *MONTH).exit_code == 0
    csv = bilingual / "subscribers.csv"
    csv.write_text("email,name,lang\nann@example.org,Ann,fr\n", encoding="utf-8")
    smtp_env(2525)
    result = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
    assert result.exit_code == 0, result.stderr
    shown = message_from_bytes(result.stdout.encode(), policy=policy.default)
    assert shown["Subject"] == "Actualités coopératives : mars 2021"


# ---- the catalogs ----


def _template_ids() -> set[str]:
    ids = set()
    method_map = [
        ("templates/**.j2", "jinja2"),
        ("digest/message.py", "python"),
        ("digest/unsubscribe.py", "python"),
    ]
    options = {
        "templates/**.j2": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
    }
    for _file, _line, message, _comments, _context in extract_from_dir(str(REPO), method_map, options):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def _strings(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or ())


@pytest.mark.parametrize("lang", ["en", "fr", "es"])
def test_each_catalog_translates_every_string_and_is_compiled(lang: str) -> None:
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    with open(folder / "digest.po", "rb") as f:
        po = read_po(f, locale=lang)
    wanted = _template_ids()
    assert wanted, "no strings extracted: the extraction itself is broken"
    have = {m.id if isinstance(m.id, str) else m.id[0]: m for m in po if m.id}
    assert wanted - have.keys() == set(), "strings missing from the catalog: run pybabel extract + update"
    for key in wanted:
        msg = have[key]
        strings = _strings(msg.string)
        assert all(strings) and not msg.fuzzy, f"{lang}: {key!r} is not translated"
    with open(folder / "digest.mo", "rb") as f:
        mo = read_mo(f)
    stale = [m.id for m in po if m.id and (m.id not in mo or _strings(mo[m.id].string) != _strings(m.string))]
    assert stale == [], "digest.mo is older than digest.po: run pybabel compile"


def test_the_placeholders_survive_translation() -> None:
    for lang in ("fr", "es"):
        with open(LOCALE_DIR / lang / "LC_MESSAGES" / "digest.po", "rb") as f:
            po = read_po(f, locale=lang)
        for m in po:
            if not m.id:
                continue
            source = m.id if isinstance(m.id, str) else m.id[1]
            for s in _strings(m.string):
                assert sorted(re.findall(r"%\(\w+\)d|%\(\w+\)s|\{\w+\}", s)) == sorted(
                    set(re.findall(r"%\(\w+\)d|%\(\w+\)s|\{\w+\}", source))
                ), (lang, m.id)


def test_the_packaged_french_catalog_and_the_language_folder_names() -> None:
    # read_mo needs a binary file: the catalogs in the package are binary, not text with CRLF surprises.
    raw = (LOCALE_DIR / "fr" / "LC_MESSAGES" / "digest.mo").read_bytes()
    assert read_mo(io.BytesIO(raw))["In this issue"].string == "Dans ce numéro"
    assert outdir.lang_folder("pt_BR") == "pt-br"


def test_list_says_each_item_s_language_when_the_window_has_several(bilingual: Path, run: Run) -> None:
    result = run("list", *MONTH)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 12
    by_file = {line.split()[-1]: line.split()[1] for line in lines}
    assert by_file["items/fr-1.md"] == "fr" and by_file["items/fr-2.md"] == "fr"
    assert sorted(by_file.values()).count("en") == 10
    for item in (bilingual / "items").glob("fr-*.md"):
        item.unlink()
    plain = run("list", *MONTH).stdout.splitlines()
    assert len(plain) == 10
    assert all(re.match(r"\d{4}-\d\d-\d\d  \S", line) and " en " not in line for line in plain)


def test_explain_and_fit_act_on_each_language_s_digest(bilingual: Path, run: Run) -> None:
    config = bilingual / "digest.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[email]\n", "[email]\nfit = true\nfit_budget = 20\n", 1), encoding="utf-8"
    )
    result = run("list", *MONTH, "--json")
    assert result.exit_code == 0, result.stderr
    got = {v["source"]: v for v in json.loads(result.stdout)["items"]}
    assert got["items/fr-1.md"]["lang"] == "fr" and got["items/fr-2.md"]["lang"] == "fr"
    english = [v for v in got.values() if v["lang"] == "en"]
    assert any(v["reason"] == "fit" for v in english)  # 10 English items pass 20 KB: some move online
    built = run("build", *MONTH)
    assert built.exit_code == 0, built.stderr
    assert "en: fit: moved" in built.stderr
    top = bilingual / "out" / "2021-03"
    moved = {m["source"] for m in manifest(top)["moved"]}
    assert moved == {
        s for s, v in got.items() if v["reason"] == "fit"
    }  # list --explain says what the build did
    assert (top / "digest.html").stat().st_size <= 20 * 1024
    assert (top / "fr" / "digest.html").stat().st_size <= 20 * 1024


# ---- what a new user tried ----


def test_a_language_babel_does_not_know_is_an_item_error_not_a_traceback(workspace: Path, run: Run) -> None:
    write_item(
        workspace / "items",
        "xx.md",
        "---\ntitle: T\ndate: 2021-03-03\ncategory: News\nsummary: S\nlang: xx\n---\n",
    )
    result = run("build", *MONTH)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    assert "items/xx.md:6: lang: unknown language 'xx'" in result.stderr


def test_a_table_for_the_workspace_language_sets_its_texts_and_is_no_second_digest(
    workspace: Path, run: Run
) -> None:
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write('\n[languages.en]\ntitle = "English title"\n')
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    top = workspace / "out" / "2021-03"
    assert not (top / "en").exists() and manifest(top)["languages"] == []
    assert manifest(top)["subject"] == "English title: March 2021"


def test_a_regional_table_serves_the_language_s_subscribers(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write('\n[languages.fr_FR]\ntitle = "Actualités"\n')
    french_item(workspace)
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    assert "fr_FR: 1 item in 1 category -> out/2021-03/fr-fr/" in result.stderr
    csv = workspace / "subscribers.csv"
    csv.write_text("email,name,lang\nann@example.org,Ann,fr\nbob@example.org,Bob,fr-BE\n", encoding="utf-8")
    with Server(Handler()) as server:
        smtp_env(server.port)
        sent = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert sent.exit_code == 0, sent.stderr
        got = received(server)
    assert {str(m["Subject"]) for m in got.values()} == {"Actualités: mars 2021"}


def test_odd_lang_values_are_said_and_the_dry_run_counts_each_language(
    bilingual: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    assert run("build", *MONTH).exit_code == 0
    csv = bilingual / "subscribers.csv"
    csv.write_text(
        "email,name,lang\na@example.org,A,fr\nb@example.org,B,Français\nc@example.org,C,\nd@example.org,D,de\n",
        encoding="utf-8",
    )
    smtp_env(2525)
    result = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert (
        "subscribers.csv:3: lang 'Français' is not a language code (like fr or pt-BR): "
        "this subscriber gets the digest's own language" in result.stderr
    )
    assert "by language: en 3, fr 1" in result.stderr
    shown = message_from_bytes(result.stdout.encode(), policy=policy.default)
    assert shown["Subject"] == "Actualités coopératives : mars 2021"  # the first row's: fr
    assert "=?utf-8?" in result.stdout  # printed as it goes, encoded...
    assert "subject: Actualités coopératives : mars 2021\n" in result.stderr  # ...and said as read
    english = run("send", *MONTH, "--subscribers", str(csv), "--dry-run", "--lang", "en")
    assert message_from_bytes(english.stdout.encode(), policy=policy.default)["Subject"] == (
        "Co-operative News Digest: March 2021"
    )


def test_a_test_message_in_a_further_language(
    bilingual: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    assert run("build", *MONTH).exit_code == 0
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--test", "me@example.org", "--lang", "fr-CA")
        assert result.exit_code == 0, result.stderr
        (msg,) = received(server).values()
    assert msg["Subject"] == "Actualités coopératives : mars 2021"
    bad = run("send", *MONTH, "--test", "me@example.org", "--lang", "Français")
    assert bad.exit_code == 1 and "Error: --lang: unknown language 'Français'" in bad.stderr
    alone = run("send", *MONTH, "--subscribers", "x.csv", "--lang", "fr")
    assert alone.exit_code == 2 and "--lang goes with --test or --dry-run" in alone.stderr


def test_the_build_says_how_many_items_the_email_leaves_to_the_web_version(workspace: Path, run: Run) -> None:
    config = workspace / "digest.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("limit = 0", "limit = 2"), encoding="utf-8")
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    assert "3 of 10 items in 2 categories in the email (7 in the web version only)" in result.stderr
    text = (workspace / "out" / "2021-03" / "digest.txt").read_text(encoding="utf-8")
    assert "7 more in News: https://example.org/coop-digest/2021-03/#news" in text


def test_a_language_whose_only_item_is_embargoed_is_not_built(workspace: Path, run: Run) -> None:
    french_item(workspace, publish_after="2099-01-01")
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    assert not (workspace / "out" / "2021-03" / "fr").exists()
    assert manifest(workspace / "out" / "2021-03")["languages"] == []


def test_a_scan_warning_is_said_once_not_once_per_language(bilingual: Path, run: Run) -> None:
    write_item(bilingual / "items", "bad.md", "---\ntitle: T\ndate: 2020-01-05\ncategory: News\n---\n")
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("items/bad.md") == 1
    assert "[fr] items/bad.md" not in result.stderr


def test_a_subscriber_s_language_finds_the_closest_digest() -> None:
    from types import SimpleNamespace
    from typing import cast

    from digest.message import Personaliser
    from digest.presend import Makers

    main, fr, fr_fr, pt_br = (cast(Personaliser, SimpleNamespace(greeting_uses=set())) for _ in range(4))
    makers = Makers(main, {"fr_FR": fr_fr, "fr": fr, "pt_BR": pt_br}, lang="en")
    assert makers.for_fields({"lang": "fr-CA"}) is fr  # the language itself before a region of it
    assert makers.for_fields({"lang": "fr-fr"}) is fr_fr
    assert makers.for_fields({"lang": "pt"}) is pt_br  # a region when the language has no digest of its own
    assert makers.for_fields({"lang": "en-GB"}) is main
    assert makers.for_fields({"lang": "de"}) is main
    assert makers.for_fields({}) is main


def test_the_hash_a_send_binds_to_covers_every_language(bilingual: Path, run: Run) -> None:
    assert run("build", *MONTH).exit_code == 0
    top = bilingual / "out" / "2021-03"
    before = outdir.load(top).digest_hash()
    assert before != outdir.load(top).manifest.content_hash  # more than the English digest's
    path = top / "fr" / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["content_hash"] = "0" * 64  # as a rebuild that changed only the French digest would
    path.write_text(json.dumps(data), encoding="utf-8")
    assert outdir.load(top).digest_hash() != before


def test_each_language_may_order_its_own_sections(bilingual: Path, run: Run) -> None:
    write_item(
        bilingual / "items",
        "fr-3.md",
        "---\ntitle: Un événement\ndate: 2021-03-14\ncategory: Événements\nlang: fr\nsummary: Bientôt.\n---\n",
    )
    config = bilingual / "digest.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[languages.fr]\n", '[languages.fr]\norder = ["Événements", "News"]\n'), encoding="utf-8"
    )
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    assert "Événements' is not in [categories] order" not in result.stderr  # the French order has it
    sections = [s["name"] for s in manifest(bilingual / "out" / "2021-03" / "fr")["sections"]]
    assert sections == ["Événements", "News"]
    assert manifest(bilingual / "out" / "2021-03")["sections"][0]["name"] == "News"
