"""Raw pastes: the driver's key runs (a real event loop and a real input thread) and the prompt
pane's gathered inserts (the real widget under Pilot)."""
import asyncio
import threading
import time

from textual import events
from textual.app import App

from tfchat.tui.widgets.prompt_input import PromptInput
from tfchat.tui.terminal.raw_paste import LINE_PASTE_KEYS, SHORTEST_RAW_PASTE, TRAILING_KEY_GRACE, KeyRuns

PASTED = "".join(f"def greet_{i}(name):\n\treturn 'hello ' + name  # number {i}\n\n" for i in range(8))


def key_for(character: str) -> events.Key:
    """The Key event Textual's input parser makes for a character a terminal sends."""
    named = {"\n": ("enter", "\r"), "\t": ("tab", "\t"), " ": ("space", " ")}
    if character in named:
        return events.Key(*named[character])
    return events.Key(character if character.isalnum() else f"char_{ord(character)}", character)


def as_text(sent) -> str:
    """What the prompt would receive: pastes as they are, keys as the characters they type."""
    out = []
    for message in sent:
        if isinstance(message, events.Paste):
            out.append(message.text)
        else:
            out.append({"enter": "\n", "tab": "\t"}.get(message.key, message.character or f"<{message.key}>"))
    return "".join(out)


async def feed(keys, from_thread: bool = False, pause_every: int = 0):
    """Feeds keys as the input thread does, returns what went out once the loop has settled.

    pause_every: from the thread, a 3 ms pause after every that many keys (reads of a busy pty).
    """
    loop = asyncio.get_running_loop()
    sent = []
    runs = KeyRuns(sent.append, loop.call_soon_threadsafe, loop.call_later, sender=None)
    if from_thread:
        def read_all():
            for i, key in enumerate(keys, 1):
                runs.take(key)
                if pause_every and i % pause_every == 0:
                    time.sleep(0.003)
        thread = threading.Thread(target=read_all)
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.001)
    else:
        for key in keys:
            runs.take(key)
    await asyncio.sleep(TRAILING_KEY_GRACE * 3)
    return sent


async def test_a_long_multi_line_run_read_together_is_one_paste_with_its_line_breaks_and_tabs():
    assert len(PASTED) >= LINE_PASTE_KEYS
    sent = await feed([key_for(c) for c in PASTED.rstrip("\n")])
    assert [type(m) for m in sent] == [events.Paste]
    assert sent[0].text == PASTED.rstrip("\n")


async def test_a_short_run_stays_keys_so_bindings_on_letters_still_work():
    keys = [key_for(c) for c in "q/n\n"]
    assert len(keys) < SHORTEST_RAW_PASTE
    sent = await feed(keys)
    assert sent == keys  # the same events, in order, untouched


async def test_commands_a_script_types_one_after_another_each_still_send():
    """tmux send-keys "/set max_new_tokens 5000" Enter "Hangup 4" Enter, read in one go."""
    first, second = "/set max_new_tokens 5000", "a prompt long enough to be sent as one paste"
    sent = await feed([key_for(c) for c in f"{first}\n{second}\n"])
    enters = [i for i, m in enumerate(sent) if isinstance(m, events.Key) and m.key == "enter"]
    assert len(enters) == 2 and enters[1] == len(sent) - 1
    assert as_text(sent[:enters[0]]) == first and all(isinstance(m, events.Key) for m in sent[:enters[0]])
    assert [type(m) for m in sent[enters[0] + 1:enters[1]]] == [events.Paste]
    assert sent[enters[0] + 1].text == second


async def test_the_enter_that_ends_a_long_run_is_a_key_that_sends():
    text = "x" * 40
    sent = await feed([key_for(c) for c in text] + [key_for("\n")])
    assert isinstance(sent[0], events.Paste) and sent[0].text == text
    assert [m.key for m in sent[1:]] == ["enter"]


async def test_a_key_that_is_not_text_acts_after_everything_read_before_it():
    text = "y" * 50
    sent = await feed([key_for(c) for c in text] + [events.Key("ctrl+q", None)] + [key_for("z")])
    assert as_text(sent) == text + "<ctrl+q>z"
    assert isinstance(sent[0], events.Paste) and sent[1].key == "ctrl+q"


async def test_200_kb_from_the_input_thread_arrives_whole_in_order_in_few_events():
    text = "".join(f"{i} the quick brown fox\n" for i in range(9000))[:200_000].rstrip("\n") + "!"
    keys = [key_for(c) for c in text] + [key_for("\n")]  # the paste, then Enter
    sent = await feed(keys, from_thread=True)
    assert as_text(sent) == text + "\n"
    assert sent[-1].key == "enter"  # the last Enter still sends
    assert not any(isinstance(m, events.Key) and m.key == "enter" for m in sent[:-1])  # the rest were text
    assert len(sent) < len(keys) / 100


async def test_a_multi_line_paste_read_in_pieces_stays_one_text_from_its_first_line():
    """The loop may flush after the first few keys of a paste: its first lines must not send."""
    text = PASTED * 10
    sent = await feed([key_for(c) for c in text.rstrip("\n")], from_thread=True, pause_every=100)
    assert as_text(sent) == text.rstrip("\n")
    assert not any(isinstance(m, events.Key) and m.key == "enter" for m in sent)


class PromptApp(App):
    def __init__(self):
        super().__init__()
        self.changes = 0
        self.submitted = []

    def compose(self):
        yield PromptInput(id="prompt")

    def on_text_area_changed(self) -> None:
        self.changes += 1

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        self.submitted.append(message.text)


async def test_keys_that_arrive_faster_than_anyone_types_become_a_few_inserts():
    """Each insert re-wraps the line, so one per key made a long paste cost time squared."""
    text = "the quick brown fox jumps over the lazy dog " * 400  # 17,600 characters on one line
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.pause()
        for character in text:
            app.post_message(key_for(character))
        while len(prompt.document.text) < len(text):
            await asyncio.sleep(0.02)
        await pilot.pause()
        assert prompt.text == text
        assert prompt.cursor_location == (0, len(text))
        assert app.changes < 20


async def test_typed_keys_and_pastes_keep_their_order_and_enter_sends_them_all():
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.pause()
        for message in [key_for("a"), events.Paste("B C"), key_for("d"), key_for("\n")]:
            app.post_message(message)  # all queued at once, as a fast link delivers them
        await pilot.pause(0.2)
        assert app.submitted == ["aB Cd"] and prompt.text == ""
