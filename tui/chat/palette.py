"""The command palette's entries: every key by the word the key bar shows, presets, and the slash commands."""
from __future__ import annotations

from textual.app import SystemCommand

from tfchat.tui.chat.bindings import CHAT_BINDINGS

TRANSCRIPT_NAME = "tfchat-transcript-%Y%m%d-%H%M%S.md"  # the palette's Save writes this, in the current folder


def tfchat_commands(chat):
    """SystemCommands for the palette, run on the chat screen; each key is named once, in the entry's help line."""
    for binding in CHAT_BINDINGS:
        if not binding.tooltip or binding.action == "app.quit":
            continue
        key = chat.app.get_key_display(binding)  # its own key: `^n/^p` would name the other half too
        yield SystemCommand(f"{binding.description}: {binding.tooltip}", f"key {key}",
                            lambda action=binding.action: chat.run_action(action))
    catalog = chat.presets.catalog
    for number, name in enumerate(catalog.names(), start=1):
        description = catalog.presets[name].description
        yield SystemCommand(f"Preset: {name}", (f"alt+{number} · " if number <= 9 else "") + description,
                            lambda name=name: chat.set_preset(name))
    yield SystemCommand("Save: the transcript as Markdown",
                        f"to {TRANSCRIPT_NAME.replace('%Y%m%d-%H%M%S', 'DATE-TIME')} in this directory "
                        "(/save PATH chooses the file)", chat.save_transcript_here)
    yield SystemCommand("Resume: reopen the last conversation", "/resume (f2, then ctrl+r: any conversation)",
                        lambda: chat.run_slash_text("/resume"))
    yield SystemCommand("Help: keys and commands", "/help", lambda: chat.run_slash_text("/help"))
