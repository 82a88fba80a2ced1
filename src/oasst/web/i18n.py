"""Languages of the web UI: gettext catalogs, one Jinja2 environment per language, and choosing one.

After changing a text of the pages, update the catalogs (in src/oasst/web; tests/web/test_i18n.py checks
that every text is translated and every catalog compiled):

    pybabel extract -F babel.cfg -k N_ --no-location --sort-output -o locales/messages.pot .
    pybabel update -i locales/messages.pot -d locales -D messages --width 110
    (translate the new entries of locales/*/LC_MESSAGES/messages.po)
    pybabel compile -d locales -D messages
"""

from __future__ import annotations

import gettext
from datetime import datetime
from functools import cache
from pathlib import Path

import jinja2
from babel import Locale, negotiate_locale
from babel.core import UnknownLocaleError
from babel.dates import format_datetime

HERE = Path(__file__).parent
LOCALES = HERE / "locales"
TEMPLATES = HERE / "templates"
DOMAIN = "messages"
DEFAULT_LANG = "en"
# The UI languages: English (the source text) and those with a catalog under locales/
UI_LANGS = (DEFAULT_LANG, "de")
# Languages people may write and review tasks in (the UI language is the default task language).
TASK_LANGS = ("en", "de", "es", "fr", "it", "pt-BR", "ru", "zh", "ja", "ko", "uk-UA", "pl", "nl", "ca", "eu")


def N_(message: str) -> str:
    """Mark a text for the catalogs (`N_` is a keyword of the extractor); it is translated where shown."""
    return message


# Texts the pages show that come from the collection core: the label questions of the review tasks.
CORE_TEXTS = (
    N_("Seems to be intentionally low-quality or irrelevant"),
    N_("Fails to follow the correct instruction / task"),
    N_("Wrong Language"),
    N_("The message is written in a language that differs from the currently selected language."),
    N_("Contains personal identifiable information (PII)"),
    N_("Inappropriate"),
    N_("Content is abusive or threatening and expresses prejudice against a protected characteristic"),
    N_(
        "Prejudice refers to preconceived views not based on reason. Protected characteristics include "
        "gender, ethnicity, religion, sexual orientation, and similar characteristics."
    ),
    N_("Contains sexual content"),
    N_("Expresses moral judgement"),
    N_("Expresses political views"),
    N_("Overall subjective quality rating of the message"),
    N_("Rude, abusive, profane or insulting content"),
    N_("Humorous content including sarcasm"),
    N_("Helpfulness of the message"),
    N_("Creativity"),
    N_("Violence/abuse/terrorism/self-harm"),
)


def lang_name(code: str) -> str:
    """A language's name in itself ("Deutsch" for de)."""
    try:
        locale = Locale.parse(code, sep="-")
    except (ValueError, UnknownLocaleError):
        return code
    name = locale.get_display_name(locale) or code
    return name[:1].upper() + name[1:]


def pick_lang(chosen: str | None, accept_language: str | None) -> str:
    """The session's choice if it is a UI language, else the browser's best match, else English."""
    if chosen is not None and chosen in UI_LANGS:
        return chosen
    wanted = []
    for part in (accept_language or "").split(","):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        if tag and tag != "*":
            wanted.append((weight, tag.replace("_", "-")))
    wanted.sort(key=lambda item: -item[0])
    best = negotiate_locale([tag for _, tag in wanted], list(UI_LANGS), sep="-")
    return best or DEFAULT_LANG


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of `lang` (English needs none)."""
    if lang == DEFAULT_LANG:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALES, languages=[lang])


def _when(value: datetime | None, lang: str) -> str:
    if value is None:
        return ""
    return format_datetime(value, "medium", locale=Locale.parse(lang, sep="-"))


@cache
def environment(lang: str) -> jinja2.Environment:
    """The template environment of one UI language (autoescaping, i18n with `_()` and `{% trans %}`)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lang
    env.globals["lang_name"] = lang_name
    env.globals["UI_LANGS"] = UI_LANGS
    env.globals["TASK_LANGS"] = TASK_LANGS
    env.filters["when"] = lambda value: _when(value, lang)
    # Translates a text known only at run time; unlike `_()`, the result is escaped like any value.
    env.filters["tr"] = lambda value: translations(lang).gettext(str(value))
    return env
