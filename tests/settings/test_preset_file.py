"""`/preset save`'s writer: the user's presets file edited as text, read back before it is kept."""
import pytest

from tfchat.core.errors import PresetError
from tfchat.core.settings.preset_file import save_preset
from tfchat.core.settings.presets import load_presets
from tfchat.core.settings.sampling_params import SamplingParams

MINE = SamplingParams(temperature=0.6, top_k=None, top_p=0.95, max_new_tokens=80, seed=None, stop=("\n\n", "###"))


def test_a_new_file_holds_the_preset_and_loads_it_exactly(tmp_path):
    path = tmp_path / "cfg" / "presets.yaml"
    save_preset(path, "mine", MINE, "My everyday settings")
    catalog = load_presets(user=path)
    assert catalog.warnings == [] and catalog.get("mine").params == MINE
    assert catalog.presets["mine"].description == "My everyday settings"


USERS_FILE = """\
# my presets, hand-written
presets:
  short:   # quick looks
    temperature: 0.8
    max_new_tokens: 60

  mine:
    temperature: 0.1
    # an old comment inside mine
    max_new_tokens: 5

  long: {temperature: 0.9, max_new_tokens: 400}
"""


def test_an_existing_file_keeps_its_comments_and_other_presets_and_replaces_only_when_asked(tmp_path):
    path = tmp_path / "presets.yaml"
    path.write_text(USERS_FILE)
    with pytest.raises(PresetError, match="already has a preset 'mine'; nothing written"):
        save_preset(path, "mine", MINE)
    assert path.read_text() == USERS_FILE
    save_preset(path, "mine", MINE, replace=True)
    text = path.read_text()
    assert "# my presets, hand-written" in text and "short:   # quick looks" in text
    assert "long: {temperature: 0.9, max_new_tokens: 400}" in text and "an old comment inside mine" not in text
    catalog = load_presets(user=path)
    assert catalog.get("mine").params == MINE and catalog.get("short").params.max_new_tokens == 60
    assert catalog.get("long").params.max_new_tokens == 400 and catalog.warnings == []
    save_preset(path, "another", MINE)  # added to the block, after the others
    assert list(load_presets(user=path).presets)[-3:] == ["mine", "long", "another"]
    assert path.read_text().startswith(USERS_FILE.split("  mine:")[0])


def test_a_file_it_cannot_read_or_edit_is_left_as_it_was(tmp_path):
    path = tmp_path / "presets.yaml"
    for broken in ("presets: [not, a, mapping]\n", "presets:\n  short: {temperature: 0.8\n"):
        path.write_text(broken)
        with pytest.raises(PresetError):
            save_preset(path, "mine", MINE)
        assert path.read_text() == broken
    flow = "presets: {mine: {temperature: 0.2}}\n"
    path.write_text(flow)
    with pytest.raises(PresetError, match="this can add to; nothing written"):
        save_preset(path, "mine", MINE, replace=True)
    assert path.read_text() == flow
    with pytest.raises(PresetError, match="one word"):
        save_preset(path, "two words", MINE)
