"""[languages.xx] tables: the texts of the digest in each further language, checked with the same checks
as their top-level settings (digest/config/values.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from digest.config.values import categories, display_name, greeting, language, line, nonempty_line, text


@dataclass(frozen=True, kw_only=True)
class LanguageTexts:
    """One [languages.xx] table: the texts of the digest in a further language (empty: the top-level one)."""

    code: str
    title: str = ""
    intro: str = ""
    subject: str = ""
    preheader: str = ""
    greeting: str = ""
    greeting_fallback: str = ""
    order: tuple[str, ...] = ()  # the sections' order in this language's digest (): [categories] order
    from_name: str = ""  # the From display name of this language's messages ("": [email] from's)


_LANGUAGE_KEYS = (
    "title",
    "intro",
    "subject",
    "preheader",
    "greeting",
    "greeting_fallback",
    "order",
    "from_name",
)


def _named(key: str, check: Any, table: dict[str, Any]) -> Any:
    """A key of a [languages.xx] table, checked; its errors name the key."""
    if key not in table:
        return ""
    try:
        return check(table[key])
    except ValueError as err:
        raise ValueError(f"{key}: {err}") from err


def languages(v: Any) -> tuple[LanguageTexts, ...]:
    """[languages.fr], [languages.es]...: title, intro, subject and preheader for each further language."""
    if not isinstance(v, dict) or not all(isinstance(x, dict) for x in v.values()):
        raise ValueError("expected tables like [languages.fr] with title, intro and subject")
    out = []
    for code, table in v.items():
        try:
            lang = language(code)
            unknown = sorted(set(table) - set(_LANGUAGE_KEYS))
            if unknown:
                raise ValueError(f"unknown key {unknown[0]!r}; keys are {', '.join(_LANGUAGE_KEYS)}")
            out.append(
                LanguageTexts(
                    code=lang,
                    title=nonempty_line(table["title"]) if "title" in table else "",
                    intro=text(table["intro"]) if "intro" in table else "",
                    subject=nonempty_line(table["subject"]) if "subject" in table else "",
                    preheader=line(table["preheader"]) if "preheader" in table else "",
                    greeting=greeting(table["greeting"]) if "greeting" in table else "",
                    greeting_fallback=line(table["greeting_fallback"])
                    if "greeting_fallback" in table
                    else "",
                    order=categories(table["order"]) if "order" in table else (),
                    from_name=_named("from_name", display_name, table),
                )
            )
        except ValueError as err:
            raise ValueError(f"[languages.{code}]: {err}") from err
    return tuple(out)
