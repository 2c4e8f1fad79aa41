"""Slash commands typed in the prompt, carried out on the chat screen (parsing is in tui.state.slash_syntax).

Each command is a function of the chat screen and the command's words, registered under its name
with `@slash_command`; a flow that owns a command registers it in its own module (`/compare`
in tui.chat.compare_actions). A test checks every command tui.state.slash_syntax documents has its handler.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from tfchat.core.errors import TfchatError, describe_exception
from tfchat.core.settings.preset_file import save_preset
from tfchat.core.settings.presets import load_presets, parse_setting
from tfchat.core.settings.shown_values import shown_value
from tfchat.core.system.files import write_text_atomically
from tfchat.core.system.paths import user_path, user_presets_file
from tfchat.tui.chat.bindings import help_rows
from tfchat.tui.state.slash_syntax import COMMANDS, SlashCommand, SlashError, parse_slash


HANDLERS: dict[str, Callable[..., None]] = {}


def slash_command(name: str):
    """Registers `handler(chat, *words)` as what `/name` does."""
    def register(handler: Callable[..., None]) -> Callable[..., None]:
        HANDLERS[name] = handler
        return handler
    return register


def run_slash_text(chat, text: str) -> bool:
    """Carry out `text` on the chat screen if it is a slash command (a mistyped one gets a notice);
    False for a prompt."""
    try:
        command = parse_slash(text)
    except SlashError as exc:
        chat.transcript.add_notice(str(exc), error=True)
        return True
    if command is None:
        return False
    run_slash_command(chat, command)
    return True


def run_slash_command(chat, command: SlashCommand) -> None:
    """The handler registered for the command; a wrong number of words shows the usage line."""
    handler = HANDLERS[command.name]
    try:
        inspect.signature(handler).bind(chat, *command.args)
    except TypeError:
        chat.transcript.add_notice(f"usage: {COMMANDS[command.name]}", error=True)
        return
    try:
        handler(chat, *command.args)
    except (TfchatError, OSError) as exc:
        chat.transcript.add_notice(f"{command.name}: {exc}", error=True)
    except Exception as exc:  # noqa: BLE001 - a bug in a command must not end the session
        chat.transcript.add_notice(f"{command.name} failed: {describe_exception(exc)}", error=True)


@slash_command("/set")
def set_command(chat, key: str, value: str, *more_words: str) -> None:
    value = parse_setting(key, (value, *more_words))
    chat.presets.set_value(key, value)
    chat.show_preset()
    chat.transcript.add_notice(f"{chat.presets.name}: {key} {shown_value(key, value)} for this session "
                               f"(/unset {key} undoes it, /preset save NAME keeps it)")


@slash_command("/unset")
def unset_command(chat, key: str) -> None:
    if key == "all":
        undone = chat.presets.unset_all()
        chat.show_preset()
        chat.transcript.add_notice("Undid every /set: " + "; ".join(f"{name} ({', '.join(keys)})"
                                                                    for name, keys in undone.items())
                                   if undone else "Nothing was changed with /set.")
        return
    if not chat.presets.unset(key):
        raise TfchatError(f"{key} is not changed in {chat.presets.name}")
    chat.show_preset()
    value = getattr(chat.current_params(), key)
    chat.transcript.add_notice(f"{chat.presets.name}: {key} back to the preset's {shown_value(key, value)}")


@slash_command("/preset")
def preset_command(chat, name: str, new_name: str | None = None) -> None:
    """`/preset NAME` switches; `/preset save NAME` writes the active preset, changes included."""
    if name != "save" or new_name is None:
        if new_name is not None:
            raise TfchatError(f"usage: {COMMANDS['/preset']}")
        chat.set_preset(name)
        return
    source = chat.presets.name
    if new_name in chat.presets.catalog.presets and new_name != source:
        raise TfchatError(f"a preset named {new_name!r} exists already; pick another name "
                          f"(or /preset {new_name}, then /preset save {new_name}, to change that one)")
    path = user_presets_file()
    description = chat.presets.description_with_changes()
    save_preset(path, new_name, chat.current_params(), description, replace=new_name == source)
    chat.presets.reload(load_presets())
    chat.set_preset(new_name)
    chat.transcript.add_notice(f"Saved {source}{' with its /set changes' if source != new_name else ''} "
                               f"as {new_name!r} in {path}; it is the active preset now.")


@slash_command("/mode")
def mode_command(chat, mode: str) -> None:
    if mode not in ("completion", "continue"):
        raise TfchatError("mode is 'completion' or 'continue'")
    if mode != chat.mode:
        chat.action_toggle_mode()


@slash_command("/clear")
def clear_command(chat) -> None:
    chat.action_clear()


@slash_command("/save")
def save_command(chat, path: str) -> None:
    save_transcript(chat, path, replace=False)


@slash_command("/save!")
def save_replacing_command(chat, path: str) -> None:
    save_transcript(chat, path, replace=True)


def save_transcript(chat, path: str, replace: bool) -> None:
    """The transcript as Markdown at `path`; an existing file is replaced only when asked (/save!)."""
    target = user_path(path)
    if not chat.transcript.saved_views():
        raise TfchatError("nothing to save: the transcript has no exchange yet")
    if not target.parent.is_dir():
        raise TfchatError(f"there is no folder {target.parent}; nothing saved (make it, or save elsewhere)")
    if target.is_dir():
        raise TfchatError(f"{target} is a folder; nothing saved (give a file name)")
    if target.exists() and not replace:
        raise TfchatError(f"{target} exists; nothing saved (/save! {path} replaces it)")
    try:
        write_text_atomically(target, chat.transcript.as_markdown(chat.model_source))
    except OSError as exc:
        raise TfchatError(f"cannot write {target}: {exc.strerror or exc}; nothing saved") from None
    chat.transcript.add_notice(f"Saved the transcript to {target}")


@slash_command("/help")
def help_command(chat) -> None:
    commands = []
    for line in COMMANDS.values():
        usage, text = re.split(r"\s{2,}", line, maxsplit=1)
        commands.append(Text.assemble((usage, "bold"), "  ", text))
    keys = Table.grid(padding=(0, 2))
    keys.add_column(no_wrap=True, style="bold")
    keys.add_column()
    for key, text in help_rows(chat.app.get_key_display):
        keys.add_row(key, text)
    chat.transcript.add_notice(Group(
        Text("Enter sends · ctrl+j new line · up/down recall earlier prompts · f1 command palette"),
        Text("Keys:"), indented(keys), Text("Commands:"), *[indented(line) for line in commands],
        Text(f"Model: {chat.model_source}")))


def indented(renderable) -> Padding:
    """Two cells in, wrapped lines too."""
    return Padding(renderable, (0, 0, 0, 2))
