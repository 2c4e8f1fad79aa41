"""The command palette's entries: every key by the word the key bar shows, presets, and the slash commands."""
from __future__ import annotations

from textual.app import SystemCommand


def tfchat_commands(app):
    """SystemCommands for the palette; each key is named once, in the entry's help line."""
    for binding in app.BINDINGS:
        if not binding.tooltip or binding.action == "quit":
            continue
        key = binding.key_display or app.get_key_display(binding)
        yield SystemCommand(f"{binding.description}: {binding.tooltip}", f"key {key}",
                            lambda action=binding.action: app.run_action(action))
    for number, name in enumerate(app.catalog.names(), start=1):
        description = app.catalog.presets[name].description
        yield SystemCommand(f"Preset: {name}", (f"alt+{number} · " if number <= 9 else "") + description,
                            lambda name=name: app.set_preset(name))
    yield SystemCommand("Save: the transcript as Markdown", "/save PATH; from here, to a file in this directory",
                        app.save_transcript_here)
    yield SystemCommand("Help: keys and commands", "/help", lambda: app.run_slash_text("/help"))
