"""Presets from YAML: built-ins, user overrides, and validation messages that point at the problem."""
import pytest

from tfchat.core.errors import PresetError
from tfchat.core.system.paths import user_presets_file
from tfchat.core.settings.presets import load_presets, params_from_mapping


def test_builtin_presets_load_with_the_book_defaults():
    catalog = load_presets()
    assert {"greedy", "precise", "balanced", "creative", "book"} <= set(catalog.names())
    book = catalog.get("book").params
    assert (book.temperature, book.top_k, book.max_new_tokens) == (0.5, None, 200)
    assert catalog.get("greedy").params.temperature == 0
    assert catalog.warnings == []


def test_user_file_in_xdg_config_adds_and_overrides(tmp_path):
    path = user_presets_file()
    assert str(path).startswith(str(tmp_path))  # the conftest points XDG at tmp
    path.parent.mkdir(parents=True)
    path.write_text("presets:\n  book:\n    temperature: 0.9\n  mine:\n    top_k: 5\n    stop: [\"\\n\\n\"]\n")
    catalog = load_presets()
    assert catalog.get("book").params.temperature == 0.9
    assert catalog.get("book").source == "user"
    mine = catalog.get("mine").params
    assert mine.top_k == 5 and mine.stop == ("\n\n",)
    assert "greedy" in catalog.names()


@pytest.mark.parametrize("body,needle", [
    ("presets:\n  fast:\n    temprature: 0.5\n", "preset 'fast': key 'temprature': unknown"),
    ("presets:\n  fast:\n    top_k: 2.5\n", "preset 'fast': key 'top_k': must be an integer"),
    ("presets:\n  fast:\n    top_p: 7\n", "preset 'fast': key 'top_p'"),
    ("presets:\n  fast:\n    temperature: hot\n", "preset 'fast': key 'temperature': must be a number"),
    ("presets: [1, 2\n", "not valid YAML at line"),
    ("- just a list\n", "expected a top-level mapping"),
])
def test_a_bad_user_file_is_reported_and_builtins_still_load(body, needle):
    path = user_presets_file()
    path.parent.mkdir(parents=True)
    path.write_text(body)
    catalog = load_presets()
    assert "balanced" in catalog.names() and "fast" not in catalog.names()
    assert len(catalog.warnings) == 1
    assert str(path) in catalog.warnings[0] and needle in catalog.warnings[0]


def test_a_broken_builtin_file_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "presets.yaml"
    bad.write_text("presets:\n  x:\n    min_p: -1\n")
    with pytest.raises(PresetError, match=r"presets.yaml: preset 'x': key 'min_p'"):
        load_presets(builtin=bad)


def test_overrides_start_from_a_base():
    base = load_presets().get("precise").params
    changed = params_from_mapping({"temperature": 1.2}, base)
    assert changed.temperature == 1.2 and changed.top_k == base.top_k


def test_a_user_preset_named_like_a_built_in_changes_only_the_keys_it_names():
    path = user_presets_file()
    path.parent.mkdir(parents=True)
    path.write_text("presets:\n  balanced:\n    temperature: 0.9\n")
    builtin = load_presets(user=path.parent / "none.yaml").get("balanced")
    mine = load_presets().get("balanced")
    assert mine.params.temperature == 0.9 and mine.source == "user"
    assert mine.params.with_changes(temperature=builtin.params.temperature) == builtin.params
    assert mine.description == builtin.description
