"""Scoring an edit: exact scene-graph match for programs, a pixel/region metric for images.

Both give two components, weighted ``target_weight`` and ``1 - target_weight`` (0.5 each by
default), so a reward is in [0, 1] and is 1 exactly for the right edit:

Programs (:func:`score_program`):

- ``target``: whether the program touched exactly the objects the instruction is about (the
  existing objects it changed or removed, and the kinds it added) — target identification;
- ``edit``: whether the resulting scene graph equals the target scene graph exactly (every
  object's kind, colour, size, cell and material; ids are ignored, so an added object may get
  any id).

Images (:func:`score_image`), against the target rendering, with a per-channel tolerance
(``tolerance``, 16 by default) deciding whether two pixels agree:

- ``target``: the intersection over union of the pixels the submitted image changed from the
  source rendering and the pixels the right edit changes — whether the edit is in the right place;
- ``edit``: the share of the right edit's changed pixels that the submitted image gets right,
  times the share of all other pixels it leaves as they were (so repainting everything scores
  about 0).

Known limits of the image metric: it compares pixels with the renderer's own drawing, so a
semantically right edit drawn differently (another shape, shade, position within the cell, or
anti-aliasing) scores low; it cannot tell a wrong object of the same shape and colour from the
right one; small objects weigh less than large ones, since changed pixels are counted; and the
tolerance is per channel, not perceptual. Programs are the exact measure; the image metric is
for image-generating agents and rewards being close to the target rendering.

Example:
    >>> import numpy as np
    >>> source = np.zeros((2, 2, 3), np.uint8)
    >>> target = source.copy(); target[0, 0] = 255
    >>> score_image(source, target, target)["reward_components"]
    {'target': 0.5, 'edit': 0.5}
    >>> score_image(source, target, source)["reward_components"]
    {'target': 0.0, 'edit': 0.0}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arenagym.envs.imageedit.program import Applied
from arenagym.envs.imageedit.scene import Scene, scene_key

__all__ = ["score_image", "score_program"]


def score_program(
    applied: Applied, target_scene: Scene, targets: frozenset[str], target_weight: float = 0.5
) -> dict[str, Any]:
    """Components and details for a program whose result is ``applied``."""
    identified = applied.touched == targets
    match = scene_key(applied.scene) == scene_key(target_scene)
    expected = set(scene_key(target_scene))
    got = set(scene_key(applied.scene))
    return {
        "reward_components": {
            "target": target_weight * float(identified),
            "edit": (1.0 - target_weight) * float(match),
        },
        "target_identified": identified,
        "scene_match": match,
        "object_f1": _f1(len(expected & got), len(got), len(expected)),
        "touched": sorted(applied.touched),
    }


def _f1(hits: int, predicted: int, actual: int) -> float:
    return 2 * hits / (predicted + actual) if predicted + actual else 1.0


def score_image(
    source: np.ndarray,
    target: np.ndarray,
    submitted: np.ndarray,
    target_weight: float = 0.5,
    tolerance: int = 16,
) -> dict[str, Any]:
    """Components and details for ``submitted``, an edit of ``source`` meant to be ``target``
    (all ``H x W x 3`` ``uint8``)."""
    source16, target16, submitted16 = (a.astype(np.int16) for a in (source, target, submitted))
    region = np.any(np.abs(target16 - source16) > tolerance, axis=-1)
    changed = np.any(np.abs(submitted16 - source16) > tolerance, axis=-1)
    agrees = np.all(np.abs(submitted16 - target16) <= tolerance, axis=-1)
    union = np.count_nonzero(region | changed)
    iou = float(np.count_nonzero(region & changed) / union) if union else 1.0
    in_region = float(agrees[region].mean()) if region.any() else 1.0
    outside = float(agrees[~region].mean()) if (~region).any() else 1.0
    return {
        "reward_components": {
            "target": target_weight * iou,
            "edit": (1.0 - target_weight) * in_region * outside,
        },
        "changed_iou": iou,
        "region_accuracy": in_region,
        "preserved": outside,
        "region_pixels": int(np.count_nonzero(region)),
    }
