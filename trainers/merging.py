r"""Model merging (mergekit's formulas) on tensors and, shard by shard, on safetensors checkpoints.

Methods, for models ``theta_i`` with weights ``w_i`` and (where needed) a base ``theta_0`` whose
task vectors are ``tau_i = theta_i - theta_0``:

- ``linear``: ``sum w_i theta_i / sum w_i`` (model soup; ``normalize=False`` skips the division).
- ``task_arithmetic``: ``theta_0 + lambda * sum w_i tau_i``.
- ``ties``: trim each ``tau_i`` to its ``density`` largest-magnitude entries, elect a sign per
  entry (the sign of ``sum w_i tau_i``), and average only the agreeing entries:
  ``theta_0 + lambda * sum w_i m_i tau_i / sum w_i m_i`` (``m_i``: agrees with the elected sign).
- ``dare_linear`` / ``dare_ties``: drop each entry of ``tau_i`` with probability ``1 - density``
  and rescale the survivors so that the L1 norm of ``tau_i`` is unchanged (mergekit's
  ``rescale``), then add them (``dare_linear``) or combine them as TIES does (``dare_ties``).
- ``slerp``: spherical interpolation of two models by ``t``, entry-wise over each flattened
  tensor, falling back to linear interpolation when they are nearly colinear.

:func:`merge_checkpoints` applies a method to Hugging Face safetensors checkpoints (single file or
sharded with ``model.safetensors.index.json``) one tensor at a time and writes the result in
shards of at most ``max_shard_bytes``, so memory holds one tensor per input model plus one
output shard, never a whole model. Computation is in float32; results keep the input dtype.

Example:
    >>> import torch
    >>> a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])
    >>> linear([a, b], [1.0, 1.0]).tolist()
    [2.0, 4.0]
    >>> task_arithmetic(torch.zeros(2), [a, b], [0.5, 0.5]).tolist()
    [2.0, 4.0]
    >>> slerp(0.5, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).tolist()
    [0.7071067690849304, 0.7071067690849304]
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "METHODS",
    "MergeError",
    "MergeReport",
    "dare",
    "linear",
    "merge_checkpoints",
    "merge_tensors",
    "random_sparsify",
    "slerp",
    "task_arithmetic",
    "ties",
    "trim_magnitude",
]

METHODS: tuple[str, ...] = (
    "linear",
    "task_arithmetic",
    "ties",
    "dare_linear",
    "dare_ties",
    "slerp",
)
NEEDS_BASE = frozenset({"task_arithmetic", "ties", "dare_linear", "dare_ties"})


class MergeError(ValueError):
    """Checkpoints that cannot be merged; the message names the model and the tensor."""


# --------------------------------------------------------------------------- tensor formulas


def linear(
    tensors: Sequence[torch.Tensor], weights: Sequence[float], normalize: bool = True
) -> torch.Tensor:
    """The weighted average (``normalize``) or weighted sum of ``tensors``."""
    total = sum(w * t.float() for w, t in zip(weights, tensors, strict=True))
    divisor = sum(weights)
    if normalize and abs(divisor) > 1e-8:
        total = total / divisor
    return torch.as_tensor(total)


def task_arithmetic(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    lambda_: float = 1.0,
    normalize: bool = False,
) -> torch.Tensor:
    """``base + lambda * sum w_i (t_i - base)`` (divided by ``sum w_i`` with ``normalize``)."""
    deltas = [t.float() - base.float() for t in tensors]
    return base.float() + lambda_ * linear(deltas, weights, normalize=normalize)


def trim_magnitude(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``int(density * numel)`` largest-magnitude entries of ``delta``, zero the rest.

    Example:
        >>> trim_magnitude(torch.tensor([0.1, -3.0, 2.0, -0.5]), 0.5).tolist()
        [0.0, -3.0, 2.0, 0.0]
    """
    if density >= 1:
        return delta
    keep = int(density * delta.numel())
    if keep <= 0:
        return torch.zeros_like(delta)
    flat = delta.abs().reshape(-1).float()
    top = torch.argsort(flat, descending=True, stable=True)[:keep]
    keep_mask = torch.zeros(flat.shape, dtype=torch.bool)
    keep_mask[top] = True
    return torch.where(keep_mask.reshape(delta.shape), delta, torch.zeros_like(delta))


def random_sparsify(
    delta: torch.Tensor, density: float, generator: torch.Generator, rescale: bool = True
) -> torch.Tensor:
    """DARE's drop: keep each entry with probability ``density`` (a Bernoulli mask drawn from
    ``generator``), then, with ``rescale``, scale the survivors so the L1 norm is unchanged
    (mergekit's ``rescale``; the DARE paper's ``1/density`` keeps it only in expectation).

    Example:
        >>> d = torch.tensor([1.0, -2.0, 3.0, -4.0])
        >>> out = random_sparsify(d, 0.5, torch.Generator().manual_seed(0))
        >>> round(out.abs().sum().item(), 5), int((out != 0).sum()) < 4
        (10.0, True)
    """
    if density >= 1:
        return delta
    delta = delta.float()
    probability = torch.full(delta.shape, float(density))
    mask = torch.bernoulli(probability, generator=generator)
    masked = delta * mask
    if not rescale:
        return masked
    before, after = delta.abs().sum(), masked.abs().sum()
    if before < 1e-7 or after < 1e-7:
        return masked
    return masked * (before / after)


def _sign_consensus(weighted: torch.Tensor) -> torch.Tensor:
    """TIES's elected sign (mergekit's ``sum``): entries agreeing with ``sign(sum_i x_i)``."""
    majority = (weighted.sum(dim=0) >= 0).float() * 2 - 1
    return weighted.sign() == majority


def _combine(
    base: torch.Tensor,
    deltas: Sequence[torch.Tensor],
    weights: Sequence[float],
    consensus: bool,
    normalize: bool,
    lambda_: float,
) -> torch.Tensor:
    stacked = torch.stack([d.float() for d in deltas])
    w = torch.tensor(list(weights), dtype=torch.float32).reshape(-1, *([1] * (stacked.dim() - 1)))
    weighted = stacked * w
    if consensus:
        mask = _sign_consensus(weighted).float()
        mixed = (weighted * mask).sum(dim=0)
        divisor = (w * mask).sum(dim=0)
        divisor[divisor == 0] = 1.0
    else:
        mixed = weighted.sum(dim=0)
        divisor = w.sum(dim=0).expand_as(mixed).clone()
        divisor[divisor.abs() < 1e-8] = 1.0
    if normalize:
        mixed = mixed / divisor
    return base.float() + lambda_ * mixed


def ties(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    density: float = 0.5,
    lambda_: float = 1.0,
    normalize: bool = True,
) -> torch.Tensor:
    """TIES-merging: trim, elect sign, disjoint (weighted) mean of the agreeing task vectors."""
    deltas = [trim_magnitude(t.float() - base.float(), density) for t in tensors]
    return _combine(base, deltas, weights, True, normalize, lambda_)


def dare(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    density: float,
    generator: torch.Generator,
    consensus: bool = False,
    lambda_: float = 1.0,
    normalize: bool = False,
    rescale: bool = True,
) -> torch.Tensor:
    """DARE: random drop + L1 rescale of each task vector, then summed (``dare_linear``) or
    combined with TIES's sign consensus (``consensus=True``: ``dare_ties``)."""
    deltas = [
        random_sparsify(t.float() - base.float(), density, generator, rescale) for t in tensors
    ]
    return _combine(base, deltas, weights, consensus, normalize, lambda_)


def slerp(
    t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = 0.9995, eps: float = 1e-8
) -> torch.Tensor:
    """Spherical linear interpolation from ``v0`` (t=0) to ``v1`` (t=1), as mergekit does it:
    the angle is measured between the normalised, flattened tensors, and the un-normalised
    tensors are combined; nearly colinear tensors are interpolated linearly."""
    a, b = v0.float(), v1.float()
    an = a / a.norm().clamp(min=eps)
    bn = b / b.norm().clamp(min=eps)
    dot = float((an * bn).sum())
    if abs(dot) > dot_threshold:
        return (1 - t) * a + t * b
    theta_0 = torch.arccos(torch.tensor(dot, dtype=torch.float64))
    sin_0 = torch.sin(theta_0)
    theta_t = theta_0 * t
    s0 = float(torch.sin(theta_0 - theta_t) / sin_0)
    s1 = float(torch.sin(theta_t) / sin_0)
    return s0 * a + s1 * b


# --------------------------------------------------------------------------- one tensor, any method


@dataclass(frozen=True)
class MergeSpec:
    """A method and its parameters (see the module docstring)."""

    method: str
    weights: tuple[float, ...] = ()
    density: float = 0.5
    lambda_: float = 1.0
    t: float = 0.5
    normalize: bool | None = None  # None: the method's mergekit default
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise MergeError(
                f"unknown merge method {self.method!r}; use one of {', '.join(METHODS)}"
            )
        if not 0 < self.density <= 1:
            raise MergeError(f"density must be in (0, 1], got {self.density}")
        if not 0 <= self.t <= 1:
            raise MergeError(f"t must be in [0, 1], got {self.t}")


def merge_tensors(
    spec: MergeSpec, name: str, tensors: Sequence[torch.Tensor], base: torch.Tensor | None
) -> torch.Tensor:
    """Merge one named tensor of every model (float32 result). DARE's mask is drawn from a
    generator seeded by ``spec.seed`` and ``name``, so a merge is reproducible tensor by tensor."""
    weights = list(spec.weights) or [1.0] * len(tensors)
    if len(weights) != len(tensors):
        raise MergeError(f"{len(weights)} weights for {len(tensors)} models")
    method = spec.method
    if method == "linear":
        return linear(
            tensors, weights, normalize=True if spec.normalize is None else spec.normalize
        )
    if method == "slerp":
        if len(tensors) != 2:
            raise MergeError("slerp merges exactly two models")
        return slerp(spec.t, tensors[0], tensors[1])
    assert base is not None
    if method == "task_arithmetic":
        return task_arithmetic(base, tensors, weights, spec.lambda_, bool(spec.normalize))
    if method == "ties":
        normalize = True if spec.normalize is None else spec.normalize
        return ties(base, tensors, weights, spec.density, spec.lambda_, normalize)
    digest = hashlib.sha256(f"{spec.seed}\x1f{name}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return dare(
        base,
        tensors,
        weights,
        spec.density,
        generator,
        consensus=method == "dare_ties",
        lambda_=spec.lambda_,
        normalize=bool(spec.normalize),
    )


# --------------------------------------------------------------------------- checkpoints

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_COPIED = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)


@dataclass
class MergeReport:
    """What :func:`merge_checkpoints` did; ``peak_bytes`` is the most tensor memory it held."""

    output: Path
    tensors: int = 0
    shards: list[str] = field(default_factory=list)
    peak_bytes: int = 0
    largest_tensor_bytes: int = 0


def _tensor_files(model: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file that holds it."""
    from safetensors import safe_open

    index = model / "model.safetensors.index.json"
    if index.is_file():
        try:
            mapping = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError) as error:
            raise MergeError(f"{index}: not a safetensors index ({error})") from None
        return {name: model / file for name, file in mapping.items()}
    files = sorted(model.glob("*.safetensors")) if model.is_dir() else []
    if not files:
        raise MergeError(f"{model}: no model.safetensors or model.safetensors.index.json")
    out: dict[str, Path] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open has keys(), no __iter__)
                out[name] = file
    return out


class _Reader:
    """Reads single tensors from a model's safetensors files, keeping the files open (mmap)."""

    def __init__(self, model: Path) -> None:
        self.model = model
        self.files = _tensor_files(model)
        self._handles: dict[Path, Any] = {}

    def get(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        file = self.files[name]
        if file not in self._handles:
            self._handles[file] = safe_open(str(file), framework="pt")
        return self._handles[file].get_tensor(name)

    def close(self) -> None:
        self._handles.clear()


def merge_checkpoints(
    spec: MergeSpec,
    models: Sequence[str | Path],
    output: str | Path,
    base: str | Path | None = None,
    max_shard_bytes: int = 2 * 1024**3,
) -> MergeReport:
    """Merge safetensors checkpoints of one architecture into ``output``, tensor by tensor.

    ``models`` are the checkpoints to merge (two for ``slerp``); ``base`` is required for the
    task-vector methods. Non-weight files (config, tokenizer) are copied from ``base`` or the
    first model. Raises :class:`MergeError` when tensor names, shapes or counts do not match.
    """
    from safetensors.torch import save_file

    if spec.method in NEEDS_BASE and base is None:
        raise MergeError(f"{spec.method} needs a base model (--base)")
    if not models:
        raise MergeError("no models to merge")
    paths = [Path(m) for m in models]
    readers = [_Reader(p) for p in paths]
    base_reader = _Reader(Path(base)) if base is not None else None
    reference = base_reader or readers[0]
    names = list(reference.files)
    for reader in readers + ([base_reader] if base_reader else []):
        missing = set(names) - set(reader.files)
        extra = set(reader.files) - set(names)
        if missing or extra:
            raise MergeError(
                f"{reader.model}: tensors differ from {reference.model} "
                f"(missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]})"
            )
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    report = MergeReport(out)
    shard: dict[str, torch.Tensor] = {}
    shard_bytes = 0
    shard_files: list[Path] = []
    weight_map: dict[str, int] = {}

    def flush() -> None:
        nonlocal shard, shard_bytes
        if not shard:
            return
        file = out / f"shard-{len(shard_files):05d}.tmp.safetensors"
        save_file(shard, str(file), metadata={"format": "pt"})
        shard_files.append(file)
        shard, shard_bytes = {}, 0

    try:
        for name in names:
            tensors = [r.get(name) for r in readers]
            base_tensor = base_reader.get(name) if base_reader else None
            for model, tensor in zip(paths, tensors, strict=True):
                if tensor.shape != tensors[0].shape or (
                    base_tensor is not None and tensor.shape != base_tensor.shape
                ):
                    raise MergeError(
                        f"{model}: tensor {name!r} has shape {tuple(tensor.shape)}, "
                        f"expected {tuple((base_tensor if base_tensor is not None else tensors[0]).shape)}"
                    )
            held = sum(t.numel() * t.element_size() for t in tensors)
            if base_tensor is not None:
                held += base_tensor.numel() * base_tensor.element_size()
            merged = merge_tensors(spec, name, tensors, base_tensor)
            dtype = (base_tensor if base_tensor is not None else tensors[0]).dtype
            merged = merged.to(dtype).contiguous()
            size = merged.numel() * merged.element_size()
            report.largest_tensor_bytes = max(report.largest_tensor_bytes, size)
            report.peak_bytes = max(report.peak_bytes, shard_bytes + held + size)
            if shard and shard_bytes + size > max_shard_bytes:
                flush()
            shard[name] = merged
            shard_bytes += size
            weight_map[name] = len(shard_files)
            report.tensors += 1
            del tensors, base_tensor
        flush()
    finally:
        for reader in readers + ([base_reader] if base_reader else []):
            reader.close()

    for stale in _WEIGHT_FILES:
        (out / stale).unlink(missing_ok=True)
    if len(shard_files) == 1:
        final_names = ["model.safetensors"]
    else:
        total = len(shard_files)
        final_names = [f"model-{i + 1:05d}-of-{total:05d}.safetensors" for i in range(total)]
    for file, final in zip(shard_files, final_names, strict=True):
        file.replace(out / final)
    if len(shard_files) > 1:
        index = {
            "metadata": {"total_size": sum((out / f).stat().st_size for f in final_names)},
            "weight_map": {name: final_names[i] for name, i in weight_map.items()},
        }
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    report.shards = final_names
    source = Path(base) if base is not None else paths[0]
    for extra in _COPIED:
        if (source / extra).is_file() and source.resolve() != out.resolve():
            shutil.copy2(source / extra, out / extra)
    (out / "merge.json").write_text(
        json.dumps(
            {
                "method": spec.method,
                "models": [str(p) for p in paths],
                "base": str(base) if base is not None else None,
                "weights": list(spec.weights),
                "density": spec.density,
                "lambda": spec.lambda_,
                "t": spec.t,
                "seed": spec.seed,
            },
            indent=2,
        )
        + "\n"
    )
    return report
