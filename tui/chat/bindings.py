"""The chat screen's keys, in the key bar's order of importance: a narrow terminal shows the first
ones; f1 (the palette) and /help list them all, each by its tooltip."""
from __future__ import annotations

from textual.binding import Binding

KEEP_KEY = "f7"

CHAT_BINDINGS = [
    Binding("escape", "stop", "Stop", tooltip="Stop the generation, keeping its output"),
    # The habit from shells and other chat tools: ctrl+c stops (as esc); idle, it says how to quit.
    Binding("ctrl+c", "interrupt", "Interrupt", show=False, priority=True,
            tooltip="Stop the generation, as esc does; when nothing runs, say how to quit"),
    Binding("ctrl+d", "quit_on_empty_prompt", "End", show=False, priority=True,
            tooltip="Quit when the prompt is empty (else delete the character after the cursor)"),
    # The app's own ctrl+q does the quitting (in every screen); this one puts it on the key bar.
    Binding("ctrl+q", "app.quit", "Quit", priority=True, tooltip="Quit (a running generation is kept)"),
    Binding("ctrl+n", "next_preset", "Preset", key_display="^n/^p", tooltip="Next preset"),
    Binding("ctrl+p", "previous_preset", "Prev", show=False, tooltip="Previous preset"),
    # alt+digit as ESC-digit is caught in on_key (see tui.terminal.keys); these serve kitty-protocol terminals.
    Binding("alt+1", "choose_preset(1)", "Pick", key_display="M-1…9", tooltip="Choose preset 1-9 directly"),
    *[Binding(f"alt+{i}", f"choose_preset({i})", f"Preset {i}", show=False) for i in range(2, 10)],
    Binding("ctrl+r", "regenerate", "Regen", tooltip="Regenerate: send the last prompt again (waiting for a server: try it now)"),
    Binding("ctrl+g", "continue_output", "More", tooltip="Continue the last output by max_new_tokens"),
    Binding("f4", "edit_prompt", "Editor", tooltip="Edit the prompt in $EDITOR"),
    Binding("f2", "show_history", "History", tooltip="Browse, search and resend past exchanges"),
    Binding("f3", "toggle_probabilities", "Probs", tooltip="Colour each generated token by its probability"),
    Binding("f5", "inspect_tokens", "Tokens",
            tooltip="Token cursor: each step's candidates, the logit lens, branch from another token"),
    Binding("alt+left", "switch_branch(-1)", "Branch", key_display="M-←/→",
            tooltip="Previous branch of the last exchange"),
    Binding("alt+right", "switch_branch(1)", "Next branch", show=False, tooltip="Next branch of the last exchange"),
    # Priority: the prompt (a TextArea) would take f6 and f7 as select line / select all.
    Binding("f6", "toggle_compare", "Compare", priority=True,
            tooltip="Compare mode: each prompt goes to several presets side by side (/compare chooses them)"),
    # Off the key bar: the comparison itself says what f7 does, once there is something to keep.
    Binding(KEEP_KEY, "keep_column", "Keep", priority=True, show=False,
            tooltip="Keep a column of the last comparison (again: the next one)"),
    Binding("f9", "score_prompt", "Score", show=False,
            tooltip="Score the prompt box's text: loss, perplexity, each token coloured by the model's surprise"),
    Binding("f12", "show_overlap", "Copied",
            tooltip="Overlap view: the spans of the last output copied from the training text (/corpus gives it)"),
    Binding("f8", "inspect_model", "Model", tooltip="Model inspector: file, h_params, every tensor, memory"),
    Binding("ctrl+t", "toggle_mode", "Mode", tooltip="Switch completion / continue mode"),
    Binding("ctrl+l", "clear", "Clear", tooltip="Clear the screen and the continue context"),
    Binding("ctrl+o", "copy_output", "Copy", tooltip="Copy the last output (OSC 52, works over SSH)"),
    Binding("ctrl+s", "toggle_sidebar", "Sidebar", tooltip="Show or hide the preset sidebar"),
    # Scrolling the transcript while typing: the prompt has no use for these keys.
    Binding("pageup", "scroll_transcript('page_up')", "Page up", show=False, priority=True,
            tooltip="Scroll the transcript up a page"),
    Binding("pagedown", "scroll_transcript('page_down')", "Page down", show=False, priority=True,
            tooltip="Scroll the transcript down a page"),
    Binding("ctrl+home", "scroll_transcript('home')", "Top", show=False, priority=True,
            tooltip="Scroll to the top of the transcript"),
    Binding("ctrl+end", "scroll_transcript('end')", "Bottom", show=False, priority=True,
            tooltip="Scroll to the bottom of the transcript"),
]

# /help puts opposite keys on one row, under the first one's key and this text.
PAIRS = {
    "ctrl+n": ("ctrl+p", "^n/^p", "Next / previous preset"),
    "alt+left": ("alt+right", "M-←/→", "Previous / next branch of the last exchange"),
    "pageup": ("pagedown", "PgUp/PgDn", "Scroll the transcript a page, while typing"),
    "ctrl+home": ("ctrl+end", "^home/^end", "Top / bottom of the transcript"),
}


def shown_bindings() -> list[Binding]:
    """The keys the key bar shows, in order."""
    return [binding for binding in CHAT_BINDINGS if binding.show]


def help_rows(key_display) -> list[tuple[str, str]]:
    """Every key that does something, with what it does, in the key bar's order: /help's list.

    `key_display(binding)` names a key as the terminal's app does."""
    partners = {partner for partner, _, _ in PAIRS.values()}
    rows = []
    for binding in CHAT_BINDINGS:
        if binding.key in PAIRS:
            _, keys, text = PAIRS[binding.key]
            rows.append((keys, text))
        elif binding.tooltip and binding.key not in partners:
            rows.append((binding.key_display or key_display(binding), binding.tooltip))
    return rows
