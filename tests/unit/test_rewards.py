"""Reward specs, built-ins, the first-batch contract, and isolation of functions that raise or hang."""

from __future__ import annotations

import math
import time

import pytest

from reweightlab.tasks.rewards import RewardError, RewardRunner, check_reward_output, load_reward

REWARDS = '''
import time
def length(prompts, completions, **columns):
    return [float(len(c)) for c in completions]
def picky(prompts, completions, **columns):
    if any("x" in c for c in completions):
        raise ValueError("no x please")
    return [1.0] * len(completions)
def sleepy(prompts, completions, **columns):
    if any("x" in c for c in completions):
        time.sleep(60)
    return [1.0] * len(completions)
def always_sleeps(prompts, completions, **columns):
    time.sleep(60)
def always_raises(prompts, completions, **columns):
    raise ConnectionError("the grading server is down")
def fails_after_first(prompts, completions, **columns):
    import os
    flag = os.environ["REWARD_FLAG"]
    if os.path.exists(flag):
        raise ConnectionError("down since the first batch")
    open(flag, "w").close()
    return [1.0] * len(completions)
def short(prompts, completions, **columns):
    return [1.0]
def nan(prompts, completions, **columns):
    return [float("nan")] * len(completions)
def words(prompts, completions, **columns):
    return ["good"] * len(completions)
def one_arg(completions):
    return [float(len(c)) for c in completions]
def wrong_names(p, c, **columns):
    return [1.0] * len(c)
def positional_only(prompts, completions, /):
    return [1.0] * len(completions)
def trl_style(completions, solution, **kwargs):
    return [float(c == s) for c, s in zip(completions, solution)]
def sees_everything(**kwargs):
    return [float(len(kwargs))] * len(kwargs["completions"])
def with_ids(completions, completion_ids):
    return [float(len(i)) for i in completion_ids]
def named(prompts, completions, answer):
    return [float(c == a) for c, a in zip(completions, answer)]
'''


@pytest.fixture()
def module(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(REWARDS)
    return path


def test_bad_specs_name_the_problem(module):
    with pytest.raises(RewardError, match="no module named 'nomodule_xyz'"):
        load_reward("nomodule_xyz:fn")
    with pytest.raises(RewardError, match="has no attribute 'missing'"):
        load_reward(f"{module}:missing")
    with pytest.raises(RewardError, match="does not exist"):
        load_reward(f"{module.parent / 'absent.py'}:fn")
    with pytest.raises(RewardError, match="expected 'module:function'"):
        load_reward("just_a_name")
    with pytest.raises(RewardError, match="must accept completions= by keyword"):
        load_reward(f"{module}:wrong_names")
    with pytest.raises(RewardError, match="must accept completions= by keyword"):
        load_reward(f"{module}:positional_only")
    with pytest.raises(RewardError, match="tolerance must be a number"):
        load_reward("numeric_match:abc")


def test_builtins():
    cols = {"answer": ["42", "3.5", "7"]}
    assert load_reward("exact_match")(["p"] * 3, [" 42\n", "3.50", "8"], **cols) == [1.0, 0.0, 0.0]
    assert load_reward("numeric_match")(["p"] * 3, ["it is 42", "3.501", "x"], **cols) == [1.0, 0.0, 0.0]
    assert load_reward("numeric_match:1e-3")(["p"] * 3, ["42", "3.501", "7.1"], **cols) == [1.0, 1.0, 0.0]
    assert load_reward("regex:[0-9]+")(["p"] * 2, ["123", "12a"]) == [1.0, 0.0]
    assert load_reward("regex")(["p"] * 2, ["ab", "ab"], pattern=["a.", "b."]) == [1.0, 0.0]
    with pytest.raises(RewardError, match="'answer'"):
        load_reward("exact_match")(["p"], ["1"], other=["1"])


def test_math_verify_builtin():
    pytest.importorskip("math_verify")
    fn = load_reward("math_verify")
    assert fn(["p"] * 2, ["$\\frac{1}{2}$", "$\\frac{1}{3}$"], answer=["0.5", "0.5"]) == [1.0, 0.0]


def test_rewards_are_called_with_keywords_the_trl_way(module, tmp_path, monkeypatch):
    """f(prompts, completions, **kw), TRL's f(completions, solution, **kw) and f(completions) all work:
    each gets only the names it accepts; **kwargs gets prompts, completions, completion_ids and the fields."""
    cols = {"solution": ["a", "x"], "answer": ["1", "2"]}
    for name, expected in [("trl_style", [1.0, 0.0]), ("one_arg", [1.0, 2.0]), ("named", [0.0, 0.0])]:
        runner = RewardRunner(f"{module}:{name}", timeout=20)
        assert runner(["p", "q"], ["a", "bb"], cols, completion_ids=[[1], [2, 3]]) == expected, name
        runner.close()
    runner = RewardRunner(f"{module}:sees_everything", timeout=20)
    assert runner(["p"], ["a"], {"solution": ["a"]}, completion_ids=[[7]]) == [4.0]  # prompts, completions, ids, field
    runner.close()
    runner = RewardRunner(f"{module}:with_ids", timeout=20)
    assert runner(["p", "q"], ["a", "bb"], {}, completion_ids=[[1], [2, 3]]) == [1.0, 2.0]
    runner.close()
    # the dotted spec of TRL and Hydra configs, importable from the current folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg_rewards").mkdir()
    (tmp_path / "pkg_rewards" / "__init__.py").write_text("")
    (tmp_path / "pkg_rewards" / "scoring.py").write_text(REWARDS)
    runner = RewardRunner("pkg_rewards.scoring.trl_style", timeout=20)
    assert runner(["p"], ["a"], {"solution": ["a"]}) == [1.0]
    runner.close()
    with pytest.raises(RewardError, match="no module named 'pkg_rewards.missing'"):
        load_reward("pkg_rewards.missing.fn")
    with pytest.raises(RewardError, match="expected 'module:function', 'pkg.module.function'"):
        load_reward("rewards.py")


def test_columns_by_name_without_kwargs(module):
    runner = RewardRunner(f"{module}:named", timeout=20)
    assert runner(["p", "q"], ["1", "2"], {"answer": ["1", "3"], "other": [0, 0]}) == [1.0, 0.0]
    runner.close()


def test_first_batch_contract():
    with pytest.raises(RewardError, match="returned 1 values for 2 completions"):
        check_reward_output([1.0], 2, "f")
    with pytest.raises(RewardError, match="finite"):
        check_reward_output([1.0, math.inf], 2, "f")
    with pytest.raises(RewardError, match="expected a number"):
        check_reward_output([1.0, "x"], 2, "f")
    assert check_reward_output([1, 2.5], 2, "f") == [1.0, 2.5]


@pytest.mark.parametrize("name, match", [("short", "returned 1 values for 2"), ("nan", "finite"),
                                         ("words", "expected a number")])
def test_runner_checks_the_first_batch(module, name, match):
    runner = RewardRunner(f"{module}:{name}", timeout=20)
    with pytest.raises(RewardError, match=match):
        runner(["p", "q"], ["a", "b"])
    runner.close()


def test_a_raise_scores_only_the_failing_samples(module):
    runner = RewardRunner(f"{module}:picky", timeout=20, on_error=-1.0)
    assert runner(["p"] * 3, ["ax", "b", "c"]) == [-1.0, 1.0, 1.0]
    assert runner.take_counts() == {"reward_errors": 1, "reward_timeouts": 0}
    assert runner(["p"], ["b"]) == [1.0]
    assert runner.take_counts() == {"reward_errors": 0, "reward_timeouts": 0}
    runner.close()


def test_a_hang_is_killed_and_counted(module):
    runner = RewardRunner(f"{module}:sleepy", timeout=1.0, on_error=0.0)
    assert runner(["p"], ["a"]) == [1.0]
    t0 = time.perf_counter()
    assert runner(["p", "q"], ["x", "b"]) == [0.0, 0.0]
    assert time.perf_counter() - t0 < 20  # the call did not wait for the 60 s sleep
    assert runner.take_counts() == {"reward_errors": 0, "reward_timeouts": 2}
    assert runner._proc is None  # the hung worker was killed
    assert runner(["p"], ["b"]) == [1.0]  # and a fresh one answers the next call
    runner.close()


@pytest.mark.parametrize("name, why", [("always_raises", "ConnectionError: the grading server is down"),
                                       ("always_sleeps", "no answer within 1 s")])
def test_a_reward_that_fails_on_a_whole_first_batch_stops(module, name, why):
    runner = RewardRunner(f"{module}:{name}", timeout=1.0)
    with pytest.raises(RewardError, match="failed on every sample of its first batch") as info:
        runner(["p"] * 3, ["a", "b", "c"])
    assert why in str(info.value) and "3 samples" in str(info.value)
    runner.close()


def test_a_reward_that_breaks_later_stops_after_three_whole_batches(module, tmp_path, monkeypatch):
    monkeypatch.setenv("REWARD_FLAG", str(tmp_path / "flag"))
    runner = RewardRunner(f"{module}:fails_after_first", timeout=5.0, on_error=-1.0)
    assert runner(["p"] * 2, ["a", "b"]) == [1.0, 1.0]
    assert runner(["p"] * 2, ["a", "b"]) == [-1.0, -1.0]  # one or two bad batches are scored on_error
    assert runner(["p"] * 2, ["a", "b"]) == [-1.0, -1.0]
    with pytest.raises(RewardError, match="of the last 3 batches .*down since the first batch"):
        runner(["p"] * 2, ["a", "b"])
    runner.close()


IMPORT_FAULTS = {
    "exits": ("import os\nos._exit(7)\n", "ended while importing it (exit code 7)"),
    "crashes": ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
                "ended while importing it (exit code -11)"),
    "blocks": ("import time\ntime.sleep(600)\n", "did not finish within 2 s"),
    "raises": ("raise RuntimeError('no licence file')\n", "no licence file"),
}


@pytest.mark.parametrize("fault", sorted(IMPORT_FAULTS))
def test_a_module_that_misbehaves_at_import_is_one_error_and_never_runs_in_the_caller(fault, tmp_path):
    body, message = IMPORT_FAULTS[fault]
    path = tmp_path / f"bad_{fault}.py"
    path.write_text(body + "def f(prompts, completions, **c):\n    return [1.0] * len(completions)\n")
    t0 = time.perf_counter()
    with pytest.raises(RewardError, match="reward '") as info:
        RewardRunner(f"{path}:f", timeout=5.0, load_timeout=2.0)
    assert message in str(info.value)
    assert time.perf_counter() - t0 < 30
    import sys

    assert not any(getattr(m, "__file__", None) == str(path) for m in list(sys.modules.values()))


def test_an_unpicklable_callable_runs_in_a_thread():
    runner = RewardRunner(lambda prompts, completions, **c: [2.0] * len(completions), timeout=5)
    assert runner._source is None
    assert runner(["p"], ["a"]) == [2.0]
