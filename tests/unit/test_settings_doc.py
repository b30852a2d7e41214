"""docs/settings.md is tested against the `Settings` model: its table of application settings
holds every field, once, with the model's default, and nothing else; the other documents that
name settings in a table (docs/carriers.md) name only real ones, with the real defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.settings import Settings, secret_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"`([A-Za-z][A-Za-z0-9_]*)`")


def section(text: str, heading: str) -> str:
    """The body of the `## heading` section, up to the next `## ` heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of the markdown tables in `text` (header and rule skipped)."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return [row for row in cells if row[0] != "setting" and not set(row[0]) <= set("-: ")]


def documented_default(default: object) -> str:
    """How a default is written in the table: `unset` for None, else the value as it would be
    set in the environment (JSON for lists, lower-case booleans, integral floats as integers)."""
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    if isinstance(default, tuple):
        return f"`{json.dumps(list(default))}`"
    return f"`{default}`"


def application_table() -> dict[str, str]:
    text = (DOCS / "settings.md").read_text()
    rows = table_rows(section(text, "Application settings"))
    names = [NAME.fullmatch(row[0]) for row in rows]
    assert all(names), f"one setting per row, in backticks: {[r[0] for r in rows]}"
    documented = [match.group(1) for match in names if match]
    assert len(documented) == len(set(documented)), "a setting is documented twice"
    return {name: row[1] for name, row in zip(documented, rows, strict=True)}


def model_names() -> dict[str, object]:
    return {
        name.upper(): info.get_default(call_default_factory=True)
        for name, info in Settings.model_fields.items()
    }


def test_every_setting_is_documented_with_its_default() -> None:
    table = application_table()
    missing = sorted(set(model_names()) - set(table))
    assert not missing, f"docs/settings.md lacks {missing}"
    wrong = {
        name: (table[name], documented_default(default))
        for name, default in model_names().items()
        if table[name] != documented_default(default)
    }
    assert not wrong, f"documented default != model default: {wrong}"


def test_settings_document_names_no_setting_the_model_lacks() -> None:
    unknown = sorted(set(application_table()) - set(model_names()))
    assert not unknown, f"docs/settings.md documents settings Settings does not have: {unknown}"


def test_host_settings_table_holds_no_application_setting() -> None:
    text = (DOCS / "settings.md").read_text()
    rows = table_rows(section(text, "Read by the Functions host, not by the application"))
    names = {match.group(1) for row in rows if (match := NAME.fullmatch(row[0]))}
    assert names
    assert not {name.upper() for name in names} & set(model_names())


def test_secrets_section_lists_every_secret_setting() -> None:
    text = section((DOCS / "settings.md").read_text(), "Secrets")
    keys = re.search(r"Secret settings \(([^)]*)\)", text)
    assert keys
    listed = set(NAME.findall(keys[1])) | (
        {"MEDIA_STORAGE_CONNECTION_STRING"} & set(NAME.findall(text))
    )
    assert listed == {name.upper() for name in secret_settings()}


def test_carriers_document_names_real_settings_with_their_defaults() -> None:
    rows = table_rows(section((DOCS / "carriers.md").read_text(), "Settings"))
    defaults = model_names()
    assert rows
    for row in rows:
        names = NAME.findall(row[0])
        assert names and set(names) <= set(defaults), row
        stated = re.search(r"default `([^`]+)`", row[-1])
        if stated:
            assert len(names) == 1 and documented_default(defaults[names[0]]) == f"`{stated[1]}`"
