"""A workspace's own gettext catalogs (locale/<lang>/LC_MESSAGES/digest.po) in front of the packaged ones:
its strings win, the packaged ones fill in what it leaves out, a language the package has no catalog for can
come from it entirely, and a broken catalog is an error naming the file and line."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import Result
from conftest import NOW, write_item
from smtpserver import MONTH

from digest.config import load_config
from digest.errors import TemplateError
from digest.i18n import catalog_path, translations
from digest.po import read_po
from digest.preview import Preview
from digest.window import resolve

Run = Callable[..., Result]

HEADER = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"""


def catalog(folder: Path, lang: str, body: str, header: str = HEADER) -> Path:
    path = catalog_path(folder, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + body, encoding="utf-8")
    return path


def item(ws: Path, name: str, lang: str, title: str) -> None:
    write_item(
        ws / "items",
        name,
        f"---\ntitle: {title}\ndate: 2021-03-12\ncategory: News\nlang: {lang}\nsummary: S.\n---\n",
    )


def words(ws: Path, lang: str) -> tuple[str, str]:
    folder = ws / "out" / "2021-03" / lang
    return (folder / "digest.html").read_text(encoding="utf-8"), (folder / "digest.txt").read_text(
        encoding="utf-8"
    )


# ---- through a build ----


def test_a_workspace_string_wins_and_the_packaged_ones_fill_in(workspace: Path, run: Run) -> None:
    item(workspace, "fr.md", "fr", "Une nouvelle")
    catalog(
        workspace / "locale",
        "fr",
        'msgid "In this issue"\nmsgstr "Au sommaire"\n\nmsgid "In this issue:"\nmsgstr "Au sommaire :"\n',
    )
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    html, text = words(workspace, "fr")
    assert "Au sommaire" in html and "Au sommaire" in text
    assert "Dans ce numéro" not in html  # the packaged translation of the same string lost
    assert "Se désabonner" in html and "Lire en ligne" in text  # strings only the package translates
    assert "Bonjour" in text  # the default greeting, from the packaged catalog
    en_html, _ = words(workspace, "")
    assert "In this issue" in en_html and "Au sommaire" not in en_html


class _Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def test_every_gettext_call_escapes_a_text_translation(tmp_path: Path) -> None:
    """_, ngettext, pgettext, npgettext and {% trans %} alike: a translation of a text original (a bare &
    is text) is escaped in HTML, and goes as it is into the text part and where the original is HTML."""
    import jinja2

    from digest.i18n import html_gettext

    folder = tmp_path / "locale"
    evil = 'R \\"x\\" onmouseover=\\"alert(1)'
    catalog(
        folder,
        "fr",
        f'msgid "Q&A"\nmsgstr "Q&{evil}"\n\n'
        f'msgid "%(num)d item"\nmsgid_plural "%(num)d items"\nmsgstr[0] "%(num)d {evil}"\n'
        f'msgstr[1] "%(num)d {evil}"\nmsgstr[2] "%(num)d {evil}"\n\n'
        f'msgctxt "menu"\nmsgid "Home"\nmsgstr "{evil}"\n\n'
        f'msgctxt "menu"\nmsgid "%(num)d page"\nmsgid_plural "%(num)d pages"\nmsgstr[0] "{evil}"\n'
        f'msgstr[1] "{evil}"\nmsgstr[2] "{evil}"\n\n'
        f'msgid "Read <b>more</b>"\nmsgstr "Lire <b>plus</b>"\n',
    )
    words = translations("fr", folder)
    source = (
        '<i title="{{ _("Q&A") }}"></i><i title="{{ ngettext("%(num)d item", "%(num)d items", 2) }}"></i>'
        '<i title="{{ pgettext("menu", "Home") }}"></i>'
        '<i title="{{ npgettext("menu", "%(num)d page", "%(num)d pages", 2) }}"></i>'
        "{% trans %}Read <b>more</b>{% endtrans %}"
    )
    for autoescape in (True, False):
        env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=autoescape)  # noqa: S701
        env.install_gettext_callables(**html_gettext(words), newstyle=True)  # type: ignore[attr-defined]
        out = env.from_string(source).render()
        if autoescape:
            assert "onmouseover=" not in out.replace("onmouseover=&#34;", "")
            assert out.count("&#34;x&#34; onmouseover=&#34;alert(1)") == 4
            assert 'title="Q&amp;R &#34;x&#34;' in out
        else:
            assert out.count('"x" onmouseover="alert(1)') == 4  # the text part: as written
        assert out.endswith("Lire <b>plus</b>")  # markup in the original: its translation's kept


def test_a_translation_of_text_is_escaped_and_one_of_markup_keeps_it(workspace: Path, run: Run) -> None:
    """A `"` in a translation cannot end the attribute a team's template puts it in: the translation of a
    text original is escaped like any value. An original with markup (a `{% trans %}` block with a tag)
    keeps its markup translated. The text part has the words as written."""
    item(workspace, "fr.md", "fr", "Une nouvelle")
    template = workspace / "templates" / "digest.mjml.j2"
    link = '<a href="{{ unsubscribe_url }}">{{ _("Unsubscribe") }}</a>'
    source = template.read_text(encoding="utf-8")
    assert link in source
    template.write_text(
        source.replace(
            link,
            '<a href="{{ unsubscribe_url }}" title="{{ _("Unsubscribe") }}">{{ _("Unsubscribe") }}</a> '
            "{% trans %}Read <b>this</b>{% endtrans %}",
        ),
        encoding="utf-8",
    )
    catalog(
        workspace / "locale",
        "fr",
        'msgid "Unsubscribe"\nmsgstr "Se \\"désabonner\\" onmouseover=\\"alert(1)"\n\n'
        'msgid "Read <b>this</b>"\nmsgstr "Lisez <b>ceci</b>"\n\n'
        'msgid "Unsubscribe:"\nmsgstr "Se \\"désabonner\\" :"\n',
    )
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    html, text = words(workspace, "fr")
    parser = _Attributes()
    parser.feed(html)
    titled = [attrs for tag, attrs in parser.found if tag == "a" and "title" in attrs]
    assert [attrs["title"] for attrs in titled] == ['Se "désabonner" onmouseover="alert(1)']
    assert not any("onmouseover" in attrs for _, attrs in parser.found)
    assert "Lisez <b>ceci</b>" in html  # markup in the original: kept in its translation
    assert 'Se "désabonner" :' in text  # the text part is not HTML: nothing escaped


def test_a_language_without_a_packaged_catalog_comes_from_the_workspace(workspace: Path, run: Run) -> None:
    item(workspace, "de.md", "de", "Genossenschaften")
    catalog(
        workspace / "locale",
        "de",
        'msgid "In this issue"\nmsgstr "In dieser Ausgabe"\n\n'
        'msgid "%(num)d item"\nmsgid_plural "%(num)d items"\n'
        'msgstr[0] "%(num)d Beitrag"\nmsgstr[1] "%(num)d Beiträge"\n\n'
        'msgid "Hello {name},"\nmsgstr "Hallo {name},"\n\nmsgid "Hello,"\nmsgstr "Hallo,"\n',
        header=HEADER + '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n',
    )
    result = run("build", *MONTH)
    assert result.exit_code == 0, result.stderr
    html, text = words(workspace, "de")
    assert "In dieser Ausgabe" in html and "1 Beitrag" in html and "In this issue" not in html
    assert "Hallo" in text  # the greeting of the preview, from the workspace's catalog
    assert "Unsubscribe" in html  # a string the German catalog leaves out stays English


def test_a_broken_catalog_is_an_error_naming_the_file_and_line(workspace: Path, run: Run) -> None:
    item(workspace, "fr.md", "fr", "Une nouvelle")
    catalog(workspace / "locale", "fr", 'msgid "In this issue"\nmsgstr "Au sommaire\n')
    result = run("build", *MONTH)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: locale/fr/LC_MESSAGES/digest.po:6: a text goes in double quotes on one line"
    ), result.stderr
    assert "Traceback" not in result.stderr


def test_the_locale_folder_is_a_setting_relative_to_the_config_file(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = workspace / "digest.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("[paths]\n", '[paths]\nlocale = "words"\n'))
    sub = workspace / "items"
    assert load_config(cwd=sub).paths.locale == workspace / "words"
    monkeypatch.setenv("DIGEST_LOCALE_DIR", "elsewhere")
    assert load_config(cwd=sub).paths.locale == workspace / "elsewhere"
    (workspace / "digest.toml").write_text('title = "T"\n', encoding="utf-8")
    monkeypatch.delenv("DIGEST_LOCALE_DIR")
    assert load_config(cwd=sub).paths.locale == workspace / "locale"


# ---- the layering ----


def test_the_regional_catalog_is_in_front_of_the_plain_one(tmp_path: Path) -> None:
    catalog(tmp_path, "fr", 'msgid "In this issue"\nmsgstr "Au sommaire"\n\nmsgid "Menu"\nmsgstr "Carte"\n')
    catalog(tmp_path, "fr_CA", 'msgid "In this issue"\nmsgstr "Dans ce numéro-ci"\n')
    canadian = translations("fr_CA", tmp_path)
    assert canadian.gettext("In this issue") == "Dans ce numéro-ci"
    assert canadian.gettext("Menu") == "Carte"
    assert canadian.gettext("Unsubscribe") == "Se désabonner"  # the packaged French, behind both
    assert canadian.gettext("Not anywhere") == "Not anywhere"
    assert translations("fr", tmp_path).gettext("In this issue") == "Au sommaire"
    assert translations("fr", tmp_path / "missing").gettext("In this issue") == "Dans ce numéro"
    assert translations("fr").gettext("In this issue") == "Dans ce numéro"


def test_plurals_use_the_catalog_s_own_rule_and_fall_back_per_string(tmp_path: Path) -> None:
    catalog(
        tmp_path,
        "fr",
        'msgid "%(num)d item"\nmsgid_plural "%(num)d items"\nmsgstr[0] "%(num)d billet"\nmsgstr[1] "%(num)d billets"\n',
        header=HEADER + '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n',
    )
    fr = translations("fr", tmp_path)
    assert [fr.ngettext("%(num)d item", "%(num)d items", n) for n in (0, 1, 2)] == [
        "%(num)d billet",
        "%(num)d billet",
        "%(num)d billets",
    ]
    # Not in the workspace's catalog: the packaged one, with its own rule.
    assert fr.ngettext("%(num)d more in %(section)s:", "%(num)d more in %(section)s:", 2) == (
        "%(num)d autres dans %(section)s\u00a0:"
    )


def test_fuzzy_and_untranslated_messages_are_left_to_the_packaged_catalog(tmp_path: Path) -> None:
    catalog(
        tmp_path,
        "fr",
        '#, fuzzy\n#. a note for the translator\nmsgid "In this issue"\nmsgstr "Au sommaire"\n\n'
        'msgid "Unsubscribe"\nmsgstr ""\n\n'
        '#, python-format\nmsgid "Read more"\nmsgstr "Lire"\n',
    )
    fr = translations("fr", tmp_path)
    assert fr.gettext("In this issue") == "Dans ce numéro"
    assert fr.gettext("Unsubscribe") == "Se désabonner"
    assert fr.gettext("Read more") == "Lire"


def test_an_edited_catalog_is_read_again(tmp_path: Path) -> None:
    path = catalog(tmp_path, "fr", 'msgid "In this issue"\nmsgstr "Au sommaire"\n')
    assert translations("fr", tmp_path).gettext("In this issue") == "Au sommaire"
    path.write_text(HEADER + '\nmsgid "In this issue"\nmsgstr "Sommaire du mois"\n', encoding="utf-8")
    os.utime(path, ns=(1, 1))  # another version even on a file system with coarse times
    assert translations("fr", tmp_path).gettext("In this issue") == "Sommaire du mois"


# ---- reading a .po ----


def po(text: str) -> dict[object, str]:
    return read_po(text.encode(), where="x.po", lang="fr").messages


def test_continuations_escapes_and_contexts() -> None:
    messages = po(
        "# a comment\n"
        'msgid ""\n"In this "\n"issue"\nmsgstr ""\n"Au "\n"sommaire\\n\\"ici\\"\\t\\\\"\n\n'
        'msgctxt "menu"\nmsgid "Open"\nmsgstr "Ouvrir"\n\n'
        'msgid "%(num)d one"\nmsgid_plural "%(num)d "\n"in %(section)s"\nmsgstr[0] "%(num)d un"\n'
        'msgstr[1] "%(num)d "\n"dans %(section)s"\nmsgstr[2] "x"\n\n'
        'msgid "Open"\nmsgstr "Ouvert"\n\n'
        '#~ msgid "Old"\n#~ msgstr "Vieux"\n'
    )
    assert messages == {
        "In this issue": 'Au sommaire\n"ici"\t\\',
        "menu\x04Open": "Ouvrir",
        "Open": "Ouvert",
        ("%(num)d one", 0): "%(num)d un",
        ("%(num)d one", 1): "%(num)d dans %(section)s",
        ("%(num)d one", 2): "x",
    }


def test_the_usual_plural_rule_when_the_header_has_none() -> None:
    two = b'msgid "a"\nmsgid_plural "as"\nmsgstr[0] "x"\nmsgstr[1] "xs"\n'
    read = read_po(two, where="x.po", lang="de")
    assert [read.plural(n) for n in (0, 1, 2)] == [1, 0, 1]  # German: only 1 is singular
    with pytest.raises(
        TemplateError, match=r"^x\.po:1: 'a' has 2 plural forms, .*\(fr's usual one\) says 3$"
    ):
        read_po(two, where="x.po", lang="fr")  # French, as CLDR (and Babel) has it: 1, 1 000 000, other


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('msgid "a"\nmsgstr "b\n', '2: a text goes in double quotes on one line, a quote inside it as \\"'),
        ('msgid "a"\nmsgstr "b"c"\n', "2: a text goes in double quotes"),
        (
            'msgid "a"\nmsgstr "b"\nblah\n',
            "3: expected msgid, msgstr, a quoted string or a # comment, not 'blah'",
        ),
        ('msgid "a"\n\nmsgid "b"\nmsgstr "c"\n', "1: msgid 'a' has no msgstr"),
        ('msgid "a"\n', "1: msgid 'a' has no msgstr"),
        ('msgstr "x"\n', "1: msgstr with no msgid before it"),
        ('"x"\n', "1: a quoted string with no msgid or msgstr before it"),
        ('msgctxt "c"\n', "1: msgctxt with no msgid after it"),
        ('msgid "a"\nmsgstr "b"\nmsgstr "c"\n', "3: a second msgstr for one msgid"),
        ('msgid "a"\nmsgstr "b"\n\nmsgid "a"\nmsgstr "c"\n', "4: 'a' is translated twice (first on line 1)"),
        ('msgid "a"\nmsgstr "b\\q"\n', "2: unknown escape \\q (a backslash is written \\\\)"),
        ('msgid "a"\nmsgid_plural "as"\nmsgstr "x"\n', "3: a message with msgid_plural has msgstr[0]"),
        ('msgid "a"\nmsgstr[0] "x"\n', "2: msgstr[0] is for a message with msgid_plural"),
        ('msgid "a"\nmsgid_plural "as"\nmsgstr[1] "x"\n', "3: expected msgstr[0] here, not msgstr[1]"),
        (
            'msgid "a"\nmsgid_plural "as"\nmsgstr[0] "x"\nmsgstr[0] "y"\n',
            "4: expected msgstr[1] here, not msgstr[0]",
        ),
        (
            'msgid "a"\nmsgid_plural "as"\nmsgstr[0] "x"\nmsgstr[1] "y"\nmsgstr[2] "z"\nmsgstr[3] "w"\n',
            "1: 'a' has 4 plural forms, the catalog's Plural-Forms (fr's usual one) says 3",
        ),
        (
            'msgid ""\nmsgstr "Plural-Forms: nplurals=0; plural=0;\\n"\n',
            "1: the Plural-Forms header 'nplurals=0; plural=0;'",
        ),
        ('msgid "a"\nmsgstr "x"\nmsgid_plural "as"\n', "3: msgid_plural goes right after its msgid"),
        (
            'msgid "Read %(title)s"\nmsgstr "Lire %(titre)s"\n',
            "1: the translation of 'Read %(title)s' has %(titre)s",
        ),
        (
            'msgid "Sure"\nmsgstr "Sûr à 100 %"\n',
            "1: a lone % in the translation of 'Sure' (a percent sign is %%)",
        ),
        (
            'msgid "Hello {name},"\nmsgstr "Bonjour {nom},"\n',
            "1: the translation of 'Hello {name},' has {nom}",
        ),
        (
            'msgid ""\nmsgstr "Plural-Forms: nplurals=2; plural=(n >>> 1);\\n"\n',
            "1: the Plural-Forms header 'nplurals=2; plural=(n >>> 1);': unexpected token",
        ),
        ('msgid ""\nmsgstr "Plural-Forms: two\\n"\n', "1: the Plural-Forms header 'two': write it as"),
    ],
)
def test_a_broken_catalog_names_the_line(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        read_po(text.encode(), where="x.po", lang="fr")
    assert str(err.value).startswith(f"x.po:{message}"), str(err.value)


def test_a_catalog_that_is_not_utf8_names_the_line() -> None:
    with pytest.raises(TemplateError, match=r"^x\.po:2: not UTF-8 text"):
        read_po(b'msgid "a"\nmsgstr "caf\xe9"\n', where="x.po", lang="fr")


def test_what_a_good_translation_may_hold() -> None:
    messages = po(
        'msgid "Read more: %(title)s"\nmsgstr "Lire la suite : %(title)s à 100 %%"\n\n'
        'msgid "Hello {name},"\nmsgstr "Bonjour {name},"\n\n'
        'msgid "%(num)d item"\nmsgid_plural "%(num)d items"\nmsgstr[0] "un"\nmsgstr[1] "%(num)d"\nmsgstr[2] "%(num)d"\n'
    )
    assert messages["Read more: %(title)s"] == "Lire la suite : %(title)s à 100 %%"
    assert messages[("%(num)d item", 1)] == "%(num)d"


def test_the_preview_watches_the_catalogs(workspace: Path) -> None:
    now = datetime.fromisoformat(NOW)
    server = Preview(
        load=lambda: load_config(workspace / "digest.toml", environ={}),
        window=lambda c: resolve(tz=c.tz, locale=c.language, now=now, month_="2021-03"),
        now=lambda: now,
    )
    try:
        assert "In this issue" in server.rebuild().files["digest.html"].decode()
        path = catalog(workspace / "locale", "en", 'msgid "In this issue"\nmsgstr "Inside this month"\n')
        assert server.changed()  # a catalog made in a folder that did not exist yet
        assert "Inside this month" in server.rebuild().files["digest.html"].decode()
        path.write_text(HEADER + '\nmsgid "In this issue"\nmsgstr "Inside\n', encoding="utf-8")
        assert server.changed()
        state = server.rebuild()
        assert not state.ok and state.error.startswith("locale/en/LC_MESSAGES/digest.po:6: a text goes")
    finally:
        server.close()


def test_an_edit_of_the_same_size_in_the_same_tick_is_read_again(tmp_path: Path) -> None:
    """The cache knows a version of a catalog by more than its time and size: a save in the same tick of a
    coarse clock, of the same length, is another version (the live preview rebuilds on it)."""
    path = catalog(tmp_path, "fr", 'msgid "In this issue"\nmsgstr "Au sommaire"\n')
    first = path.stat()
    assert translations("fr", tmp_path).gettext("In this issue") == "Au sommaire"
    # An editor's save: a new file of the same size, renamed over the old one, with the old one's mtime.
    new = path.with_suffix(".tmp")
    new.write_text(HEADER + '\nmsgid "In this issue"\nmsgstr "Au contenus"\n', encoding="utf-8")
    os.utime(new, ns=(first.st_atime_ns, first.st_mtime_ns))
    os.replace(new, path)
    second = path.stat()
    assert (second.st_size, second.st_mtime_ns) == (first.st_size, first.st_mtime_ns)
    assert translations("fr", tmp_path).gettext("In this issue") == "Au contenus"
    # Written in place, same size, same mtime: the inode is the same, the change time is not.
    path.write_text(HEADER + '\nmsgid "In this issue"\nmsgstr "Au somaire!"\n', encoding="utf-8")
    for _ in range(100_000):  # until the change time leaves the tick of the read above
        os.utime(path, ns=(second.st_atime_ns, second.st_mtime_ns))
        if path.stat().st_ctime_ns != second.st_ctime_ns:
            break
    third = path.stat()
    assert (third.st_size, third.st_mtime_ns, third.st_ino) == (
        second.st_size,
        second.st_mtime_ns,
        second.st_ino,
    )
    assert third.st_ctime_ns != second.st_ctime_ns
    assert translations("fr", tmp_path).gettext("In this issue") == "Au somaire!"
