"""Built-in model catalogue: the published ``config.json`` numbers of models users ask for by name.

Each entry holds the architecture keys of the model's Hugging Face ``config.json`` exactly as the
model publisher ships them (same key names, so one parser reads both a catalogue entry and a local
``config.json``), plus the published parameter count. Parameter counts are the ones on the model
cards / safetensors metadata; where the card gives only a rounded number it is written as such.
The unit tests recompute every count from the architecture and require agreement within 1.5 %,
which checks the numbers below against each other.

Where a number is less certain it carries a comment. Names the seed documents use that are not a
published model (e.g. "DeepSeek-V3-Lite-16B") are listed in ``NOT_PUBLISHED`` with what the user
most likely means, so the lookup error can say so instead of guessing silently.
"""

from __future__ import annotations

import re

from llmrack.catalogue.entry import CatalogueEntry
from llmrack.catalogue.table import CATALOGUE, NOT_PUBLISHED

__all__ = [
    "CATALOGUE",
    "NOT_PUBLISHED",
    "CatalogueEntry",
    "catalogue_names",
    "find_entry",
    "known_forms",
    "normalize_name",
]


def normalize_name(name: str) -> str:
    """Lower-case, drop an ``org/`` prefix, and turn spaces/underscores into dashes."""
    name = name.strip().lower()
    if "/" in name:
        name = name.rsplit("/", 1)[-1]
    return re.sub(r"[\s_]+", "-", name)


def _short_forms(entry: CatalogueEntry) -> set[str]:
    """The canonical name, its aliases, and the name without -instruct/-chat/-vN.N suffixes."""
    forms = {normalize_name(entry.hf_id)} | {normalize_name(a) for a in entry.aliases}
    for form in list(forms):
        short = re.sub(r"-v\d+(\.\d+)*$", "", form)
        short = re.sub(r"-(instruct|chat)$", "", short)
        forms.add(short)
        # "meta-llama-3.1-8b" also answers as "llama-3.1-8b".
        if short.startswith("meta-"):
            forms.add(short[len("meta-") :])
    return forms


def _index() -> dict[str, CatalogueEntry]:
    index: dict[str, CatalogueEntry] = {}
    # Exact names first, so that "llama-3-8b" (an alias of Meta-Llama-3-8B-Instruct) is never taken
    # by a short form of another entry.
    for entry in CATALOGUE:
        index.setdefault(normalize_name(entry.hf_id), entry)
    for entry in CATALOGUE:
        for alias in entry.aliases:
            index.setdefault(normalize_name(alias), entry)
    for entry in CATALOGUE:
        for form in _short_forms(entry):
            index.setdefault(form, entry)
    return index


_INDEX = _index()


def find_entry(name: str) -> CatalogueEntry | None:
    """The entry for a catalogue name (case-insensitive, HF id or short name), or None."""
    return _INDEX.get(normalize_name(name))


def catalogue_names() -> list[str]:
    """Canonical Hugging Face ids of every built-in model, sorted case-insensitively."""
    return sorted((e.hf_id for e in CATALOGUE), key=str.lower)


def known_forms() -> list[str]:
    """Every accepted (normalized) name; used for "did you mean" hints."""
    return sorted(_INDEX)
