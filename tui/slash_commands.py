"""Slash commands typed in the prompt, carried out on the app (parsing is in tui.slash)."""
from __future__ import annotations

import inspect

from core.errors import TfchatError, describe_exception
from core.system.paths import user_path
from core.settings.presets import params_from_mapping, parse_setting
from tui.slash import COMMANDS, SlashCommand, SlashError, parse_slash
from tui.transcript import Transcript


class SlashCommandsMixin:
    """`/name args` runs `_cmd_name(*args)`; a wrong number of words shows the usage line."""

    def run_slash_text(self, text: str) -> bool:
        """Carry out `text` if it is a slash command (a mistyped one gets a notice); False for a prompt."""
        try:
            command = parse_slash(text)
        except SlashError as exc:
            self.query_one(Transcript).add_notice(str(exc), error=True)
            return True
        if command is None:
            return False
        self.run_slash_command(command)
        return True

    def run_slash_command(self, command: SlashCommand) -> None:
        transcript = self.query_one(Transcript)
        handler = getattr(self, "_cmd_" + command.name[1:])
        try:
            inspect.signature(handler).bind(*command.args)
        except TypeError:
            transcript.add_notice(f"usage: {COMMANDS[command.name]}", error=True)
            return
        try:
            handler(*command.args)
        except (TfchatError, OSError) as exc:
            transcript.add_notice(f"{command.name}: {exc}", error=True)
        except Exception as exc:  # noqa: BLE001 - a bug in a command must not end the session
            transcript.add_notice(f"{command.name} failed: {describe_exception(exc)}", error=True)

    def _cmd_set(self, key: str, value: str, *more_words: str) -> None:
        value = parse_setting(key, (value, *more_words))
        changes = {**self.overrides.get(self.preset, {}), key: value}
        params_from_mapping(changes, self.catalog.get(self.preset).params)  # validate before keeping
        self.overrides[self.preset] = changes
        self._show_preset()
        self.query_one(Transcript).add_notice(f"{self.preset}: {key} = {value!r} for this session")

    def _cmd_unset(self, key: str) -> None:
        changes = self.overrides.get(self.preset, {})
        if key == "all":
            changes.clear()
        elif key not in changes:
            raise TfchatError(f"{key} is not changed in {self.preset}")
        else:
            del changes[key]
        self._show_preset()

    def _cmd_preset(self, name: str) -> None:
        self.set_preset(name)

    def _cmd_mode(self, mode: str) -> None:
        if mode not in ("completion", "continue"):
            raise TfchatError("mode is 'completion' or 'continue'")
        if mode != self.mode:
            self.action_toggle_mode()

    def _cmd_clear(self) -> None:
        self.action_clear()

    def _cmd_save(self, path: str) -> None:
        target = user_path(path)
        target.write_text(self.query_one(Transcript).as_markdown(self.model_source), encoding="utf-8")
        self.query_one(Transcript).add_notice(f"Saved the transcript to {target}")

    def _cmd_help(self) -> None:
        keys = "\n".join(f"  {b.key_display or self.get_key_display(b):<8} {b.tooltip}" for b in self.BINDINGS if b.show)
        commands = "\n".join(f"  {line}" for line in COMMANDS.values())
        self.query_one(Transcript).add_notice(
            f"Enter sends · ctrl+j new line · up/down recall earlier prompts · f1 command palette\n"
            f"Keys:\n{keys}\nCommands:\n{commands}\nModel: {self.model_source}")
