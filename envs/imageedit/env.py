"""ImageEdit-v0: reasoning-guided image editing on procedural scenes (after R-Genie)."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from arenagym.envs.core.dual import InverseTask
from arenagym.envs.core.spaces import UnicodeText
from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.imageedit.generator import (
    BENCH_SIZE,
    CATEGORIES,
    DIFFICULTIES,
    Triple,
    bench_triple,
    generate,
)
from arenagym.envs.imageedit.knowledge import COLOURS, KINDS, MATERIALS, SIZES
from arenagym.envs.imageedit.program import ProgramError, apply_program, parse_program
from arenagym.envs.imageedit.render import HEIGHT, WIDTH, render_scene
from arenagym.envs.imageedit.scene import COLUMNS, ROWS, Scene, describe_objects, describe_scene
from arenagym.envs.imageedit.scoring import score_image, score_program

#: The longest text observation and action.
MAX_TEXT = 16_384
_IMAGE_SHAPE = (HEIGHT, WIDTH, 3)
_PROGRAM_HINT = (
    'Reply with the edit program: a JSON list of operations, e.g. [{"op": "recolour", "id": 0, '
    '"colour": "red"}].'
)
#: The system prompt of the inverse task (scene + edit program -> instruction).
INVERSE_SYSTEM_PROMPT = (
    "You are shown a scene and an edit program that was carried out on it. Write the user's "
    "instruction that the edit carried out, in one or two sentences. Instructions often name "
    "things through world knowledge or the user's goal."
)
_IMAGE_HINT = f"Reply with the edited image: a {HEIGHT}x{WIDTH}x3 uint8 RGB array."


def system_prompt(action: str) -> str:
    """The system prompt for ``action`` (``"program"`` or ``"image"``)."""
    common = (
        "You edit pictures of simple scenes by following a user's instruction. The instruction "
        "does not name everything directly: work out which object it means and what it wants "
        "from world knowledge (what things are, what is edible, what floats, what people need, "
        "the colours of familiar things) and from the user's intentions. "
        f"The scene is a {COLUMNS}x{ROWS} grid of cells, one object per cell at most; x is the "
        f"column from the left (0-{COLUMNS - 1}), y the row from the top (0-{ROWS - 1})."
    )
    if action == "image":
        return f"{common} {_IMAGE_HINT}"
    return (
        f"{common} Reply with an edit program: a JSON list of operations, applied in order.\n"
        '- {"op": "recolour", "id": ID, "colour": COLOUR}\n'
        '- {"op": "resize", "id": ID, "size": SIZE}\n'
        '- {"op": "move", "id": ID, "to": [X, Y]} (to an empty cell)\n'
        '- {"op": "remove", "id": ID}\n'
        '- {"op": "add", "kind": KIND, "colour": COLOUR, "size": SIZE, "at": [X, Y]}\n'
        f"Colours: {', '.join(COLOURS)}. Sizes: {', '.join(SIZES)}. "
        f"Kinds: {', '.join(KINDS)}. Materials: {', '.join(MATERIALS)}.\n"
        "Write only what the instruction asks for; the JSON may follow your reasoning."
    )


class _Protocol(TextEnv):
    """The text protocol of an ImageEdit episode (turns, invalid actions, stop reasons), with
    the episode and the scoring delegated to :class:`ImageEditEnv`."""

    accepts_any_action: ClassVar[bool] = True

    def __init__(self, owner: ImageEditEnv, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner = owner

    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        return self._owner._start_episode(options)

    def _respond(self, action: Any) -> Turn | InvalidAction:
        return self._owner._respond(action)


class ImageEditEnv(gym.Env[dict[str, Any] | str, str | np.ndarray]):
    r"""Edit a scene from an instruction that needs world knowledge and intention inference.

    ## Description
    After R-Genie (reasoning-guided generative image editing). Each episode shows a procedural
    scene, objects with a kind, colour, size, cell and material on a 4x3 grid rendered with
    Pillow, and an instruction that does not say plainly what to do: the object is named by what
    it is known for ("the fruit that keeps the doctor away", "the thing that would sink in
    water"), the new value by a fact ("the colour of snow", "look ripe"), or the whole edit by a
    goal ("My guest tonight is vegan; take away whatever they cannot eat."). Resolving it needs
    the curated knowledge table shipped with the env (:mod:`~arenagym.envs.imageedit.knowledge`).
    Categories: ``implicit_referent``, ``knowledge_value``, ``multi_hop``, ``intention``, each
    at difficulty 1-3 (see :mod:`~arenagym.envs.imageedit.generator`). The bundled split is a
    REditBench-like set of 1,200 triples (scene, instruction, edit) with reasoning contexts.

    ## Action Space
    ``action="program"`` (default): :class:`~arenagym.envs.core.spaces.UnicodeText`, an edit
    program, a JSON list of operations on scene objects (``recolour``, ``resize``, ``move``,
    ``remove``, ``add``; see :mod:`~arenagym.envs.imageedit.program`), possibly after prose or
    in a fenced block. ``action="image"``: ``Box(0, 255, (120, 160, 3), uint8)``, the edited
    image (for image-generating agents).

    ## Observation Space
    ``observation="dict"`` (default): ``Dict`` with ``text`` (:class:`UnicodeText`: what a text
    env would show: on reset the instruction, the scene description and how to reply; on a step
    the feedback), ``instruction`` (:class:`UnicodeText`), ``scene`` (:class:`UnicodeText`: the
    current scene's description) and ``image`` (``Box(0, 255, (120, 160, 3), uint8)``: the
    current scene; after a valid edit, the edited scene or the submitted image).
    ``observation="text"``: :class:`UnicodeText`, the ``text`` entry alone, for text-only agents
    (the benchmark suites use it). An invalid action's text starts with ``Invalid action:``.

    ## Rewards
    Given on the step of a valid action; ``reward_components`` sum to it, each weighted by
    ``target_weight`` / ``1 - target_weight`` (0.5 / 0.5). Programs: ``target`` (the program
    touched exactly the objects meant, target identification) and ``edit`` (the resulting scene
    graph equals the target exactly). Images: ``target`` (IoU of the changed pixels with those
    of the right edit) and ``edit`` (share of the right edit's pixels matched, times the share
    of other pixels preserved), against the target rendering with a per-channel
    ``pixel_tolerance``; its limits are in :mod:`~arenagym.envs.imageedit.scoring`. An invalid
    action (not JSON, an unknown op, key, object id, kind or colour, a value out of range, an
    occupied cell, a wrong image shape) earns ``invalid_action`` = ``-invalid_action_penalty``.
    ``info`` holds ``target_identified``, ``scene_match``, ``object_f1``, ``touched`` (or the
    image metrics), and at the end ``target_program`` and ``reasoning``.

    ## Starting State
    A triple drawn with the reset seed: procedurally (``split="procedural"``), or triple ``i``
    of the bundled set (``split="bench"``: ``options={"index": i}``, else ``seed % n`` over the
    bundled triples kept by ``categories`` and ``difficulty``, so ``reset(seed=i)`` on
    ``ImageEdit-Bench-v0`` plays triple ``i`` for ``i < 1200``). ``options`` may also set
    ``category`` and ``difficulty`` for one procedural episode.

    ## Episode End
    ``solved`` (reward 1: the right objects, edited exactly right) or ``failed`` after the
    first valid action; ``invalid_action`` after more than ``max_invalid_actions`` invalid ones.

    ## Arguments
    * ``split``: ``"procedural"`` (default) or ``"bench"`` (the bundled 1,200 triples).
    * ``difficulty``: 1, 2, 3 or ``None`` (default: drawn per episode).
    * ``categories``: the categories to draw from (default all four).
    * ``observation``: ``"dict"`` (default) or ``"text"``; ``action``: ``"program"`` (default)
      or ``"image"``.
    * ``target_weight`` (0.5), ``pixel_tolerance`` (16).
    * ``max_turns`` (1; a valid action always ends the episode), ``max_invalid_actions`` (2),
      ``invalid_action_penalty`` (0.1), ``render_mode`` (``None``, ``"ansi"``: the transcript,
      ``"rgb_array"``: the current image).

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs
    >>> env = gym.make("ImageEdit-v0", observation="text")
    >>> prompt, info = env.reset(seed=1)
    >>> prompt.startswith("Instruction: "), info["category"] in CATEGORIES
    (True, True)
    >>> env.step("paint it red")[4]["invalid_action"]
    True
    >>> program = env.unwrapped.current_triple.program_json()  # the right edit
    >>> import json
    >>> _, reward, terminated, _, info = env.step(json.dumps(program))
    >>> reward, terminated, info["stop_reason"], sorted(info["reward_components"])
    (1.0, True, 'solved', ['edit', 'target'])
    >>> obs, _ = gym.make("ImageEdit-v0").reset(seed=1)
    >>> sorted(obs), obs["image"].shape, obs["text"] == prompt
    (['image', 'instruction', 'scene', 'text'], (120, 160, 3), True)
    >>> env.unwrapped.inverse_task().target == obs["instruction"]
    True
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        split: str = "procedural",
        difficulty: int | None = None,
        categories: list[str] | None = None,
        observation: str = "dict",
        action: str = "program",
        target_weight: float = 0.5,
        pixel_tolerance: int = 16,
        max_turns: int = 1,
        max_invalid_actions: int = 2,
        invalid_action_penalty: float = 0.1,
        render_mode: str | None = None,
    ) -> None:
        _check_choice("split", split, ("procedural", "bench"))
        _check_choice("observation", observation, ("dict", "text"))
        _check_choice("action", action, ("program", "image"))
        if difficulty is not None:
            _check_choice("difficulty", difficulty, DIFFICULTIES)
        chosen = tuple(categories) if categories else CATEGORIES
        for category in chosen:
            _check_choice("categories", category, CATEGORIES)
        if not 0.0 <= target_weight <= 1.0:
            raise ValueError(f"target_weight must be in [0, 1], got {target_weight!r}")
        if not isinstance(pixel_tolerance, int) or not 0 <= pixel_tolerance < 255:
            raise ValueError(f"pixel_tolerance must be an int in 0..254, got {pixel_tolerance!r}")
        if render_mode is not None:
            _check_choice("render_mode", render_mode, tuple(self.metadata["render_modes"]))
        self.split = split
        self.difficulty = difficulty
        self.categories = chosen
        self.observation_mode = observation
        self.action_mode = action
        self.target_weight = float(target_weight)
        self.pixel_tolerance = pixel_tolerance
        self.render_mode = render_mode
        self._protocol = _Protocol(
            self,
            max_turns=max_turns,
            invalid_action_penalty=invalid_action_penalty,
            max_invalid_actions=max_invalid_actions,
            max_action_length=MAX_TEXT,
            max_observation_length=MAX_TEXT,
            render_mode="ansi" if render_mode == "ansi" else None,
        )
        image_space = spaces.Box(0, 255, _IMAGE_SHAPE, np.uint8)
        text_space = UnicodeText(MAX_TEXT)
        self.observation_space: spaces.Space[Any] = (
            text_space
            if observation == "text"
            else spaces.Dict(
                {
                    "text": text_space,
                    "instruction": UnicodeText(1024),
                    "scene": UnicodeText(4096),
                    "image": image_space,
                }
            )
        )
        self.action_space: spaces.Space[Any] = (
            image_space if action == "image" else UnicodeText(MAX_TEXT)
        )
        self._bench = [
            index
            for index in range(BENCH_SIZE)
            if CATEGORIES[index % len(CATEGORIES)] in chosen
            and (difficulty is None or index // len(CATEGORIES) % 3 + 1 == difficulty)
        ]
        self._seed: int | None = None
        self._triple: Triple | None = None
        self._scene: Scene = ()
        self._image = np.zeros(_IMAGE_SHAPE, np.uint8)
        self._source_image = self._image
        self._closed = False

    # ----------------------------------------------------------------------- Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any] | str, dict[str, Any]]:
        super().reset(seed=seed)
        self._seed = seed
        text, info = self._protocol.reset(seed=seed, options=options)
        return self._observe(text), info

    def step(self, action: str | np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        outcome = self._protocol.step(action)  # type: ignore[arg-type]
        text, reward, terminated, truncated, info = outcome
        return self._observe(text), reward, terminated, truncated, info

    def render(self) -> str | np.ndarray | None:  # type: ignore[override]
        """``"ansi"``: the transcript so far; ``"rgb_array"``: the current image."""
        if self.render_mode == "rgb_array":
            return self._image.copy()
        return self._protocol.render()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._protocol.close()
        super().close()

    @property
    def max_turns(self) -> int:
        """The turn limit (a valid action ends the episode anyway)."""
        return self._protocol.max_turns

    @property
    def max_invalid_actions(self) -> int:
        """How many invalid actions are tolerated; one more ends the episode."""
        return self._protocol.max_invalid_actions

    @property
    def current_triple(self) -> Triple | None:
        """The episode's triple (scene, instruction, the right edit and its reasoning)."""
        return self._triple

    def inverse_task(self) -> InverseTask | None:
        """The inverse of this episode's task: given the scene and an edit program, which
        instruction was carried out (``target``: the instruction); ``None`` before ``reset``."""
        if self._triple is None:
            return None
        return InverseTask(
            system_prompt=INVERSE_SYSTEM_PROMPT,
            question=(
                f"Scene:\n{describe_objects(self._triple.scene)}\n\n"
                "Edit program:\n{output}\n\nInstruction:"
            ),
            target=self._triple.instruction,
        )

    # ---------------------------------------------------------------------------- episodes
    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        options = dict(options or {})
        rng = self.np_random
        if self.split == "bench" or "index" in options:
            index = options.get("index")
            if index is None:
                pick = self._seed if self._seed is not None else int(rng.integers(2**31))
                index = self._bench[pick % len(self._bench)]
            if not isinstance(index, int) or not 0 <= index < BENCH_SIZE:
                raise ValueError(f"options['index'] must be an int in 0..{BENCH_SIZE - 1}")
            triple = bench_triple(index)
            task_id = f"imageedit/bench/{index:04d}"
        else:
            category = (
                options.get("category") or self.categories[int(rng.integers(len(self.categories)))]
            )
            difficulty = options.get("difficulty") or self.difficulty or int(rng.integers(1, 4))
            triple = generate(rng, category, difficulty)
            digest = hashlib.blake2b(
                (triple.instruction + describe_objects(triple.scene)).encode(), digest_size=5
            ).hexdigest()
            task_id = f"imageedit/{category}/d{difficulty}/{digest}"
        self._triple = triple
        self._scene = triple.scene
        self._image = self._source_image = render_scene(triple.scene)
        hint = _IMAGE_HINT if self.action_mode == "image" else _PROGRAM_HINT
        prompt = (
            f"Instruction: {triple.instruction}\n\nScene:\n{describe_scene(triple.scene)}\n\n{hint}"
        )
        info = {"category": triple.category, "difficulty": triple.difficulty, "split": self.split}
        return Episode(task_id, system_prompt(self.action_mode), prompt, info)

    def _respond(self, action: Any) -> Turn | InvalidAction:
        if self.action_mode == "image":
            return self._respond_image(action)
        if not isinstance(action, str):
            return InvalidAction(
                f"actions are edit programs as text (str), got {type(action).__name__}; "
                + _PROGRAM_HINT
            )
        if len(action) > MAX_TEXT:
            return InvalidAction(f"the reply has {len(action)} characters, over {MAX_TEXT}")
        assert self._triple is not None
        try:
            applied = apply_program(self._scene, parse_program(action))
        except ProgramError as error:
            return InvalidAction(f"{error}. Nothing was changed; try again.")
        scores = score_program(
            applied, self._triple.target_scene, self._triple.targets, self.target_weight
        )
        self._scene = applied.scene
        self._image = render_scene(applied.scene)
        verdict = (
            f"Target identified: {'yes' if scores['target_identified'] else 'no'}; the scene "
            f"matches the request: {'yes' if scores['scene_match'] else 'no'}.\n"
            f"Resulting scene:\n{describe_objects(applied.scene)}"
        )
        return self._finish(verdict, scores)

    def _respond_image(self, action: Any) -> Turn | InvalidAction:
        if not isinstance(action, np.ndarray):
            return InvalidAction(
                f"this env takes images (action='image'), got {type(action).__name__}; "
                + _IMAGE_HINT
            )
        if action.shape != _IMAGE_SHAPE or action.dtype.kind not in "uif":
            return InvalidAction(
                f"the image is a {action.shape} {action.dtype} array; {_IMAGE_HINT}"
            )
        if not np.all(np.isfinite(action)) or action.min() < 0 or action.max() > 255:
            return InvalidAction(f"pixel values must be in 0..255; {_IMAGE_HINT}")
        assert self._triple is not None
        submitted = np.rint(action).astype(np.uint8)
        scores = score_image(
            self._source_image,
            render_scene(self._triple.target_scene),
            submitted,
            self.target_weight,
            self.pixel_tolerance,
        )
        self._image = submitted
        verdict = (
            f"Changed-region overlap {scores['changed_iou']:.2f}, edit accuracy "
            f"{scores['region_accuracy']:.2f}, rest preserved {scores['preserved']:.2f}."
        )
        return self._finish(verdict, scores)

    def _finish(self, verdict: str, scores: dict[str, Any]) -> Turn:
        assert self._triple is not None
        components = scores.pop("reward_components")
        total = sum(components.values())
        solved = total >= 1.0 - 1e-9
        info = {
            **scores,
            "target_program": self._triple.program_json(),
            "reasoning": list(self._triple.reasoning),
        }
        return Turn(
            f"{verdict}\nScore: {total:.2f}.",
            components,
            terminated=True,
            stop_reason="solved" if solved else "failed",
            info=info,
        )

    def _observe(self, text: str) -> dict[str, Any] | str:
        if self.observation_mode == "text":
            return text
        assert self._triple is not None
        return {
            "text": text,
            "instruction": self._triple.instruction,
            "scene": describe_scene(self._scene),
            "image": self._image.copy(),
        }


def _check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed or isinstance(value, bool):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
