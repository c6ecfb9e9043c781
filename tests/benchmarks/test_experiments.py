"""The experiment scripts (benchmarks/experiments): smoke presets end to end, arguments, helpers.

The smoke presets train the tiny random model for a few steps per curve (about 20 CPU-seconds
each); they need the hf extra and matplotlib and skip cleanly without them.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest

from arenagym.benchmarks.experiments import common

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _needs_training_stack() -> None:
    pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
    pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
    pytest.importorskip("matplotlib", reason="matplotlib (the plots extra) is not installed")


def _png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert path.stat().st_size > 5_000, f"{path} is suspiciously small"


def _table(out: Path, name: str = "results") -> tuple[dict[str, Any], str]:
    data = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    markdown = (out / f"{name}.md").read_text(encoding="utf-8")
    return data, markdown


# --------------------------------------------------------------------------- noisy rewards


def test_noisy_rewards_smoke_writes_table_curves_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _needs_training_stack()
    from arenagym.benchmarks.experiments import noisy_rewards

    out = tmp_path / "noisy"
    assert noisy_rewards.main(["--preset", "smoke", "--out", str(out)]) == 0

    data, markdown = _table(out)
    steps = noisy_rewards.PRESETS["smoke"].steps
    expected = [
        "setting",
        "seeds",
        "held-out acc, step 0",
        f"held-out acc, step {steps}",
        "gain",
        f"train clean reward, last {steps} steps",
        f"train reward (as trained on), last {steps} steps",
    ]
    assert data["columns"] == expected
    assert [row["setting"] for row in data["rows"]] == list(noisy_rewards.SETTINGS)
    for row in data["rows"]:
        assert row["seeds"] == 1
        for column in expected[2:]:
            stat = row[column]
            assert set(stat) == {"mean", "std", "ci95", "n"} and stat["n"] == 1
            assert 0.0 <= stat["mean"] <= 1.0 or column == "gain"
    assert markdown.splitlines()[2].startswith("| " + " | ".join(expected))
    for setting in noisy_rewards.SETTINGS:
        assert f"| {setting} |" in markdown
    assert "| p=0.0 |" in capsys.readouterr().out  # the table is printed too

    curves = json.loads((out / "curves.json").read_text(encoding="utf-8"))
    assert sorted(curves) == sorted(noisy_rewards.SETTINGS)
    for runs in curves.values():
        [run] = runs.values()
        assert [step for step, _ in run["heldout_accuracy"]] == [0, 1, 2]
        assert [record["step"] for record in run["steps"]] == [1, 2]
        for record in run["steps"]:
            assert {"reward_mean", "clean_reward_mean", "entropy"} <= set(record)
    # the flipped runs are trained on a different reward than their clean one, the clean run not
    clean_run = curves["p=0.0"]["0"]["steps"]
    assert all(r["reward_mean"] == r["clean_reward_mean"] for r in clean_run)
    _png(out / "heldout_accuracy.png")
    _png(out / "train_rewards.png")
    for setting in noisy_rewards.SETTINGS:  # one trainer run folder per setting and seed
        slug = "".join(c if c.isalnum() or c in ".-" else "-" for c in setting)
        assert (out / "runs" / slug / "seed-0" / "metrics.jsonl").is_file()

    # the held-out split is disjoint from every training problem and holds distinct problems
    heldout = json.loads((out / "heldout.json").read_text(encoding="utf-8"))
    from arenagym.agents.rollout import EpisodeSpec

    specs = [
        EpisodeSpec(heldout["env_id"], e["kwargs"], seed=e["seed"]) for e in heldout["episodes"]
    ]
    heldout_ids = noisy_rewards.task_ids(specs)
    assert len(heldout_ids) == len(specs) == noisy_rewards.PRESETS["smoke"].eval_problems
    config = noisy_rewards.grpo_config(
        "grpo",
        model=out / "sft",
        device="cpu",
        output_dir=tmp_path / "unused",
        seed=0,
        steps=steps,
        prompts_per_step=2,
        group_size=2,
        max_tokens=12,
        lr=1e-4,
        micro_batch_size=8,
        tasks=noisy_rewards.task_kwargs([1]),
    )
    assert not heldout_ids & noisy_rewards.training_task_ids(config, steps)


def test_noisy_rewards_argument_errors_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.benchmarks.experiments import noisy_rewards

    cases = [
        (["--seeds", "a,b"], "--seeds 'a,b': expected integers like 0,1,2"),
        (["--seeds", "3-1"], "range 3-1 is empty"),
        (["--preset", "laptop"], "invalid choice: 'laptop'"),
        (["--settings", "p=0.7"], "invalid choice: 'p=0.7'"),
        (["--steps", "-1"], "expected an integer >= 0, got -1"),
        (["--group-size", "0"], "expected a positive integer, got 0"),
        (["--lr", "zero"], "expected a number > 0, got 'zero'"),
        (["--difficulties", "1,9"], "difficulties are 1-5"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            noisy_rewards.main(["--out", str(tmp_path / "x"), *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err, argv


def test_noisy_rewards_refuses_an_earlier_run_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.benchmarks.experiments import noisy_rewards

    old = tmp_path / "out" / "runs" / "p-0.2" / "seed-0"
    old.mkdir(parents=True)
    (old / "metrics.jsonl").write_text('{"step": 1}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        noisy_rewards.main(["--preset", "smoke", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert str(old) in err and "pass --overwrite" in err
    assert not (tmp_path / "out" / "sft").exists()  # refused before any work


def test_presets_resolve_with_overrides() -> None:
    from arenagym.benchmarks.experiments import entropy_control, noisy_rewards

    parser = noisy_rewards.build_parser()
    args = parser.parse_args(["--preset", "cpu", "--seeds", "0-2", "--steps", "5"])
    preset = noisy_rewards.resolve_preset(args, noisy_rewards.PRESETS)
    assert preset.seeds == (0, 1, 2) and preset.steps == 5
    assert preset.real_model == "smollm2-135m-instruct" and len(noisy_rewards.PRESETS) == 3
    args = parser.parse_args(["--preset", "cpu", "--real-model", ""])
    assert noisy_rewards.resolve_preset(args, noisy_rewards.PRESETS).real_model is None
    cpu = noisy_rewards.PRESETS["cpu"]
    assert len(cpu.seeds) >= 2 and cpu.model in noisy_rewards.BUILT_SIZES
    assert noisy_rewards.PRESETS["gpu"].model == "smollm2-135m-instruct"

    parser = entropy_control.build_parser()
    args = parser.parse_args(["--preset", "gpu", "--entropy-delta", "0.01", "--model", "/m"])
    preset = entropy_control.resolve_preset(args, entropy_control.PRESETS)
    assert (preset.entropy_delta, preset.model, preset.entropy_target) == (0.01, "/m", 0.2)
    assert len(entropy_control.PRESETS["cpu"].seeds) >= 2


def test_short_answer_env_keeps_math_scoring_and_noise_keys() -> None:
    import gymnasium as gym

    from arenagym.benchmarks.experiments import noisy_rewards

    wrapped = gym.make(noisy_rewards.SHORT_ENV_REF, difficulty=1, flip_prob=1.0)
    plain = gym.make("Math-v0", difficulty=1, flip_prob=1.0)
    options = {"noise_key": "0/0/0", "noise_group_key": "0/0/group0"}
    problem, info = wrapped.reset(seed=3, options=options)
    raw, raw_info = plain.reset(seed=3, options=options)
    assert problem == raw + noisy_rewards.SHORT_USER_SUFFIX
    assert info["system_prompt"] == noisy_rewards.SHORT_SYSTEM_PROMPT != raw_info["system_prompt"]
    answer = "\\boxed{0}"
    assert wrapped.step(answer)[1:] == plain.step(answer)[1:]  # same reward, same flip, same info
    wrapped.close()
    plain.close()


# --------------------------------------------------------------------------- entropy control


def test_entropy_control_smoke_writes_table_curves_and_plots(tmp_path: Path) -> None:
    _needs_training_stack()
    from arenagym.benchmarks.experiments import entropy_control

    out = tmp_path / "entropy"
    assert entropy_control.main(["--preset", "smoke", "--out", str(out)]) == 0

    data, markdown = _table(out)
    steps = entropy_control.PRESETS["smoke"].steps
    assert data["columns"] == [
        "setting",
        "seeds",
        f"entropy, first {steps} updates",
        f"entropy, last {steps} updates",
        "lowest entropy",
        "mean entropy coef",
        "steps without update",
        "held-out acc, step 0",
        f"held-out acc, step {steps}",
    ]
    rows = {row["setting"]: row for row in data["rows"]}
    assert list(rows) == list(entropy_control.SETTINGS)
    for row in rows.values():
        assert row["lowest entropy"]["mean"] > 0
    assert rows["adaptive entropy control"]["mean entropy coef"]["mean"] > 0
    assert rows["no entropy bonus"]["mean entropy coef"]["mean"] == 0
    assert "| adaptive entropy control |" in markdown

    curves = json.loads((out / "curves.json").read_text(encoding="utf-8"))
    for name, runs in curves.items():
        [run] = runs.values()
        assert [step for step, _ in run["heldout_accuracy"]] == [0, 2, 3]
        coefs = [r["entropy_coef"] for r in run["steps"]]
        entropies = [r["entropy"] for r in run["steps"]]
        assert all(e is not None and math.isfinite(e) for e in entropies)
        if name == "adaptive entropy control":  # below the (smoke) target: it rises each step
            assert coefs == pytest.approx([1e-3, 2e-3, 3e-3])
        else:
            assert coefs == [0.0, 0.0, 0.0]
    for name in ("entropy", "heldout_accuracy", "entropy_coef"):
        _png(out / f"{name}.png")
    for slug in ("adaptive-entropy-control", "no-entropy-bonus"):
        metrics = out / "runs" / slug / "seed-0" / "metrics.jsonl"
        assert len(metrics.read_text(encoding="utf-8").splitlines()) == steps


def test_entropy_control_argument_errors_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.benchmarks.experiments import entropy_control

    for argv, message in [
        (["--entropy-delta", "-1"], "expected a number >= 0, got -1.0"),
        (["--seeds", ""], "give at least one seed"),
        (["--eval-problems", "0"], "expected a positive integer, got 0"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            entropy_control.main(["--out", str(tmp_path / "x"), *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err, argv


# --------------------------------------------------------------------------- common helpers


def test_dual_self_reward_smoke_writes_tables_curves_and_plots(tmp_path: Path) -> None:
    _needs_training_stack()
    from arenagym.benchmarks.experiments import dual_self_reward

    out = tmp_path / "dual"
    assert dual_self_reward.main(["--preset", "smoke", "--out", str(out)]) == 0
    ranking, _ = _table(out, "ranking")
    assert [row["corruption"] for row in ranking["rows"]] == ["numbers shifted", "answer only"]
    assert all(row["problems"] == 3 for row in ranking["rows"])
    results, markdown = _table(out)
    [row] = results["rows"]
    assert row["setting"] == "dual self-reward" and "agreement (pairs)" in markdown
    steps = json.loads((out / "curves.json").read_text())["dual self-reward"]["0"]["steps"]
    assert [s["step"] for s in steps] == [1, 2]
    assert all(s["reward_mean"] == s["dual_reward_mean"] < 0 for s in steps)
    assert all(0.0 <= s["clean_reward_mean"] <= 1.0 for s in steps)
    _png(out / "dual_reward.png")
    _png(out / "clean_reward.png")
    assert dual_self_reward.agreement([(1, 3, 1.0, -1.0), (1, 3, 0.0, -1.0)]) == (0.5, 1)


def test_parse_seeds() -> None:
    assert common.parse_seeds("0,1") == [0, 1]
    assert common.parse_seeds("0-2, 5") == [0, 1, 2, 5]
    assert common.parse_seeds("1,1,0") == [1, 0]
    for bad in ("", "x", "-1", "2-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            common.parse_seeds(bad)


def test_summarize_and_aggregate() -> None:
    stat = common.summarize([1.0, 2.0, 3.0])
    assert (stat.mean, stat.std, stat.n) == (2.0, 1.0, 3)
    assert stat.ci95 == pytest.approx(4.303 / math.sqrt(3))
    one = common.summarize([0.5])
    assert one.std == 0.0 and math.isnan(one.ci95) and common.format_stat(one) == "0.500"
    assert common.format_stat(common.summarize([])) == "n/a"
    assert common.t_critical_95(1) == 12.706 and common.t_critical_95(100) == 1.96
    stats = common.aggregate({0: [(1, 0.1), (2, None)], 1: [(1, 0.3), (2, 0.5)]})
    assert [(x, round(s.mean, 3), s.n) for x, s in stats] == [(1, 0.2, 2), (2, 0.5, 1)]


def test_write_table_markdown_and_json(tmp_path: Path) -> None:
    rows = [
        {"name": "a|b", "value": common.summarize([1.0, 3.0]), "x": 0.25, "n": None},
        {"name": "c", "value": common.summarize([2.0]), "x": float("nan"), "n": 3},
    ]
    md, js = common.write_table(
        tmp_path, "t", ["name", "value", "x", "n"], rows, title="T", notes=["note"]
    )
    assert md.read_text(encoding="utf-8").splitlines() == [
        "# T",
        "",
        "| name | value | x | n |",
        "| --- | ---: | ---: | ---: |",
        "| a\\|b | 2.000 ± 1.414 | 0.250 | n/a |",
        "| c | 2.000 | n/a | 3 |",
        "",
        "note",
    ]
    data = json.loads(js.read_text(encoding="utf-8"))
    assert data["rows"][0]["value"]["n"] == 2 and data["rows"][1]["x"] is None
    assert data["rows"][1]["value"]["ci95"] is None
    with pytest.raises(ValueError, match="has no column 'n'"):
        common.write_table(tmp_path, "bad", ["name", "n"], [{"name": "a"}])


def test_plot_curves_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib (the plots extra) is not installed")
    path = common.plot_curves(
        tmp_path / "c.png",
        {"a": {0: [(0, 0.1), (1, 0.2)], 1: [(0, 0.2), (1, 0.4)]}, "b": {0: [(0, None)]}},
        xlabel="step",
        ylabel="acc",
        hline=(0.3, "target"),
        styles={"a": {"linestyle": "--"}},
    )
    _png(path)
