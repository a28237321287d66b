"""User data files: every malformed row named by file, row and field; chat templates; over-long rows."""

from __future__ import annotations

import json

import pytest

from reweightlab.config import ConfigError
from reweightlab.tasks.dataset import DataError
from reweightlab.tasks.formatting import FormatError
from reweightlab.tasks.rewards import RewardError
from reweightlab.tasks.user_task import DatasetTask, resolve_task
from reweightlab.train.config import config_from_dict
from reweightlab.train.user_data import file_store


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = {"prompt": "1+1=", "completion": "2", "answer": "2"}


@pytest.mark.parametrize("bad, match", [
    ({"completion": "2"}, "row 2: field 'prompt' is missing"),
    ({"prompt": 5, "completion": "2"}, "row 2: field 'prompt' must be a string"),
    ({"prompt": "1+1=", "completion": 2}, "row 2: field 'completion' must be a string"),
    ({"prompt": "1+1=", "completion": "  "}, "row 2: field 'completion' is empty"),
    ({"prompt": "1+1="}, "row 2: field 'completion' is missing"),
    ({"prompt": "1+1=", "completion": "2", "answer": [1]}, "row 2: field 'answer' must be a string or a number"),
    ({"prompt": "1+1=", "completion": "2", "split": "dev"}, "row 2: field 'split' must be 'train' or 'test'"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
     "row 2: field 'messages': the completion (last assistant message) is empty"),
    ({"messages": [{"role": "user"}]}, "row 2: field 'messages' message 0"),
    ('{"prompt": "1+1=", "completion": ', "row 2: not valid JSON"),
    ("[1, 2]", "row 2: expected a JSON object"),
])
def test_malformed_jsonl_rows(tmp_path, bad, match):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, bad])
    with pytest.raises(DataError) as err:
        DatasetTask(path, need_completion=True)
    assert str(path) in str(err.value) and match in str(err.value)


def test_score_field_must_be_on_every_row(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD | {"reward": 1.0}, GOOD, GOOD | {"reward": "high"}])
    with pytest.raises(DataError, match=r"row 2: field 'reward' is missing"):
        DatasetTask(path)
    path = write_jsonl(tmp_path / "e.jsonl", [GOOD | {"score": 1.0}, GOOD | {"score": "high"}])
    with pytest.raises(DataError, match=r"e.jsonl:row 2: field 'score' must be a finite number"):
        DatasetTask(path)


def test_malformed_parquet_rows(tmp_path):
    import datasets

    path = tmp_path / "d.parquet"
    datasets.Dataset.from_list([{"prompt": "a", "completion": 1}, {"prompt": "b", "completion": 2}]).to_parquet(path)
    with pytest.raises(DataError, match=r"d.parquet:row 1: field 'completion' must be a string"):
        DatasetTask(path, need_completion=True)
    good = tmp_path / "g.parquet"
    datasets.Dataset.from_list([GOOD, GOOD | {"prompt": "2+2=", "completion": "4"}]).to_parquet(good)
    task = DatasetTask(good, need_completion=True, test_fraction=0.0)
    assert [e.completion for e in task.examples("id")] == ["2", "4"]


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        DatasetTask(tmp_path / "none.jsonl")
    (tmp_path / "d.csv").write_text("prompt,completion\n")
    with pytest.raises(DataError, match="expected a .jsonl or .parquet file"):
        DatasetTask(tmp_path / "d.csv")


TEMPLATE = ("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% if m['role'] == 'assistant' %}"
            "{{ eos_token }}{% endif %}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}")


@pytest.fixture()
def chat_tokenizer(tiny_model_dir, tmp_path):
    import shutil

    from reweightlab.models import load_tokenizer

    # a model folder whose tokenizer carries a chat template, saved and loaded as a user's would be
    folder = tmp_path / "chat-model"
    shutil.copytree(tiny_model_dir, folder)
    tok = load_tokenizer(folder)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(folder)
    return load_tokenizer(folder)


def test_messages_render_through_the_chat_template(tmp_path, chat_tokenizer):
    rows = [{"messages": [{"role": "system", "content": "add"}, {"role": "user", "content": "1+1"},
                          {"role": "assistant", "content": "2"}]},
            {"prompt": [{"role": "user", "content": "2+2"}], "completion": [{"role": "assistant", "content": "4"}]}]
    path = write_jsonl(tmp_path / "chat.jsonl", rows)
    task = DatasetTask(path, need_completion=True, test_fraction=0.0)
    task.use_tokenizer(chat_tokenizer)
    ex = task.examples("id")
    # the prompt ends with the generation prompt (HF renders with trim_blocks: no newline after a tag);
    # the EOS text is left to the EOS token that training appends
    assert [(e.prompt, e.completion) for e in ex] == [("[system]add[user]1+1[assistant]", "2"),
                                                      ("[user]2+2[assistant]", "4")]
    store, _ = file_store(task, chat_tokenizer, config_from_dict({"data": {"path": str(path)}}), log=lambda m: None)
    # loss only on the completion's tokens and the EOS: "2" + EOS
    assert (store.total_len_N - store.prompt_len_N).tolist() == [2, 2]
    first = store.ids_NL[0, : int(store.total_len_N[0])].tolist()
    assert first[-1] == chat_tokenizer.eos_token_id
    assert chat_tokenizer.decode(first[int(store.prompt_len_N[0]):-1]) == "2"


def test_chat_template_always_wraps_plain_rows_auto_leaves_them(tmp_path, chat_tokenizer, tiny_model_dir):
    from reweightlab.models import load_tokenizer

    path = write_jsonl(tmp_path / "plain.jsonl", [{"prompt": "1+1=", "completion": "2"}])
    task = DatasetTask(path, test_fraction=0.0)
    task.use_tokenizer(chat_tokenizer)  # auto: TRL's convention, strings as written
    assert [(e.prompt, e.completion) for e in task.examples("id")] == [("1+1=", "2")]
    task.use_tokenizer(chat_tokenizer, chat_template="always")  # a one-turn conversation
    assert [(e.prompt, e.completion) for e in task.examples("id")] == [("[user]1+1=[assistant]", "2")]
    r = task.formatter.render({"prompt": "3+3="}, "x")  # a prompt-only row (RL, the probe)
    assert (r.prompt, r.completion) == ("[user]3+3=[assistant]", None)
    with pytest.raises(FormatError, match="'always' templates every row, but the tokenizer has no chat template"):
        task.use_tokenizer(load_tokenizer(tiny_model_dir), chat_template="always")


def test_messages_without_a_chat_template_are_an_error(tmp_path, tiny_model_dir):
    from reweightlab.models import load_tokenizer

    path = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": "1+1"},
                                                               {"role": "assistant", "content": "2"}]}])
    task = DatasetTask(path, test_fraction=0.0)
    task.use_tokenizer(load_tokenizer(tiny_model_dir))
    with pytest.raises(FormatError, match=r"chat.jsonl:row 1: field 'messages' is a conversation, but the tokenizer"):
        task.examples("id")


@pytest.mark.parametrize("mode, expect", [("truncate", (1, 1, [7, 5])), ("drop", (2, 0, [5]))])
def test_overlong_rows_truncated_or_dropped_and_counted(tmp_path, tiny_model_dir, mode, expect):
    from reweightlab.models import load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    rows = [{"prompt": "abc", "completion": "defghij"}, {"prompt": "abcdefgh", "completion": "x"},
            {"prompt": "ab", "completion": "c"}]  # BOS + text + EOS: 12, 11, 5 tokens
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = config_from_dict({"data": {"path": str(path), "max_length": 7, "overlong": mode}})
    task = DatasetTask(path, need_completion=True, test_fraction=0.0)
    task.use_tokenizer(tok)
    store, counts = file_store(task, tok, cfg, log=lambda m: None)
    dropped, truncated, lengths = expect
    assert (counts["dropped"], counts["truncated"]) == (dropped, truncated)
    assert store.total_len_N.tolist() == lengths


def test_hash_split_is_deterministic_and_splits_by_prompt(tmp_path):
    rows = [{"prompt": f"{i}=", "completion": "x"} for i in range(200)] + [{"prompt": "0=", "completion": "y"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    a, b = DatasetTask(path), DatasetTask(path)
    test_a = [n for n, _ in a.select("id", "test")]
    assert test_a == [n for n, _ in b.select("id", "test")]
    assert 5 <= len(test_a) <= 40  # about 10% of 200
    assert a._split_of(rows[0]) == a._split_of(rows[-1])  # equal prompts never straddle the split


def test_variants_and_problems(tmp_path):
    rows = [GOOD | {"variant": "easy", "split": "train"}, GOOD | {"variant": "hard", "split": "test"}]
    task = DatasetTask(write_jsonl(tmp_path / "d.jsonl", rows))
    assert task.variants == ("easy", "hard")
    (p,) = task.problems("hard", "test", 10, 0)
    assert p.prompt == "1+1=" and task.solutions(p) == ["2"]
    with pytest.raises(DataError, match="no train rows of variant 'hard'"):
        task.problems("hard", "train", 10, 0)


def test_resolve_task_errors(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD])
    with pytest.raises(RewardError, match="name a reward function"):
        resolve_task(str(path))
    with pytest.raises(RewardError, match="applies to a data file"):
        resolve_task("generalpoints", "exact_match")
    assert resolve_task("generalpoints").name == "generalpoints"
    no_answer = write_jsonl(tmp_path / "e.jsonl", [{"prompt": "a"}])
    with pytest.raises(DataError, match=r"e.jsonl:row 1: field 'answer' is missing"):
        resolve_task(str(no_answer), "exact_match")


def test_verify_uses_the_reward_and_threshold(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD | {"split": "test"}])
    task = resolve_task(str(path), "numeric_match", success_threshold=0.5)
    (p,) = task.problems("id", "test", 1, 0)
    assert task.verify(p, "the sum is 2").success and not task.verify(p, "3").success
    task.close()


@pytest.mark.parametrize("raw, match", [
    ({"data": {"reward": "exact_match"}}, "'data.reward' does nothing without data.path"),
    ({"method": "grpo", "data": {"path": "d.jsonl"}}, "'data.reward' is needed"),
    ({"data": {"path": "d.jsonl", "task": "generalpoints"}}, "'data.task' does nothing"),
    ({"data": {"path": "d.csv"}}, "expected a .jsonl or .parquet file"),
    ({"data": {"chat_template": "always"}}, "'data.chat_template' does nothing without data.path"),
    ({"data": {"path": "d.jsonl", "chat_template": "sometimes"}}, "data.chat_template"),
    ({"data": {"path": "d.jsonl", "overlong": "drop"}}, "'data.overlong' does nothing with data.max_length = 0"),
    ({"method": "grpo", "data": {"path": "d.jsonl", "reward": "exact_match", "max_length": 10}},
     "leaves no room for a prompt"),
])
def test_config_errors(raw, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(raw)


def test_conversational_rows_reach_the_reward_as_message_lists_the_trl_way(tmp_path, chat_tokenizer):
    """TRL passes a conversational row's prompt as its messages and each completion as
    [{"role": "assistant", "content": text}] (plain rows: strings, as the other tests show);
    completion_ids: the completion's tokens."""
    (tmp_path / "seen_rewards.py").write_text(
        "import json, os\n"
        "def record(prompts, completions, completion_ids, **kw):\n"
        "    with open(os.environ['SEEN'], 'w') as fh:\n"
        "        json.dump({'prompts': prompts, 'completions': completions, 'ids': completion_ids}, fh)\n"
        "    return [1.0] * len(completions)\n")
    rows = [{"messages": [{"role": "user", "content": "1+1"}]}, {"prompt": [{"role": "user", "content": "2+2"}]}]
    path = write_jsonl(tmp_path / "chat.jsonl", rows)
    import os

    os.environ["SEEN"] = str(tmp_path / "seen.json")
    try:
        task = DatasetTask(path, reward=f"{tmp_path / 'seen_rewards.py'}:record", test_fraction=0.0)
        task.use_tokenizer(chat_tokenizer)
        problems = task.problems("id", "train", 2, seed=0)
        verdicts = task.verify_batch(problems, ["2", "4"])
        task.close()
    finally:
        del os.environ["SEEN"]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert [v.score for v in verdicts] == [1.0, 1.0]
    assert seen["prompts"] == [[{"role": "user", "content": "1+1"}], [{"role": "user", "content": "2+2"}]]
    assert seen["completions"] == [[{"role": "assistant", "content": "2"}], [{"role": "assistant", "content": "4"}]]
    assert seen["ids"] == [chat_tokenizer("2", add_special_tokens=False)["input_ids"],
                           chat_tokenizer("4", add_special_tokens=False)["input_ids"]]
