"""ImageEdit-v0: reasoning-guided image editing (after R-Genie, "Reasoning-Guided Generative
Image Editing"): edit a procedural scene from an instruction that needs world knowledge and
intention inference ("make the fruit that keeps the doctor away look ripe").

Scenes are rendered with Pillow; instructions, their edits and reasoning contexts are generated
from a small curated knowledge table, deterministically per seed. ``ImageEdit-Bench-v0`` plays
the bundled REditBench-like set of 1,200 triples (4 categories x 3 difficulties x 100).
"""

from arenagym.envs.core.registration import register_env

_ENTRY = "arenagym.envs.imageedit.env:ImageEditEnv"

register_env(
    "ImageEdit-v0",
    _ENTRY,
    "Edit a rendered scene from an instruction needing world knowledge (edit program or image)",
    {"split": "procedural", "difficulty": None},
)
register_env(
    "ImageEdit-Easy-v0",
    _ENTRY,
    "ImageEdit-v0 at difficulty 1: one fact per instruction, 3-4 objects",
    {"split": "procedural", "difficulty": 1},
)
register_env(
    "ImageEdit-Hard-v0",
    _ENTRY,
    "ImageEdit-v0 at difficulty 3: fact chains, decoys and several targets, 7-8 objects",
    {"split": "procedural", "difficulty": 3},
)
register_env(
    "ImageEdit-Bench-v0",
    _ENTRY,
    "The bundled REditBench-like set of 1,200 image-instruction-edit triples (seed i: triple i)",
    {"split": "bench"},
)
