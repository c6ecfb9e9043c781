"""Merging: every method against hand-computed results on small tensors; checkpoints merged
shard by shard with bounded memory; a merged tiny model loads and generates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from arenagym.cli import main
from arenagym.trainers.merging import (
    MergeError,
    MergeSpec,
    dare,
    linear,
    merge_checkpoints,
    random_sparsify,
    slerp,
    task_arithmetic,
    ties,
    trim_magnitude,
)


def close(tensor: torch.Tensor, expected: list[float]) -> None:
    assert tensor.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_linear_is_the_weighted_average() -> None:
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])
    close(linear([a, b], [1.0, 3.0]), [(1 + 9) / 4, (2 + 18) / 4])
    close(linear([a, b], [1.0, 3.0], normalize=False), [10.0, 20.0])


def test_task_arithmetic_adds_scaled_task_vectors() -> None:
    base = torch.tensor([1.0, 1.0])
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 3.0])  # task vectors [1, -1], [0, 2]
    # base + 2 * (1 * [1, -1] + 0.5 * [0, 2]) = [1, 1] + 2 * [1, 0]
    close(task_arithmetic(base, [a, b], [1.0, 0.5], lambda_=2.0), [3.0, 1.0])


def test_ties_trims_elects_sign_and_averages_agreeing_entries() -> None:
    base = torch.ones(4)
    tau_a = torch.tensor([3.0, -1.0, 2.0, 0.5])  # trimmed to density 0.5: [3, 0, 2, 0]
    tau_b = torch.tensor([-4.0, 2.5, 2.0, 0.4])  # trimmed: [-4, 2.5, 0, 0]
    close(trim_magnitude(tau_a, 0.5), [3.0, 0.0, 2.0, 0.0])
    # elected signs from the sum [-1, 2.5, 2, 0]: -, +, +, + ; agreeing entries: b | b | a | none
    merged = ties(base, [base + tau_a, base + tau_b], [1.0, 1.0], density=0.5)
    close(merged, [1 - 4.0, 1 + 2.5, 1 + 2.0, 1.0])
    # with weights, the disjoint mean divides by the agreeing models' weights
    merged = ties(base, [base + tau_a, base + tau_b], [2.0, 1.0], density=1.0)
    # weighted: a [6, -2, 4, 1], b [-4, 2.5, 2, 0.4]; sums [2, 0.5, 6, 1.4] -> all +
    # entry 0: only a agrees: 6 / 2 = 3; entry 1: only b: 2.5 / 1; entry 2: (4 + 2) / 3; entry 3: 1.4 / 3
    close(merged, [1 + 3.0, 1 + 2.5, 1 + 2.0, 1 + 1.4 / 3])


def test_dare_drops_with_a_seeded_mask_and_keeps_the_l1_norm() -> None:
    tau = torch.tensor([1.0, -2.0, 3.0, -4.0, 5.0, -6.0])
    mask = torch.bernoulli(torch.full((6,), 0.5), generator=torch.Generator().manual_seed(3))
    kept = tau * mask
    expected = kept * (tau.abs().sum() / kept.abs().sum())  # mergekit's L1 rescale
    out = random_sparsify(tau, 0.5, torch.Generator().manual_seed(3))
    close(out, expected.tolist())
    assert out.abs().sum().item() == pytest.approx(21.0)
    # dare_linear = base + sum of the sparsified task vectors; density 1 = task arithmetic
    base = torch.zeros(6)
    merged = dare(base, [tau], [1.0], 0.5, torch.Generator().manual_seed(3))
    close(merged, expected.tolist())
    close(dare(base, [tau, -tau], [1.0, 1.0], 1.0, torch.Generator()), [0.0] * 6)
    # dare_ties: the sign election keeps only agreeing entries
    a, b = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 1.0])
    close(
        dare(
            torch.zeros(2),
            [a, b],
            [1.0, 1.0],
            1.0,
            torch.Generator(),
            consensus=True,
            normalize=True,
        ),
        [2.0, 1.0],
    )


def test_dare_mask_keeps_density_on_average() -> None:
    tau = torch.ones(20_000)
    out = random_sparsify(tau, 0.3, torch.Generator().manual_seed(0), rescale=False)
    assert (out != 0).float().mean().item() == pytest.approx(0.3, abs=0.02)


def test_slerp_on_the_circle_and_colinear_fallback() -> None:
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    close(slerp(0.5, e1, e2), [math.sqrt(0.5), math.sqrt(0.5)])
    close(slerp(1 / 3, e1, e2), [math.cos(math.pi / 6), math.sin(math.pi / 6)])
    close(slerp(0.0, e1, e2), [1.0, 0.0])
    # magnitudes are kept: the un-normalised tensors are combined
    close(slerp(0.5, 2 * e1, e2), [2 * math.sqrt(0.5), math.sqrt(0.5)])
    # nearly colinear: plain linear interpolation
    close(slerp(0.5, torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0])), [1.5, 1.5])


def test_merge_spec_rejects_bad_parameters() -> None:
    with pytest.raises(MergeError, match="unknown merge method"):
        MergeSpec("soup")
    with pytest.raises(MergeError, match="density"):
        MergeSpec("ties", density=0.0)


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoints_merge_shard_by_shard_and_generate(
    tiny_model_dir: Path, tiny_model_dir_b: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from arenagym.agents.backends.hf import TransformersBackend
    from arenagym.agents.backends.interface import SamplingParams

    out = tmp_path / "merged"
    limit = 200_000
    report = merge_checkpoints(
        MergeSpec("linear"), [tiny_model_dir, tiny_model_dir_b], out, max_shard_bytes=limit
    )
    assert len(report.shards) > 1 and (out / "model.safetensors.index.json").is_file()
    # one tensor of each input, the merged one and the current shard: never whole models
    assert report.peak_bytes <= limit + 4 * report.largest_tensor_bytes
    model_bytes = (tiny_model_dir / "model.safetensors").stat().st_size
    assert report.peak_bytes < 2 * model_bytes
    a = load_file(str(tiny_model_dir / "model.safetensors"))
    b = load_file(str(tiny_model_dir_b / "model.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(out)
    merged = model.state_dict()
    for name in ("model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.weight"):
        assert torch.allclose(merged[name], (a[name] + b[name]) / 2, atol=1e-7)
    backend = TransformersBackend(out, device="cpu", dtype="float32")
    [completion] = backend.generate(
        [[{"role": "user", "content": "Hello"}]], SamplingParams(max_tokens=5, temperature=0)
    )
    assert 1 <= len(completion.completion_token_ids) <= 5
    assert json.loads((out / "merge.json").read_text())["method"] == "linear"


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare_ties", "dare_linear"])
def test_task_vector_methods_on_checkpoints(
    method: str, tiny_model_dir: Path, tiny_model_dir_b: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    out = tmp_path / method
    # merging the base with itself as the base: every task vector is zero -> the base back
    merge_checkpoints(
        MergeSpec(method, density=0.5), [tiny_model_dir_b], out, base=tiny_model_dir_b
    )
    merged, base = (
        load_file(str(out / "model.safetensors")),
        load_file(str(tiny_model_dir_b / "model.safetensors")),
    )
    assert all(torch.equal(merged[k], base[k]) for k in base)
    # DARE is reproducible for a seed and differs across seeds
    if method.startswith("dare"):
        runs = []
        for seed, name in ((1, "s1"), (1, "s1b"), (2, "s2")):
            merge_checkpoints(
                MergeSpec(method, density=0.5, seed=seed),
                [tiny_model_dir],
                tmp_path / name,
                base=tiny_model_dir_b,
            )
            runs.append(load_file(str(tmp_path / name / "model.safetensors")))
        key = "model.layers.0.mlp.up_proj.weight"
        assert torch.equal(runs[0][key], runs[1][key]) and not torch.equal(
            runs[0][key], runs[2][key]
        )


def test_mismatched_checkpoints_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    from arenagym.agents.tiny_model import build_tiny_model

    other = build_tiny_model(tmp_path / "wide", hidden_size=64, intermediate_size=128)
    with pytest.raises(MergeError, match="has shape"):
        merge_checkpoints(MergeSpec("linear"), [tiny_model_dir, other], tmp_path / "out")
    with pytest.raises(MergeError, match="needs a base"):
        merge_checkpoints(MergeSpec("ties"), [tiny_model_dir], tmp_path / "out")


def test_merge_cli(
    tiny_model_dir: Path, tiny_model_dir_b: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "slerp"
    code = main(
        [
            "merge",
            "--method",
            "slerp",
            "--models",
            str(tiny_model_dir),
            str(tiny_model_dir_b),
            "--t",
            "0.25",
            "--output",
            str(out),
        ]
    )
    assert code == 0 and (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    merge = ["merge", "--output", str(out), "--models"]
    assert main([*merge, str(tiny_model_dir), "--method", "ties"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a base" in err
    assert main([*merge, str(tmp_path / "none"), "--method", "linear"]) == 2
    assert main(["merge", "--help"]) == 0
    assert "examples:" in capsys.readouterr().out
