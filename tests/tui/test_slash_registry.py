"""The slash commands: every one the help documents has its handler, and each takes the words its usage says."""
import inspect
import re

import tfchat.tui.app  # noqa: F401 - importing the app registers every flow's commands
from tfchat.tui.state.slash_syntax import COMMANDS
from tfchat.tui.chat.slash_commands import HANDLERS


def test_every_documented_command_has_one_handler_and_no_handler_is_undocumented():
    assert sorted(HANDLERS) == sorted(COMMANDS)


def test_each_handler_takes_the_chat_screen_and_the_words_of_its_usage_line():
    for name, handler in HANDLERS.items():
        parameters = list(inspect.signature(handler).parameters.values())
        assert parameters[0].name == "chat", name
        usage = re.sub(r"\[[^]]*\]", "", COMMANDS[name].split("  ")[0])  # optional words are in brackets
        usage_words = usage.split()[1:]
        required = [p for p in parameters[1:] if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        assert len(required) == len(usage_words), (name, usage_words, [p.name for p in required])
