"""The DFC-in-miniature experiment (``benchmarks/experiments/dfc_games.py``): the smoke preset end to
end with the tiny model (tables, plots, raw scores), its command-line errors, and the table
arithmetic over seeds on made-up scores.

Run: ``pytest tests/benchmarks/test_experiments_dfc.py``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arenagym.benchmarks.experiments import dfc_games
from arenagym.benchmarks.experiments.dfc_games import MIXTURE, PRESETS, main, write_outputs

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_smoke_preset_writes_tables_plots_and_raw_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
    pytest.importorskip("textarena", reason="the textarena extra is not installed")
    pytest.importorskip("matplotlib", reason="the plots extra (matplotlib) is not installed")
    out = tmp_path / "dfc"
    assert main(["--preset", "smoke", "--out", str(out)]) == 0

    table = (out / "results.md").read_text()
    assert capsys.readouterr().out == table
    assert table.startswith("# DFC vs mixture: win rate per game")
    header = table.splitlines()[2]
    for column in ("base", "specialist 1", "specialist 2", "fused 2", "conquer 2 (DFC)"):
        assert f"| {column} |" in header
    assert f"| {MIXTURE} | DFC - mixture |" in header
    for row in ("Nim", "KuhnPoker", "group fixed", "group random", "all"):
        assert f"\n| {row} |" in table

    results = json.loads((out / "results.json").read_text())
    assert [r["game"] for r in results["rows"]][:2] == ["Nim", "KuhnPoker"]
    assert results["meta"]["seeds"] == [0] and results["meta"]["total_training_steps_per_arm"] == 3
    for row in results["rows"]:
        for column in results["columns"][1:]:
            assert row[column]["n"] == 1
            low = -1.0 if column == "DFC - mixture" else 0.0
            assert low <= row[column]["mean"] <= 1.0

    per_opponent = json.loads((out / "per_opponent.json").read_text())
    assert {(r["game"], r["opponent"]) for r in per_opponent["rows"]} == {
        ("Nim", "random"),
        ("KuhnPoker", "random"),
    }
    for name in ("win_rate_by_game.png", "win_rate_by_stage.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000

    raw = json.loads((out / "raw.json").read_text())
    [run] = raw["runs"]
    assert run["seed"] == 0 and run["models"][-1] == MIXTURE
    assert run["seconds"]["training_steps"] == 6  # 3 per arm
    assert run["seconds"]["evaluated_models"] == 6  # base once for both arms
    for arm in ("dfc", MIXTURE):
        assert (out / "runs" / "seed-0" / arm / "report.md").is_file()

    # the runs are there now: a second invocation needs --overwrite (refused before any work)
    with pytest.raises(SystemExit) as refused:
        main(["--preset", "smoke", "--out", str(out)])
    assert refused.value.code == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "huge"], "invalid choice: 'huge'"),
        (["--seeds", "a,b"], "expected integers"),
        (["--group-a", "Nim,Nope"], "unknown game 'Nope'"),
        (["--group-a", "Sudoku"], "one-player game"),
        (["--group-a", "Nim,Nim"], "listed twice"),
        (["--group-a", "Nim", "--group-b", "Nim,KuhnPoker"], "share Nim"),
        (["--specialist-steps", "-1"], "integer >= 0"),
        (["--specialist-steps", "0", "--conquer-steps", "0"], "nothing would train"),
        (["--eval-episodes", "0"], "positive integer"),
    ],
)
def test_argument_errors_are_usage_errors_that_say_why(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as error:
        main(["--preset", "smoke", "--out", str(tmp_path / "out"), *args])
    assert error.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_earlier_runs_are_refused_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out" / "runs" / "seed-0" / MIXTURE / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text("{}")
    with pytest.raises(SystemExit) as error:
        main(["--preset", "smoke", "--out", str(tmp_path / "out")])
    assert error.value.code == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err
    assert report.read_text() == "{}"


def _run(seed: int, dfc: float, mixture: float) -> dict[str, Any]:
    """A made-up seed: every game has win rate ``dfc`` for the DFC stages and ``mixture``."""
    games = ["TextArena/Nim-v0", "TextArena/KuhnPoker-v0"]
    models = ["base", "specialist 1", "conquer 2 (DFC)", MIXTURE]
    rates = {"base": 0.0, "specialist 1": dfc / 2, "conquer 2 (DFC)": dfc, MIXTURE: mixture}
    return {
        "seed": seed,
        "models": models,
        "dfc_final": "conquer 2 (DFC)",
        "scores": {m: {g: {"win_rate": rates[m], "reward": 0.0} for g in games} for m in models},
        "per_opponent": {m: {g: {"random": rates[m]} for g in games} for m in models},
        "seconds": {},
    }


def test_tables_give_mean_std_over_seeds_and_the_paired_difference(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plots extra (matplotlib) is not installed")
    preset = PRESETS["smoke"]
    runs = [_run(0, 0.5, 0.25), _run(1, 0.75, 0.75)]
    written = write_outputs(tmp_path, preset, runs, {"base_model_how": "made up"})
    assert {p.name for p in written} == {
        "results.md",
        "results.json",
        "per_opponent.md",
        "per_opponent.json",
        "win_rate_by_game.png",
        "win_rate_by_stage.png",
        "raw.json",
    }
    rows = {r["game"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    final = rows["all"]["conquer 2 (DFC)"]
    assert final["mean"] == pytest.approx(0.625) and final["n"] == 2
    assert final["std"] == pytest.approx(0.1767767, rel=1e-6)
    diff = rows["group random"]["DFC - mixture"]
    assert diff["mean"] == pytest.approx(0.125) and diff["std"] == pytest.approx(0.1767767, 1e-6)
    assert (
        "| all | 0.000 ± 0.000 | 0.312 ± 0.088 | 0.625 ± 0.177 | 0.500 ± 0.354 |"
        in (tmp_path / "results.md").read_text()
    )
    per_opponent = json.loads((tmp_path / "per_opponent.json").read_text())
    assert per_opponent["columns"] == ["game", "opponent", "base", "DFC", MIXTURE]


def test_presets_train_as_many_steps_in_both_arms() -> None:
    for preset in PRESETS.values():
        k = len(preset.groups)
        assert k == 2
        assert dfc_games.total_steps(preset) == 2 * preset.specialist_steps + preset.conquer_steps
        assert set(preset.opponents) <= set(dfc_games.OPPONENTS)
