"""The unsubscribe pages in the reader's language: Accept-Language negotiated among the languages the
workspace sends in, the words from the digest's catalogs (the workspace's in front of the packaged ones),
on a real HTTP server on 127.0.0.1 as in test_unsubscribe.py."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_shots import require_browser
from test_unsubscribe import SECRET, URL, entries, link, one_click, raw_http, request, running

from digest import unsubscribe
from digest.config import Config, load_config
from digest.errors import TemplateError
from digest.i18n import catalog_path

NB = "\u00a0"  # French puts a no-break space before "?" and ":"
FRENCH = '[languages.fr]\ntitle = "Actualités <coop> & \\"Cie\\""\n'
SPANISH = '[languages.es]\ntitle = "Noticias <coop> & \\"Cía\\""\n'
ANN = "o'brien+news@example.org"
HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'


def workspace(folder: Path, tables: str = FRENCH + SPANISH, *, top: str = "") -> Config:
    """A workspace whose own language is English (unless `top` says otherwise) with further languages."""
    folder.mkdir(parents=True, exist_ok=True)
    toml = f'title = "Coop <News> & Co"\n{top}\n{tables}'
    (folder / "digest.toml").write_text(toml, encoding="utf-8")
    env = {"DIGEST_UNSUBSCRIBE_URL": URL, "DIGEST_UNSUBSCRIBE_SECRET": SECRET}
    return load_config(folder / "digest.toml", environ=env)


def catalog(config: Config, lang: str, body: str) -> Path:
    path = catalog_path(config.paths.locale, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def get(base: str, languages: str | None, email: str = ANN) -> tuple[int, str, dict[str, str]]:
    headers = {} if languages is None else {"Accept-Language": languages}
    return request(link(base, email), headers=headers)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return workspace(tmp_path / "ws")


@pytest.fixture
def base(config: Config) -> Any:
    with running(config) as url:
        yield url


# ---- which language ----


@pytest.mark.parametrize(
    ("header", "available", "chosen"),
    [
        ("fr-CH, fr;q=0.9, en;q=0.5", ["en", "fr"], "fr"),
        ("fr-CH", ["en", "fr"], "fr"),  # a regional tag finds its language
        ("FR-ca", ["en", "fr"], "fr"),  # in the workspace's spelling, whatever the header's case
        ("en;q=0.5, fr;q=0.9", ["en", "fr"], "fr"),  # the q-value counts, not the order
        ("es;q=0.5, fr;q=0.5", ["en", "fr", "es"], "es"),  # a tie: the first named
        ("fr;q=0, es", ["en", "fr", "es"], "es"),
        ("fr;q=0", ["en", "fr"], "en"),  # q=0 is "not this one"
        ("fr;q=0.0, de", ["en", "fr"], "en"),
        ("fr;q=0.001", ["de", "fr"], "fr"),
        ("fr;Q=1.000", ["en", "fr"], "fr"),
        ("fr;q=2, es;q=0.1", ["en", "fr", "es"], "es"),  # a q-value over 1 is no q-value: ignored
        ("fr;q=abc", ["en", "fr"], "en"),
        ("fr;q=0..5", ["en", "fr"], "en"),
        ("de", ["en", "fr"], "en"),
        ("*", ["en", "fr"], "en"),
        ("de, *;q=0.5", ["es", "fr"], "es"),
        ("", ["en", "fr"], "en"),
        ("fr_FR!, <fr>", ["en", "fr"], "en"),  # not a language range
        ("pt-BR", ["en", "pt_BR"], "pt_BR"),
        ("pt", ["en", "pt_BR"], "pt_BR"),  # the plain language finds a regional one
        ("pt-PT, en;q=0.1", ["en", "pt_BR"], "pt_BR"),  # another region of the language: still closer
        ("en", ["de", "en_US"], "en_US"),
        (" de , fr ; q = 0.5 ", ["en", "fr"], "fr"),
    ],
)
def test_the_language_is_negotiated_from_accept_language(
    header: str, available: list[str], chosen: str
) -> None:
    assert unsubscribe.negotiate(header, available, available[0]) == chosen


def test_a_long_header_is_read_in_linear_time() -> None:
    """A run of spaces once cost the header's parser quadratic time (60,000 spaces: 17 s of a server's
    time, per request). Here 300,000 spaces, which took minutes, must be read well inside a generous bound
    (a child process, so that a regression fails rather than hangs), and many entries are cut short."""
    code = (
        "from digest.unsubscribe import negotiate\n"
        "assert negotiate('fr' + ' ' * 300_000 + '!', ['en', 'fr'], 'en') == 'en'\n"
        "assert negotiate('de;q=' + ' ' * 300_000 + '0.5', ['en', 'de'], 'en') == 'de'\n"
        "assert negotiate(','.join(['xx'] * 1000) + ',fr', ['en', 'fr'], 'en') == 'en'\n"
        "assert negotiate(','.join(['xx'] * 30) + ',fr', ['en', 'fr'], 'en') == 'fr'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_percent_sign_reads_as_in_the_digest(config: Config) -> None:
    """`%%` is how a catalog writes a percent sign (digest/po.py asks it of every translation): the page
    shows one, as the digest does."""
    catalog(config, "fr", 'msgid "Unsubscribe"\nmsgstr "Se désabonner (100 %%)"\n')
    with running(config) as url:
        status, page, _ = get(url, "fr")
    assert status == 200 and ">Se désabonner (100 %)</button>" in page


def test_a_french_reader_gets_the_french_page(base: str) -> None:
    status, page, headers = get(base, "fr-CH, fr;q=0.9, en;q=0.5")
    assert status == 200
    assert page.startswith('<!doctype html>\n<html lang="fr">')
    title = "Actualités &lt;coop&gt; &amp; &quot;Cie&quot;"  # the French table's title, escaped
    assert f"<h1>Se désabonner de {title}{NB}?</h1>" in page
    assert f"<title>Se désabonner de {title}{NB}?</title>" in page
    assert "o&#x27;brien+news@example.org ne recevra plus cette lettre." in page
    assert '<button type="submit" id="unsubscribe">Se désabonner</button>' in page
    assert headers["Content-Language"] == "fr"
    assert headers["Vary"] == "Accept-Language"
    assert "Unsubscribe" not in page.replace('name="List-Unsubscribe"', "")


def test_a_spanish_reader_gets_the_spanish_page(base: str) -> None:
    status, page, headers = get(base, "es-MX,es;q=0.9")
    assert status == 200
    assert '<html lang="es">' in page and headers["Content-Language"] == "es"
    assert "<h1>¿Darse de baja de Noticias &lt;coop&gt; &amp; &quot;Cía&quot;?</h1>" in page
    assert "o&#x27;brien+news@example.org ya no recibirá este boletín." in page
    assert ">Darse de baja</button>" in page


@pytest.mark.parametrize("header", [None, "de", "de-DE, it;q=0.8", "es", "*", "fr;q=0"])
def test_a_language_the_workspace_does_not_send_in_gets_its_own(tmp_path: Path, header: str | None) -> None:
    config = workspace(tmp_path / "ws", FRENCH)  # no Spanish here
    with running(config) as base:
        status, page, headers = get(base, header)
    assert status == 200
    assert '<html lang="en">' in page and headers["Content-Language"] == "en"
    assert headers["Vary"] == "Accept-Language"
    assert "<h1>Unsubscribe from Coop &lt;News&gt; &amp; Co?</h1>" in page
    assert "o&#x27;brien+news@example.org will get no more of it." in page
    assert ">Unsubscribe</button>" in page


def test_a_french_workspace_answers_in_french_without_a_header(tmp_path: Path) -> None:
    config = workspace(tmp_path / "ws", "", top='language = "fr"')
    with running(config) as base:
        _, page, headers = get(base, None)
        assert headers["Content-Language"] == "fr"
        assert f"<h1>Se désabonner de Coop &lt;News&gt; &amp; Co{NB}?</h1>" in page
        _, page, headers = get(base, "en-GB, en;q=0.9")  # English is not one of its languages
        assert headers["Content-Language"] == "fr"


def test_a_table_for_the_workspace_s_own_language_gives_its_title(tmp_path: Path) -> None:
    config = workspace(tmp_path / "ws", '[languages.en]\ntitle = "Coop News in English"\n' + FRENCH)
    assert unsubscribe.make_app(config).title == "Coop News in English"
    with running(config) as base:
        _, page, _ = get(base, "en-US")
    assert "<h1>Unsubscribe from Coop News in English?</h1>" in page


def test_a_regional_language_is_written_with_a_hyphen(tmp_path: Path) -> None:
    config = workspace(tmp_path / "ws", '[languages.pt_BR]\ntitle = "Notícias"\n')
    with running(config) as base:
        _, page, headers = get(base, "pt")
    assert headers["Content-Language"] == "pt-BR" and '<html lang="pt-BR">' in page
    assert "<h1>Unsubscribe from Notícias?</h1>" in page  # no catalog ships for it: English words


# ---- the confirmation and the other pages ----


def test_the_page_s_post_answers_in_the_reader_s_language_and_records_as_before(
    config: Config, base: str
) -> None:
    url = link(base, ANN)
    form = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept-Language": "fr-FR,fr;q=0.9",
        "User-Agent": "Navigateur/1",
    }
    status, page, headers = request(url, b"List-Unsubscribe=One-Click&from=page", headers=form)
    assert status == 200 and headers["Content-Language"] == "fr" and headers["Vary"] == "Accept-Language"
    assert "<h1>Votre désabonnement est enregistré</h1>" in page and "<button" not in page
    assert (
        "o&#x27;brien+news@example.org ne recevra plus Actualités &lt;coop&gt; &amp; &quot;Cie&quot;." in page
    )
    (entry,) = entries(config)
    assert (entry.address, entry.reason, entry.source) == (ANN, "unsubscribed", "link")
    assert entry.evidence.startswith("POST at ") and entry.evidence.endswith("; user agent: Navigateur/1")
    # The link again, in Spanish now: already done, no button.
    status, page, _ = get(base, "es")
    assert status == 200 and "<button" not in page
    assert "<h1>Se ha dado de baja</h1>" in page
    assert "o&#x27;brien+news@example.org ya no recibe Noticias &lt;coop&gt; &amp; &quot;Cía&quot;." in page
    assert entries(config) == [entry]


def test_a_one_click_post_answers_in_its_language_and_records_as_before(config: Config, base: str) -> None:
    status, page, headers = one_click(link(base, "ann@example.org"), **{"Accept-Language": "es"})
    assert status == 200 and headers["Content-Language"] == "es"
    assert "ann@example.org ya no recibirá Noticias" in page
    (entry,) = entries(config)
    assert (entry.address, entry.source) == ("ann@example.org", "one-click")
    status, page, headers = one_click(link(base, "bob@example.org"))
    assert headers["Content-Language"] == "en" and "<h1>You are unsubscribed</h1>" in page
    assert "bob@example.org will get no more of Coop &lt;News&gt; &amp; Co." in page


def test_the_refusals_speak_the_reader_s_language(config: Config, base: str) -> None:
    fr = {"Accept-Language": "fr"}
    status, page, headers = request(f"{base}/unsubscribe?email=x&token=y", headers=fr)
    assert (status, headers["Content-Language"]) == (400, "fr")
    assert "<h1>Ce lien de désabonnement n’est pas valide</h1>" in page
    assert "Utilisez celui du dernier courriel reçu, ou répondez-y." in page
    status, page, _ = request(link(base, ANN), b"x=y", headers={**fr, "Content-Type": "text/plain"})
    assert status == 400
    assert "<h1>Ce n’est pas une demande de désabonnement</h1><p>Utilisez le bouton de la page.</p>" in page
    status, page, headers = request(link(base, ANN), b"", method="PUT", headers={"Accept-Language": "es"})
    assert (status, headers["Allow"]) == (405, "GET, HEAD, POST")
    assert "<h1>Acción no permitida</h1><p>Abra el enlace desde el correo que recibió.</p>" in page
    path = link(base, ANN).removeprefix(base)
    answer = raw_http(
        base,
        f"POST {path} HTTP/1.0\r\nAccept-Language: es\r\nContent-Length: {unsubscribe.MAX_BODY + 1}\r\n\r\n".encode(),
    ).decode()
    assert answer.startswith("HTTP/1.0 413 ") and "Content-Language: es\r\n" in answer
    assert "<h1>Solicitud demasiado grande</h1><p>Esta solicitud supera el tamaño permitido.</p>" in answer
    assert entries(config) == []


def test_a_store_that_cannot_be_written_says_so_in_the_reader_s_language(tmp_path: Path) -> None:
    config = workspace(tmp_path / "ws")
    config.paths.suppressions.mkdir()  # a folder where the file should be
    with running(config) as base:
        status, page, headers = one_click(link(base, ANN), **{"Accept-Language": "fr"})
    assert (status, headers["Content-Language"]) == (503, "fr")
    assert "<h1>Veuillez réessayer plus tard</h1>" in page
    assert "Votre demande n’a pas pu être enregistrée pour le moment." in page


def test_a_head_request_says_its_language_too(base: str) -> None:
    status, body, headers = request(link(base, ANN), method="HEAD", headers={"Accept-Language": "es"})
    assert (status, body, headers["Content-Language"], headers["Vary"]) == (200, "", "es", "Accept-Language")


# ---- the workspace's catalogs ----


def test_a_workspace_catalog_wins_over_the_packaged_one(config: Config) -> None:
    catalog(
        config,
        "fr",
        'msgid "Unsubscribe"\nmsgstr "Me désinscrire"\n\n'
        'msgid "Unsubscribe from %(title)s?"\nmsgstr "Quitter %(title)s\u00a0?"\n',
    )
    with running(config) as base:
        _, page, _ = get(base, "fr")
        assert ">Me désinscrire</button>" in page
        assert f"<h1>Quitter Actualités &lt;coop&gt; &amp; &quot;Cie&quot;{NB}?</h1>" in page
        assert "ne recevra plus cette lettre." in page  # what it leaves out: the packaged French
        _, page, _ = get(base, "es")  # other languages keep their own words
        assert ">Darse de baja</button>" in page


def test_a_language_without_a_packaged_catalog_comes_from_the_workspace(tmp_path: Path) -> None:
    config = workspace(tmp_path / "ws", '[languages.de]\ntitle = "Neuigkeiten"\n')
    catalog(config, "de", 'msgid "Unsubscribe from %(title)s?"\nmsgstr "%(title)s abbestellen?"\n')
    with running(config) as base:
        _, page, headers = get(base, "de-AT")
    assert headers["Content-Language"] == "de"
    assert "<h1>Neuigkeiten abbestellen?</h1>" in page
    assert ">Unsubscribe</button>" in page  # a string it leaves out stays English


def test_translated_words_are_escaped_too(config: Config) -> None:
    # A translation may not add "<" or "&" (the catalog is refused), but a quote it may: it is text.
    catalog(config, "fr", 'msgid "Unsubscribe"\nmsgstr "Oui, \\"désabonnez-moi\\""\n')
    with running(config) as base:
        _, page, _ = get(base, "fr")
    assert ">Oui, &quot;désabonnez-moi&quot;</button>" in page


def test_a_broken_workspace_catalog_stops_the_endpoint_at_start_up(config: Config) -> None:
    path = catalog(config, "fr", 'msgid "Unsubscribe"\nmsgstr "Se désabonner\n')
    with pytest.raises(TemplateError, match=r"digest\.po:6: a text goes in double quotes on one line"):
        unsubscribe.make_app(config)
    assert path.exists()


def test_a_catalog_broken_while_serving_leaves_the_packaged_words(config: Config) -> None:
    path = catalog(config, "fr", 'msgid "Unsubscribe"\nmsgstr "Me désinscrire"\n')
    app = unsubscribe.make_app(config)
    path.write_text(HEADER + 'msgid "Unsubscribe"\nmsgstr "Me désinscrire\n', encoding="utf-8")
    errors = io.StringIO()
    environ = {
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": link("", ANN).partition("?")[2],
        "HTTP_ACCEPT_LANGUAGE": "fr",
        "wsgi.errors": errors,
    }
    seen: list[str] = []
    page = b"".join(app(environ, lambda status, headers: seen.append(status))).decode()
    assert seen == ["200 OK"]
    assert ">Se désabonner</button>" in page
    assert "digest.po:6: a text goes in double quotes" in errors.getvalue()


# ---- in the browser ----


@pytest.mark.browser
def test_a_french_reader_s_browser_gets_the_french_page_and_its_button_works(config: Config) -> None:
    require_browser()
    from digest.shots import open_browser

    with running(config) as base, open_browser() as browser:
        page = browser.new_page(locale="fr-FR")  # Chromium says so in Accept-Language
        page.goto(link(base, ANN))
        assert page.title() == f'Se désabonner de Actualités <coop> & "Cie"{NB}?'
        assert page.locator("html").get_attribute("lang") == "fr"
        page.locator("button").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Votre désabonnement est enregistré"
        page.close()
    (entry,) = entries(config)
    assert (entry.address, entry.source) == (ANN, "link")
