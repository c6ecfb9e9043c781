"""Shims over transformers API changes, for code that loads transformers models itself.

The transformers backend, the trainer (policy and reference model) and the reward-model scorer call ``from_pretrained``
with a dtype; transformers 4.56 renamed that argument from ``torch_dtype`` to ``dtype`` (the old
name warns). :func:`dtype_kwarg` names it right for the installed release. It lives here, below
both ``trainers`` modules, so that neither imports the other for it (they used to import each
other). Importing this module imports nothing heavy: transformers loads when the shim is called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dtype_kwarg"]


def dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s dtype argument: ``dtype`` (transformers >= 4.56) or ``torch_dtype``.

    Example:
        >>> list(dtype_kwarg("float32").values())
        ['float32']
    """
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}
