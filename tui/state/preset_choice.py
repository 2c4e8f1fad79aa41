"""Which preset is active, and this session's `/set` changes to each preset. Plain state, no widgets."""
from __future__ import annotations

from tfchat.core.settings.presets import PresetCatalog, params_from_mapping
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.settings.shown_values import shown_value


class PresetChoice:
    def __init__(self, catalog: PresetCatalog, name: str):
        catalog.get(name)  # raises with the list of names when unknown
        self.catalog = catalog
        self.name = name
        self.overrides: dict[str, dict] = {}  # preset name -> /set values for this session

    @staticmethod
    def starting(catalog: PresetCatalog, asked: str | None, remembered: str | None) -> PresetChoice:
        """The preset a session starts on: the one asked for, else the last one used, else 'balanced'."""
        default = "balanced" if "balanced" in catalog.presets else catalog.names()[0]
        return PresetChoice(catalog, asked or (remembered if remembered in catalog.presets else default))

    def params_for(self, name: str) -> SamplingParams:
        """A preset's params with this session's /set changes to it."""
        base = self.catalog.get(name).params
        changes = self.overrides.get(name)
        return params_from_mapping(changes, base) if changes else base

    def current(self) -> SamplingParams:
        return self.params_for(self.name)

    def changed(self) -> set[str]:
        """The keys /set changed in the active preset."""
        return set(self.overrides.get(self.name, {}))

    def description_with_changes(self) -> str:
        """What a preset saved from the active one says of itself: its /set changes in words ('greedy with
        temperature 0.3'), or the preset's own description when nothing differs from it."""
        base = self.catalog.get(self.name)
        current = self.current()
        changed = [key for key in self.overrides.get(self.name, {}) if getattr(current, key) != getattr(base.params, key)]
        if not changed:
            return base.description
        return f"{self.name} with " + ", ".join(f"{key} {shown_value(key, getattr(current, key))}" for key in changed)

    def choose(self, name: str) -> None:
        self.catalog.get(name)
        self.name = name

    def stepped(self, step: int) -> str:
        """The name `step` places after the active one, wrapping around."""
        names = self.catalog.names()
        return names[(names.index(self.name) + step) % len(names)]

    def numbered(self, number: int) -> str | None:
        """Preset `number` (from 1) in the catalog's order, None past the end."""
        names = self.catalog.names()
        return names[number - 1] if 1 <= number <= len(names) else None

    def set_value(self, key: str, value) -> None:
        """`/set key value` on the active preset, validated before it is kept."""
        changes = {**self.overrides.get(self.name, {}), key: value}
        params_from_mapping(changes, self.catalog.get(self.name).params)
        self.overrides[self.name] = changes

    def unset(self, key: str) -> bool:
        """Drop the active preset's /set change of `key`; False when it was not changed."""
        changes = self.overrides.get(self.name, {})
        if key not in changes:
            return False
        del changes[key]
        return True

    def reload(self, catalog: PresetCatalog) -> None:
        """A catalog read again (a preset was saved); changes to presets it still has are kept."""
        self.catalog = catalog
        self.overrides = {name: changes for name, changes in self.overrides.items() if name in catalog.presets}
        if self.name not in catalog.presets:
            self.name = catalog.names()[0]

    def unset_all(self) -> dict[str, list[str]]:
        """Drop every /set change, in every preset; returns what was changed, preset -> keys."""
        undone = {name: sorted(changes) for name, changes in self.overrides.items() if changes}
        self.overrides.clear()
        return undone
