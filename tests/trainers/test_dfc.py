"""The divide-fuse-conquer driver end to end on the tiny model over two groups of tiny envs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from arenagym.trainers.cli import dfc_main
from arenagym.trainers.config import ConfigError
from arenagym.trainers.dfc import DFCConfig

TRAIN = """
imports = ["arenagym_trainers_testkit"]
[model]
device = "cpu"
[rollout]
prompts_per_step = 1
group_size = 4
max_tokens = 4
[optim]
lr = 0.003
micro_batch_size = 8
[run]
checkpoint_every = 0
"""

DFC = """
base_model = "{base}"
train = "{train}"
output_dir = "{out}"
specialist_steps = 2
final_steps = 1
eval_episodes = 2
eval_max_tokens = 4

[[groups]]
name = "vowels"
tasks = [{{ env_id = "TrainerTest-Chars-v0", kwargs = {{ chars = "aeiou" }} }}]

[[groups]]
name = "consonants"
tasks = [{{ env_id = "TrainerTest-Chars-v0", kwargs = {{ chars = "bcdfghklmnprst" }} }}]
"""


def test_dfc_trains_specialists_fuses_and_reports(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file

    train = tmp_path / "train.toml"
    train.write_text(TRAIN)
    config = tmp_path / "dfc.toml"
    out = tmp_path / "dfc"
    config.write_text(DFC.format(base=tiny_model_dir, train=train, out=out))
    assert dfc_main([str(config)]) == 0
    table = capsys.readouterr().out
    assert table.startswith(
        "| task | base | specialist:vowels | specialist:consonants | fused | final |"
    )

    report = json.loads((out / "report.json").read_text())
    assert list(report["scores"]) == [
        "base",
        "specialist:vowels",
        "specialist:consonants",
        "fused",
        "final",
    ]
    for scores in report["scores"].values():
        assert len(scores) == 2 and all(0.0 <= v <= 1.0 for v in scores.values())
    assert (out / "report.md").read_text() == table

    # the fused model is the average of the two specialists (progressive running mean)
    a = load_file(str(out / "specialists" / "vowels" / "model" / "model.safetensors"))
    b = load_file(str(out / "specialists" / "consonants" / "model" / "model.safetensors"))
    fused = load_file(str(out / "fused" / "model.safetensors"))
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    key = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(a[key], base[key]) and not torch.equal(a[key], b[key])
    assert torch.allclose(fused[key], (a[key] + b[key]) / 2, atol=1e-7)
    final = load_file(str(out / "final" / "model" / "model.safetensors"))
    assert not torch.equal(final[key], fused[key])


def test_dfc_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="groups"):
        DFCConfig.from_dict({"base_model": "m", "groups": []})
    with pytest.raises(ConfigError, match="unique"):
        DFCConfig.from_dict(
            {
                "base_model": "m",
                "groups": [
                    {"name": "a", "tasks": [{"env_id": "Math-v0"}]},
                    {"name": "a", "tasks": [{"env_id": "Math-v0"}]},
                ],
            }
        )
    with pytest.raises(ConfigError, match="fuse"):
        DFCConfig.from_dict(
            {
                "base_model": "m",
                "fuse": "soup",
                "groups": [{"name": "a", "tasks": [{"env_id": "Math-v0"}]}],
            }
        )
    assert dfc_main([str(tmp_path / "missing.toml")]) == 2
    assert "no such DFC config file" in capsys.readouterr().err
