"""The gettext catalogs: complete for every text of the pages, compiled, and choosing a language."""

from __future__ import annotations

import gettext
import io

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from oasst.collection.labels import service as labels_service
from oasst.web.i18n import CORE_TEXTS, HERE, LOCALES, UI_LANGS, pick_lang

METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}
TRANSLATED = [lang for lang in UI_LANGS if lang != "en"]


def _source_texts() -> set[str]:
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        HERE, METHODS, options_map=OPTIONS, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_text_of_the_pages_is_translated(lang: str) -> None:
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source)
    translated = {
        (m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalog
        if m.id and all(m.string if isinstance(m.string, tuple) else [m.string]) and not m.fuzzy
    }
    texts = _source_texts()
    assert "Contribute" in texts and "Seems to be intentionally low-quality or irrelevant" in texts
    missing = sorted(texts - translated)
    assert not missing, f"untranslated in {lang} (update the catalogs as oasst/web/i18n.py says): {missing}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_compiled_catalog_matches_its_source(lang: str) -> None:
    folder = LOCALES / lang / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as source:
        compiled = io.BytesIO()
        write_mo(compiled, read_po(source))
    compiled.seek(0)
    fresh = gettext.GNUTranslations(compiled)
    with (folder / "messages.mo").open("rb") as shipped_file:
        shipped = gettext.GNUTranslations(shipped_file)
    assert fresh._catalog == shipped._catalog  # type: ignore[attr-defined]


def test_the_label_texts_of_the_core_are_listed_for_translation() -> None:
    texts = {label.display_text for label in labels_service.all_labels()}
    texts |= {label.help_text for label in labels_service.all_labels() if label.help_text}
    assert texts <= set(CORE_TEXTS)


@pytest.mark.parametrize(
    ("chosen", "header", "expected"),
    [
        (None, None, "en"),
        (None, "de-AT,de;q=0.9", "de"),
        (None, "fr-FR,fr;q=0.9,de;q=0.5", "de"),
        (None, "fr, es;q=0.5", "en"),
        (None, "de;q=bogus, en", "en"),
        ("en", "de", "en"),
        ("xx", "de", "de"),
    ],
)
def test_the_language_is_the_choice_then_the_browser_then_english(
    chosen: str | None, header: str | None, expected: str
) -> None:
    assert pick_lang(chosen, header) == expected
