"""Slash commands typed in the prompt, carried out on the app (parsing is in tui.slash).

Each command is a function of the app and the command's words, registered under its name
with `@slash_command`; a flow that owns a command registers it in its own module (`/compare`
in tui.compare_mode). A test checks every command tui.slash documents has its handler.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

from core.errors import TfchatError, describe_exception
from core.system.paths import user_path
from core.settings.presets import params_from_mapping, parse_setting
from tui.slash import COMMANDS, SlashCommand, SlashError, parse_slash
from tui.transcript import Transcript


HANDLERS: dict[str, Callable[..., None]] = {}


def slash_command(name: str):
    """Registers `handler(app, *words)` as what `/name` does."""
    def register(handler: Callable[..., None]) -> Callable[..., None]:
        HANDLERS[name] = handler
        return handler
    return register


class SlashCommandsMixin:
    """`/name args` runs the handler registered for `/name`; a wrong number of words shows the usage line."""

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
        handler = HANDLERS[command.name]
        try:
            inspect.signature(handler).bind(self, *command.args)
        except TypeError:
            transcript.add_notice(f"usage: {COMMANDS[command.name]}", error=True)
            return
        try:
            handler(self, *command.args)
        except (TfchatError, OSError) as exc:
            transcript.add_notice(f"{command.name}: {exc}", error=True)
        except Exception as exc:  # noqa: BLE001 - a bug in a command must not end the session
            transcript.add_notice(f"{command.name} failed: {describe_exception(exc)}", error=True)


@slash_command("/set")
def set_command(app, key: str, value: str, *more_words: str) -> None:
    value = parse_setting(key, (value, *more_words))
    changes = {**app.overrides.get(app.preset, {}), key: value}
    params_from_mapping(changes, app.catalog.get(app.preset).params)  # validate before keeping
    app.overrides[app.preset] = changes
    app._show_preset()
    app.query_one(Transcript).add_notice(f"{app.preset}: {key} = {value!r} for this session")


@slash_command("/unset")
def unset_command(app, key: str) -> None:
    changes = app.overrides.get(app.preset, {})
    if key == "all":
        changes.clear()
    elif key not in changes:
        raise TfchatError(f"{key} is not changed in {app.preset}")
    else:
        del changes[key]
    app._show_preset()


@slash_command("/preset")
def preset_command(app, name: str) -> None:
    app.set_preset(name)


@slash_command("/mode")
def mode_command(app, mode: str) -> None:
    if mode not in ("completion", "continue"):
        raise TfchatError("mode is 'completion' or 'continue'")
    if mode != app.mode:
        app.action_toggle_mode()


@slash_command("/clear")
def clear_command(app) -> None:
    app.action_clear()


@slash_command("/save")
def save_command(app, path: str) -> None:
    target = user_path(path)
    target.write_text(app.query_one(Transcript).as_markdown(app.model_source), encoding="utf-8")
    app.query_one(Transcript).add_notice(f"Saved the transcript to {target}")


@slash_command("/help")
def help_command(app) -> None:
    keys = "\n".join(f"  {b.key_display or app.get_key_display(b):<8} {b.tooltip}" for b in app.BINDINGS if b.show)
    commands = "\n".join(f"  {line}" for line in COMMANDS.values())
    app.query_one(Transcript).add_notice(
        f"Enter sends · ctrl+j new line · up/down recall earlier prompts · f1 command palette\n"
        f"Keys:\n{keys}\nCommands:\n{commands}\nModel: {app.model_source}")
