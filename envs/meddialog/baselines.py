"""Baseline doctors for MedDialog-v0 and MedConsult-v0.

- :class:`OracleDoctor` replays the policy that generated the reference dialogues, on the
  dialogue it reads (findings parsed from the text): in ``next_turn`` mode it matches the
  reference turn's entities and acts (its wording is one fixed template, so BLEU/ROUGE stay below
  a copy); in ``consult`` mode it asks, orders tests, asks about allergies and finishes with a
  diagnosis and a treatment that avoids the patient's contraindications. It is the reference
  (an upper bound), not a competitor.
- :class:`RetrievalDoctor` copies the doctor turn of the demonstration whose patient turn best
  matches the latest patient turn (character-bigram / word Jaccard) — MedRef's demo selector
  without a generator.
- :class:`CandidateCopyDoctor` is the candidate-list shortcut: it names the not-yet-mentioned
  entities that recur in the candidate triplets, in a templated question, with no medical
  reasoning. It measures how much the candidate list gives away about the reference turn.
- :class:`RandomDoctor` asks about random symptoms and ends with a random diagnosis and
  medicines (about chance: 1 in 12 diagnoses right).

Example:
    >>> import gymnasium as gym
    >>> import arenagym.envs.meddialog
    >>> env = gym.make("MedConsult-v0")
    >>> observation, info = env.reset(seed=3)
    >>> doctor = OracleDoctor()
    >>> doctor.reset(info["system_prompt"])
    >>> done = False
    >>> while not done:
    ...     observation, reward, terminated, truncated, info = env.step(doctor.act(observation))
    ...     done = terminated or truncated
    >>> info["stop_reason"], info["treatment_f1"], info["contraindicated"]
    ('solved', 1.0, [])
"""

from __future__ import annotations

import re

import numpy as np

from arenagym.envs.meddialog.dialogues import (
    Findings,
    Move,
    doctor_text,
    next_doctor_move,
    read_findings,
)
from arenagym.envs.meddialog.knowledge import load_knowledge_graph

__all__ = ["CandidateCopyDoctor", "OracleDoctor", "RandomDoctor", "RetrievalDoctor"]

_LINE = re.compile(r"^(患者|医生|Patient|Doctor)(?: \(reference\))?: (.*)$", re.MULTILINE)
_TRIPLET = re.compile(r"^T\d+ \((.*)\)$", re.MULTILINE)
_DEMO = re.compile(r"^D(\d+) (?:患者|Patient): (.*) \| (?:医生|Doctor): (.*)$", re.MULTILINE)
_HISTORY_QUESTION = {
    "zh": "你有没有药物过敏或其他病史？",
    "en": "Do you have any drug allergies or other medical conditions?",
}


def _language(system_prompt: str) -> str:
    return "en" if "in English" in system_prompt else "zh"


def _dialogue_turns(observation: str) -> list[tuple[str, str]]:
    turns = []
    for match in _LINE.finditer(observation.split("Candidate knowledge triplets:")[0]):
        speaker = "patient" if match.group(1) in ("患者", "Patient") else "doctor"
        turns.append((speaker, match.group(2)))
    return turns


class OracleDoctor:
    """The generator of the reference dialogues, run as an agent: a reference, not a competitor.

    It replays :func:`~arenagym.envs.meddialog.dialogues.next_doctor_move`, the policy that wrote
    every reference doctor turn, so on ``MedDialog-v0`` it reproduces the reference turn's
    entities and acts and on ``MedConsult-v0`` it solves nearly every case. Its scores are the
    upper bound of the benchmark (what a perfect model of the simulated doctor reaches), shown
    beside a leaderboard rather than ranked in it.
    """

    def __init__(self) -> None:
        self.kg = load_knowledge_graph()
        self.language = "zh"
        self.consult = False
        self.turns: list[tuple[str, str]] = []

    def reset(self, system_prompt: str) -> None:
        """Read the mode and language from the instructions; forget the last dialogue."""
        self.language = _language(system_prompt)
        self.consult = "DIAGNOSIS:" in system_prompt
        self.turns = []

    def act(self, observation: str) -> str:
        """The next doctor turn."""
        if self.consult:
            self.turns.append(("patient", observation))
        else:
            self.turns += _dialogue_turns(observation)
        findings = read_findings(self.kg, self.turns, self.language)
        move = next_doctor_move(self.kg, findings, self.language)
        if self.consult:
            text = self._consult_text(findings, move)
        else:
            text = doctor_text(self.kg, move, self.language, None, findings.diagnosis)
            entities = ", ".join(self.kg.name(e, self.language) for e in move.entities)
            text += f"\nENTITIES: {entities}\nACTS: {', '.join(move.acts)}"
        if self.consult:  # in next_turn mode the reference turn comes back in the observation
            self.turns.append(("doctor", text))
        return text

    def _consult_text(self, findings: Findings, move: Move) -> str:
        if "diagnosis" not in move.acts:
            if "test" in move.acts:
                return "REQUEST TEST: " + self.kg.name(move.entities[0], self.language)
            return doctor_text(self.kg, move, self.language, None)
        if not any(text == _HISTORY_QUESTION[self.language] for _, text in self.turns):
            return _HISTORY_QUESTION[self.language]
        disease = move.entities[0]
        factors = set()
        for factor, item in self.kg.patient_factors.items():
            if any(str(item[self.language]) in text for s, text in self.turns if s == "patient"):
                factors.add(factor)
        medicines = self.kg.gold_treatment(disease, factors)
        names = ", ".join(self.kg.name(m, self.language) for m in medicines)
        return f"DIAGNOSIS: {self.kg.name(disease, self.language)}\nTREATMENT: {names}"


def _similarity(a: str, b: str, language: str) -> float:
    if language == "zh":
        grams_a = {a[i : i + 2] for i in range(len(a) - 1)}
        grams_b = {b[i : i + 2] for i in range(len(b) - 1)}
    else:
        grams_a, grams_b = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    union = grams_a | grams_b
    return len(grams_a & grams_b) / len(union) if union else 0.0


class RetrievalDoctor:
    """Copy the best-matching demonstration's doctor turn (next_turn mode)."""

    def __init__(self) -> None:
        self.language = "zh"

    def reset(self, system_prompt: str) -> None:
        """Read the language from the instructions."""
        self.language = _language(system_prompt)

    def act(self, observation: str) -> str:
        """The doctor turn of the demo whose patient turn is most like the latest one."""
        turns = [t for s, t in _dialogue_turns(observation) if s == "patient"]
        latest = turns[-1] if turns else observation
        demos = _DEMO.findall(observation)
        if not demos:
            return "请再具体说说您的症状。" if self.language == "zh" else "Tell me more, please."
        best = max(demos, key=lambda d: (_similarity(latest, d[1], self.language), -int(d[0])))
        return f"{best[2]}\nDEMOS: D{best[0]}"


class CandidateCopyDoctor:
    """Name the entities that recur in the candidate triplets (next_turn mode).

    A shortcut, not a doctor: it counts in how many candidate triplets ``T1..Tn`` each entity
    appears (head or tail), drops the entities the dialogue has already mentioned, and names
    those seen in at least ``min_count`` triplets (at most ``max_entities``, most frequent first)
    in a fixed question template; when none qualifies it writes an entity-free acknowledgement.
    It never uses medical knowledge or the demonstrations. If the candidate list were drawn
    around the reference turn's entities, the recurring new entities would be the answer and
    this would beat reading the dialogue; with candidates retrieved from what the dialogue has
    mentioned so far (MedRef's retrieval step, as ``MedDialog-v0`` draws them) it must not.

    Args:
        min_count: how many triplets an entity must appear in to be named.
        max_entities: the most entities one turn names.
    """

    def __init__(self, min_count: int = 4, max_entities: int = 4) -> None:
        for name, value in (("min_count", min_count), ("max_entities", max_entities)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.kg = load_knowledge_graph()
        self.min_count, self.max_entities = min_count, max_entities
        self.language = "zh"
        self.mentioned: set[str] = set()

    def reset(self, system_prompt: str) -> None:
        """Read the language from the instructions; forget the last dialogue."""
        self.language = _language(system_prompt)
        self.mentioned = set()

    def act(self, observation: str) -> str:
        """A templated question naming the recurring candidate entities not yet mentioned."""
        for _, text in _dialogue_turns(observation):
            self.mentioned |= self.kg.extract(text, self.language)
        counts: dict[str, int] = {}
        for inner in _TRIPLET.findall(observation):
            # (head, relation, tail): count the two ends, not the relation's label
            for name in (inner.split(", ", 1)[0], inner.rsplit(", ", 1)[-1]):
                for entity in self.kg.extract(name, self.language) - self.mentioned:
                    counts[entity] = counts.get(entity, 0) + 1
        ranked = sorted(counts, key=lambda e: -counts[e])  # stable: ties keep first-seen order
        chosen = [e for e in ranked if counts[e] >= self.min_count][: self.max_entities]
        if not chosen:
            return "好的，我明白了。" if self.language == "zh" else "OK, I see."
        names = [self.kg.name(e, self.language) for e in chosen]
        if self.language == "zh":
            return f"关于{'、'.join(names)}，你的情况怎么样？"
        return f"What about {', '.join(names)} in your case?"


class RandomDoctor:
    """Random questions, then a random diagnosis and treatment.

    Args:
        seed: seeds the choices.
        finish_probability: the chance of finishing at each turn (consult mode).
    """

    def __init__(self, seed: int = 0, finish_probability: float = 0.25) -> None:
        self.kg = load_knowledge_graph()
        self.rng = np.random.default_rng(seed)
        self.finish_probability = finish_probability
        self.language = "zh"
        self.consult = False

    def reset(self, system_prompt: str) -> None:
        """Read the mode and language from the instructions."""
        self.language = _language(system_prompt)
        self.consult = "DIAGNOSIS:" in system_prompt

    def _random(self, category: str) -> str:
        ids = self.kg.by_category[category]
        return ids[int(self.rng.integers(len(ids)))]

    def act(self, observation: str) -> str:
        """A random question or (in consult mode, sometimes) a random final answer."""
        name = lambda e: self.kg.name(e, self.language)  # noqa: E731
        if self.consult and self.rng.random() < self.finish_probability:
            medicines = {self._random("medicine") for _ in range(2)}
            return (
                f"DIAGNOSIS: {name(self._random('disease'))}\n"
                f"TREATMENT: {', '.join(name(m) for m in sorted(medicines))}"
            )
        category = ["symptom", "test", "disease", "medicine"][int(self.rng.integers(4))]
        entity = self._random(category)
        acts = {"symptom": "inquire", "test": "test", "disease": "diagnosis"}
        move = Move((acts.get(category, "treatment"),), (entity,))
        return doctor_text(self.kg, move, self.language, self.rng, "gastritis")
