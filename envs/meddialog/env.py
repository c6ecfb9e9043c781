"""MedDialog-v0: MedDG-protocol next-turn generation with knowledge triplets and demonstrations.

After MedRef (a medical dialogue system that filters irrelevant knowledge-graph triplets, selects
demonstrations and prompts with historical and evident details, evaluated on MedDG and KaMed):
the agent writes the doctor's next turn of a scripted gastro-intestinal consultation, given the
dialogue so far, candidate knowledge triplets (retrieved from the knowledge-graph neighbourhood of
what the dialogue has mentioned, mixed with distractors; the agent may filter them) and a pool of
demonstrations, and is scored against the reference turn with MedDG's metrics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.meddialog.dialogues import (
    ACT_NAMES_ZH,
    ACTS,
    Utterance,
    check_language_and_persona,
    generate_dialogue,
    sample_case,
)
from arenagym.envs.meddialog.knowledge import KnowledgeGraph, Triplet, load_knowledge_graph
from arenagym.envs.meddialog.metrics import (
    MEDDG_COLUMNS,
    bleu,
    distinct,
    entity_counts,
    prf,
    rouge_l,
    rouge_n,
)

#: The default reward: 0.6 entity F1 + 0.2 BLEU-2 + 0.2 ROUGE-L (MedDG definitions).
DEFAULT_WEIGHTS: dict[str, float] = {"entity_f1": 0.6, "bleu_2": 0.2, "rouge_l": 0.2}
#: What ``info["clean_reward"]`` (the benchmark score) may carry besides the reward itself.
SCORE_METRICS: tuple[str, ...] = ("reward", *MEDDG_COLUMNS)
_SECTION = re.compile(
    r"^\s*(ENTITIES|ACTS|TRIPLETS|DEMOS)\s*[:：](.*)$", re.IGNORECASE | re.MULTILINE
)
_ITEM_SPLIT = re.compile(r"[,，、;；\n]+")
_SPEAKER_PREFIX = re.compile(r"^\s*(?:doctor|医生)\s*[:：]\s*", re.IGNORECASE)
_LABELS = {
    "zh": {"patient": "患者", "doctor": "医生"},
    "en": {"patient": "Patient", "doctor": "Doctor"},
}


@dataclass(frozen=True)
class TurnTask:
    """One step of an episode: the reference doctor turn and what the agent is shown."""

    reference: Utterance
    patient: str  # the patient turn just before it
    triplets: tuple[Triplet, ...]
    relevant_triplets: frozenset[int]  # 1-based ids
    demos: tuple[tuple[str, Utterance], ...]
    relevant_demos: frozenset[int]  # 1-based ids


@dataclass(frozen=True)
class ParsedAction:
    """A doctor action: the utterance and its optional tagged sections (``None``: not given)."""

    response: str
    entities: set[str] | None
    acts: set[str] | None
    triplets: list[int] | None
    demos: list[int] | None


class MedDialogEnv(TextEnv):
    r"""Write the doctor's next turn of a MedDG-style consultation (mode ``next_turn``).

    ## Description
    A scripted consultation is generated for a case drawn from the bundled bilingual
    gastro-intestinal knowledge graph (12 diseases, 40 symptoms, 4 attributes, 15 tests, 30
    medicines): the patient's complaint, the doctor's questions, tests, diagnosis, treatment and
    advice, each turn tagged with MedDG's acts and entities. The episode walks the reference
    dialogue's doctor turns with the true history: at each step the agent sees the new patient
    turn, candidate knowledge triplets ``T1..Tn`` and demonstrations ``D1..Dk`` (turns of other
    consultations), and writes the doctor's turn. The triplets are MedRef's retrieval step: a
    random draw from the knowledge-graph neighbourhood of the entities the dialogue has mentioned
    so far (their own triplets, and those of the diseases they link to), plus random triplets of
    the whole graph. They are built from the history alone, never from the reference turn, so
    copying the entities that recur in them is no shortcut; choosing the useful ones (the
    ``TRIPLETS`` section) is MedRef's triplet filter, the agent's job.

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the utterance, optionally followed by lines
    ``ENTITIES: 胃炎, 奥美拉唑`` (predicted entities, names or ids), ``ACTS: inquire, test``
    (MedDG acts: inquire, diagnosis, treatment, test, precaution, inform, chitchat), ``TRIPLETS:
    T1, T4`` (the triplets kept) and ``DEMOS: D2`` (the demonstrations chosen, best first).

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: on reset the patient's opening turn and the
    first turn's triplets and demonstrations; on each step the reference doctor turn just scored,
    the patient's reply and the next turn's triplets and demonstrations.

    ## Rewards
    Per turn, ``weights`` · (entity F1, BLEU-2, ROUGE-L) of the utterance against the reference
    turn (default 0.6/0.2/0.2; MedDG's definitions, character level for Chinese; see
    :mod:`~arenagym.envs.meddialog.metrics`), divided by the number of doctor turns, so an
    episode's return is the mean turn score. Entities are extracted from the utterance; a turn
    with no entities to mention scores entity F1 = 1 when the utterance mentions none. ``info``
    holds every MedDG metric of the turn (``meddg``), ``entity_prediction_f1`` (the ENTITIES
    section), ``act_f1``, ``triplet_precision`` / ``triplet_recall`` (the TRIPLETS section
    against the shown triplets that touch a reference entity; 1 when both are empty),
    ``demo_hit`` (hit@k of the DEMOS section), the reference and its tags.
    ``info["clean_reward"]`` is the reward, or with ``score_metric`` one MedDG column averaged
    over the dialogue's turns (Distinct: over the dialogue's responses, at its end) so that a
    suite can report MedDG's table column by column.

    ## Starting State
    A case, its scripted dialogue (5-11 doctor turns), triplets and demonstrations, all drawn from
    the reset seed.

    ## Episode End
    ``completed`` after the last doctor turn; ``invalid_action`` after more than
    ``max_invalid_actions`` empty utterances; ``max_turns`` if set lower.

    ## Arguments
    * ``language``: ``"zh"`` (default) or ``"en"``.
    * ``persona``: the patient's persona, ``"plain"`` (default), ``"vague"`` or ``"distracting"``.
    * ``n_triplets`` (12), ``n_demos`` (6), ``demo_k`` (3: hit@k).
    * ``weights``: ``{"entity_f1": .., "bleu_2": .., "rouge_l": ..}``.
    * ``score_metric``: ``"reward"`` (default) or a MedDG column (``"BLEU-2"``, ``"Entity-F1"``...).
    * ``max_turns`` (default: no limit below the dialogue's length), ``max_invalid_actions`` (2),
      ``invalid_action_penalty`` (0.1), ``render_mode``.

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs.meddialog
    >>> env = gym.make("MedDialog-En-v0")
    >>> prompt, info = env.reset(seed=0)
    >>> prompt.splitlines()[0]
    'Dialogue so far:'
    >>> _, reward, terminated, _, info = env.step("How long has this been going on?\nACTS: inquire")
    >>> info["meddg"]["Entity-F1"], info["act_f1"], terminated
    (1.0, 1.0, False)
    >>> env.step("")[4]["invalid_action"]
    True
    """

    def __init__(
        self,
        language: str = "zh",
        persona: str = "plain",
        n_triplets: int = 12,
        n_demos: int = 6,
        demo_k: int = 3,
        weights: dict[str, float] | None = None,
        score_metric: str = "reward",
        max_turns: int | None = None,
        max_invalid_actions: int = 2,
        invalid_action_penalty: float = 0.1,
        render_mode: str | None = None,
    ) -> None:
        check_language_and_persona(language, persona)
        if score_metric not in SCORE_METRICS:
            raise ValueError(f"score_metric must be one of {SCORE_METRICS}, got {score_metric!r}")
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        if set(self.weights) != set(DEFAULT_WEIGHTS):
            raise ValueError(f"weights needs exactly the keys {sorted(DEFAULT_WEIGHTS)}")
        for name, value in {"n_triplets": n_triplets, "n_demos": n_demos, "demo_k": demo_k}.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.language, self.persona = language, persona
        self.n_triplets, self.n_demos, self.demo_k = n_triplets, n_demos, demo_k
        self.score_metric = score_metric
        self.kg: KnowledgeGraph = load_knowledge_graph()
        super().__init__(
            max_turns=max_turns or 64,
            invalid_action_penalty=invalid_action_penalty,
            max_invalid_actions=max_invalid_actions,
            render_mode=render_mode,
        )
        self._tasks: list[TurnTask] = []
        self._index = 0
        self._responses: list[str] = []

    # ------------------------------------------------------------------------- episodes
    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        rng = self.np_random
        case = sample_case(self.kg, rng, self.language)
        dialogue = generate_dialogue(self.kg, case, rng, self.persona)
        pool: list[tuple[str, Utterance]] = []
        for _ in range(4):
            other = sample_case(self.kg, rng, self.language)
            turns = generate_dialogue(self.kg, other, rng, self.persona)
            pool += [(turns[i - 1].text, turns[i]) for i in range(1, len(turns), 2)]
        history: set[str] = set()
        tasks = []
        for index in range(1, len(dialogue), 2):
            history |= set(dialogue[index - 1].entities)
            tasks.append(self._task(rng, dialogue[index - 1].text, dialogue[index], history, pool))
            history |= set(dialogue[index].entities)
        self._tasks, self._index, self._responses = tasks, 0, []
        self._dialogue = dialogue
        number = int(rng.integers(10**9))
        prompt = self._history_block([dialogue[0]]) + "\n\n" + self._task_block(tasks[0])
        return Episode(
            task_id=f"meddialog/{self.language}/{case.disease}/{number:09d}",
            system_prompt=self._system_prompt(),
            prompt=prompt,
            info={"language": self.language, "n_doctor_turns": len(tasks)},
        )

    def _task(
        self, rng: np.random.Generator, patient: str, reference: Utterance, history: set[str],
        pool: list[tuple[str, Utterance]],
    ) -> TurnTask:  # fmt: skip
        shown = self._candidate_triplets(rng, history)
        gold = set(reference.entities)
        relevant_ids = frozenset(k + 1 for k, t in enumerate(shown) if {t.head, t.tail} & gold)
        matching = [i for i, (_, u) in enumerate(pool) if u.acts == reference.acts]
        chosen: list[int] = []
        if matching:
            chosen.append(int(matching[int(rng.integers(len(matching)))]))
        for i in rng.permutation(len(pool)):
            if len(chosen) >= self.n_demos:
                break
            if int(i) not in chosen:
                chosen.append(int(i))
        chosen = [chosen[i] for i in rng.permutation(len(chosen))]
        demos = tuple(pool[i] for i in chosen)
        relevant_demos = frozenset(
            k + 1 for k, (_, u) in enumerate(demos) if u.acts == reference.acts
        )
        return TurnTask(reference, patient, shown, relevant_ids, demos, relevant_demos)

    def _candidate_triplets(
        self, rng: np.random.Generator, history: set[str]
    ) -> tuple[Triplet, ...]:
        """The triplets shown for a turn: MedRef's retrieval step, from the dialogue history only.

        MedRef retrieves the knowledge-graph neighbourhood of the entities the dialogue has
        mentioned and then filters it; here the env does the retrieval and the agent is the
        filter (its ``TRIPLETS`` section is scored against the triplets that touch the
        reference turn). The neighbourhood is every triplet that touches an entity mentioned so
        far by patient or doctor, and every triplet of a disease linked to a mentioned clinical
        entity (symptom, test, medicine or the disease itself; attributes link every disease and
        do not count), so the next symptom to ask, the test to order or the drug to give can be
        among them. ``n_triplets - n_triplets // 4`` of them are drawn at random, the remaining
        slots take random triplets of the whole graph, and the list is shuffled.

        Nothing here reads the reference turn, and the draw is uniform: how often an entity
        recurs in the list says nothing about whether the reference turn names it beyond what
        the history already says.
        """
        kg = self.kg
        everything = kg.triplets()
        clinical = {e for e in history if kg.category(e) != "attribute"}
        diseases = set(kg.by_category["disease"])
        linked = diseases & clinical
        for t in kg.neighbourhood(clinical):
            linked |= {t.head, t.tail} & diseases
        neighbourhood = [
            t for t in everything if {t.head, t.tail} & history or {t.head, t.tail} & linked
        ]
        n_retrieved = min(len(neighbourhood), self.n_triplets - self.n_triplets // 4)
        triplets = [neighbourhood[int(i)] for i in rng.permutation(len(neighbourhood))]
        triplets = triplets[:n_retrieved]
        for i in rng.permutation(len(everything)):
            if len(triplets) >= self.n_triplets:
                break
            if everything[int(i)] not in triplets:
                triplets.append(everything[int(i)])
        return tuple(triplets[int(i)] for i in rng.permutation(len(triplets)))

    def _system_prompt(self) -> str:
        language = "Chinese" if self.language == "zh" else "English"
        return (
            "You are a gastroenterologist in an online consultation. Write the doctor's next turn "
            f"in {language}, as a real doctor would: ask about symptoms and their site, time "
            "course, nature and triggers, order tests, diagnose, prescribe and advise, one step "
            "at a time. You may use the candidate knowledge triplets and the demonstrations "
            "(turns of other consultations). After the utterance you may add lines\n"
            "ENTITIES: <medical entities you mention>\nACTS: <inquire, diagnosis, treatment, "
            "test, precaution, inform or chitchat>\nTRIPLETS: <ids of the triplets you used, "
            "e.g. T1, T4>\nDEMOS: <ids of the most useful demonstrations, best first>\n"
            "Your turn is scored against the real doctor's turn (medical entities, BLEU, ROUGE)."
        )

    def _history_block(self, turns: list[Utterance]) -> str:
        labels = _LABELS[self.language]
        lines = [f"{labels[u.speaker]}: {u.text}" for u in turns]
        return "Dialogue so far:\n" + "\n".join(lines)

    def _task_block(self, task: TurnTask) -> str:
        labels = _LABELS[self.language]
        triplets = "\n".join(
            f"T{k} {t.render(self.kg, self.language)}" for k, t in enumerate(task.triplets, 1)
        )
        demos = "\n".join(
            f"D{k} {labels['patient']}: {p} | {labels['doctor']}: {u.text}"
            for k, (p, u) in enumerate(task.demos, 1)
        )
        return (
            f"Candidate knowledge triplets:\n{triplets}\n\nDemonstrations:\n{demos}\n\n"
            "Write the doctor's next turn."
        )

    # ---------------------------------------------------------------------------- steps
    def parse_action(self, action: str) -> ParsedAction:
        """Split an action into the utterance and its tagged sections."""
        sections: dict[str, str] = {}
        for match in _SECTION.finditer(action):
            sections[match.group(1).upper()] = match.group(2)
        response = _SPEAKER_PREFIX.sub("", _SECTION.sub("", action)).strip()
        return ParsedAction(
            response=response,
            entities=self._parse_entities(sections["ENTITIES"]) if "ENTITIES" in sections else None,
            acts=_parse_acts(sections["ACTS"]) if "ACTS" in sections else None,
            triplets=_parse_ids(sections["TRIPLETS"], "T") if "TRIPLETS" in sections else None,
            demos=_parse_ids(sections["DEMOS"], "D") if "DEMOS" in sections else None,
        )

    def _parse_entities(self, text: str) -> set[str]:
        found: set[str] = set()
        for item in _ITEM_SPLIT.split(text):
            item = item.strip()
            if item in self.kg.entities:
                found.add(item)
            elif item:
                found |= self.kg.extract(item, "zh") | self.kg.extract(item, "en")
        return found

    def _respond(self, action: str) -> Turn | InvalidAction:
        parsed = self.parse_action(action)
        if not parsed.response:
            return InvalidAction(
                "the doctor's utterance is empty; write what the doctor says (the ENTITIES/ACTS/"
                "TRIPLETS/DEMOS lines are optional additions after it)"
            )
        task = self._tasks[self._index]
        scores = turn_scores(parsed.response, task.reference, self.kg, self.language)
        count = len(self._tasks)
        components = {
            "entity_f1": self.weights["entity_f1"] * scores["Entity-F1"] / count,
            "bleu_2": self.weights["bleu_2"] * scores["BLEU-2"] / count,
            "rouge_l": self.weights["rouge_l"] * scores["ROUGE-L"] / count,
        }
        self._responses.append(parsed.response)
        self._index += 1
        done = self._index >= count
        info: dict[str, Any] = {
            "meddg": scores,
            "reference": task.reference.text,
            "reference_entities": list(task.reference.entities),
            "reference_acts": list(task.reference.acts),
            "entity_prediction_f1": None,
            "act_f1": None,
            "triplet_precision": None,
            "triplet_recall": None,
            "demo_hit": None,
        }
        if parsed.entities is not None:
            info["entity_prediction_f1"] = prf(
                *entity_counts(parsed.entities, task.reference.entities), empty=1.0
            )[2]
        if parsed.acts is not None:
            info["act_f1"] = prf(*entity_counts(parsed.acts, task.reference.acts), empty=1.0)[2]
        if parsed.triplets is not None:
            precision, recall, _ = prf(
                *entity_counts(parsed.triplets, task.relevant_triplets), empty=1.0
            )
            info["triplet_precision"], info["triplet_recall"] = precision, recall
        if parsed.demos is not None:
            info["demo_hit"] = float(bool(set(parsed.demos[: self.demo_k]) & task.relevant_demos))
        clean = self._clean(components, scores, count, done)
        labels = _LABELS[self.language]
        shown = f"{labels['doctor']} (reference): {task.reference.text}"
        if done:
            observation = f"{shown}\nThe consultation is over."
            return Turn(observation, components, True, "completed", info, clean_reward=clean)
        next_task = self._tasks[self._index]
        observation = (
            f"{shown}\n{labels['patient']}: {next_task.patient}\n\n{self._task_block(next_task)}"
        )
        return Turn(observation, components, info=info, clean_reward=clean)

    def _clean(
        self, components: dict[str, float], scores: dict[str, float], count: int, done: bool
    ) -> float:
        if self.score_metric == "reward":
            return float(sum(components.values()))
        if self.score_metric.startswith("Distinct"):
            n = int(self.score_metric[-1])
            return distinct(self._responses, n, self.language) if done else 0.0
        return scores[self.score_metric] / count


def turn_scores(
    response: str, reference: Utterance, kg: KnowledgeGraph, language: str
) -> dict[str, float]:
    """MedDG's sentence-level metrics of one response (entity P/R/F1 against the gold tags)."""
    predicted = kg.extract(response, language)
    precision, recall, f1 = prf(*entity_counts(predicted, reference.entities), empty=1.0)
    return {
        "BLEU-1": bleu(response, reference.text, 1, language),
        "BLEU-2": bleu(response, reference.text, 2, language),
        "BLEU-4": bleu(response, reference.text, 4, language),
        "ROUGE-1": rouge_n(response, reference.text, 1, language),
        "ROUGE-2": rouge_n(response, reference.text, 2, language),
        "ROUGE-L": rouge_l(response, reference.text, language),
        "Distinct-1": distinct([response], 1, language),
        "Distinct-2": distinct([response], 2, language),
        "Entity-P": precision,
        "Entity-R": recall,
        "Entity-F1": f1,
    }


def _parse_acts(text: str) -> set[str]:
    acts = set()
    for item in _ITEM_SPLIT.split(text):
        item = item.strip().lower()
        if item in ACTS:
            acts.add(item)
        elif item in ACT_NAMES_ZH:
            acts.add(ACT_NAMES_ZH[item])
        elif item:
            acts.add(f"unknown:{item[:20]}")
    return acts


def _parse_ids(text: str, prefix: str) -> list[int]:
    ids: list[int] = []
    for match in re.finditer(rf"{prefix}\s*(\d{{1,4}})", text, re.IGNORECASE):
        number = int(match.group(1))
        if number not in ids:
            ids.append(number)
    return ids
