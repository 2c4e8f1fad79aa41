"""Comparing presets and prompts side by side: the engine's batch as text, the CLI, the app."""
import json

import pytest

from core.engine import Engine
from core.presets import load_presets
from test_cli import tfchat


def test_generate_compare_prints_a_header_per_preset_and_a_greedy_row_is_the_single_run(small_model):
    compared = tfchat("generate", "The sales team", "--model", str(small_model), "--compare", "greedy,creative",
                      "--max-new-tokens", "12", "--seed", "4")
    assert compared.returncode == 0, compared.stderr
    single = tfchat("generate", "The sales team", "--model", str(small_model), "--preset", "greedy",
                    "--max-new-tokens", "12")
    blocks = compared.stdout.split("\n\n")
    assert blocks[0].startswith("== greedy ==\n") and blocks[1].startswith("== creative ==\n")
    assert blocks[0].removeprefix("== greedy ==\n") == single.stdout.rstrip("\n")


def test_generate_prompts_file_as_jsonl_one_object_per_row(small_model, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Customers often\n\nThe product\n", encoding="utf-8")
    r = tfchat("generate", "--model", str(small_model), "--prompts-file", str(prompts), "--prompt", "Sales",
               "--preset", "greedy", "--max-new-tokens", "6", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["prompt"] for row in rows] == ["Sales", "Customers often", "The product"]
    assert {row["preset"] for row in rows} == {"greedy"}
    assert all(row["stats"]["new_tokens"] == 6 and row["stats"]["finish_reason"] == "length" and row["text"]
               for row in rows)


@pytest.mark.parametrize("args,needle", [
    (("--compare", "greedy,nope", "x"), "unknown preset 'nope'"),
    (("--compare", "greedy", "--trace", "x"), "do not combine"),
    (("--prompts-file", "/nonexistent/prompts.txt"), "/nonexistent/prompts.txt"),
])
def test_compare_mistakes_are_one_line_and_exit_2(small_model, args, needle):
    r = tfchat("generate", "--model", str(small_model), *args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_engine_batch_rows_stop_at_their_own_stop_strings_and_keep_the_others_going(small_model):
    engine = Engine.load(small_model, "cpu")
    catalog = load_presets()
    greedy = catalog.get("greedy").params
    alone = "".join(engine.generate("The sales team", greedy.with_changes(max_new_tokens=30)))
    stop_at = alone.split()[3]  # a word that comes up a few tokens in
    rows = [greedy.with_changes(max_new_tokens=30, stop=(stop_at,)), greedy.with_changes(max_new_tokens=30)]
    batch = engine.generate_batch(["The sales team"] * 2, rows)
    ended = [event.row for event in batch if event.stats is not None]
    assert ended == [0, 1]  # the stopped row ends first
    assert batch.stats[0].finish_reason == "stop" and stop_at not in batch.texts[0]
    assert alone.startswith(batch.texts[0])
    assert batch.texts[1] == alone and batch.stats[1].finish_reason == "length"
    engine.close()


def test_bench_batch_prints_the_aggregate_rate_and_its_ratios(make_checkpoint):
    r = tfchat("bench", "--batch", "3", "--model", str(make_checkpoint(context_length=24)), "--tokens", "8")
    assert r.returncode == 0, r.stderr
    assert "batch of 3 rows, all rows together" in r.stdout
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 3 and figures["batch_tokens_per_s"] > 0
    assert figures["ratio_vs_one_row"] == round(figures["batch_tokens_per_s"] / figures["batch_of_1_tokens_per_s"], 2)
