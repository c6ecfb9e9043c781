"""MedConsult-v0: an interactive consultation with a rule-based simulated patient.

After AgentClinic (interactive diagnosis against a patient simulator): the doctor (the agent)
questions a patient drawn from the bundled knowledge graph, orders tests, and must end with a
diagnosis and a treatment. The patient answers only what is asked.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.meddialog.dialogues import (
    Case,
    Patient,
    check_language_and_persona,
    sample_case,
)
from arenagym.envs.meddialog.knowledge import KnowledgeGraph, load_knowledge_graph
from arenagym.envs.meddialog.metrics import entity_counts, prf

_FINAL = re.compile(
    r"^\s*(DIAGNOSIS|TREATMENT|诊断|治疗)\s*[:：](.*)$", re.IGNORECASE | re.MULTILINE
)
_REQUEST = re.compile(r"^\s*REQUEST\s+TEST\s*[:：](.*)$", re.IGNORECASE | re.MULTILINE)


class MedConsultEnv(TextEnv):
    r"""Interview a simulated patient, order tests, then diagnose and treat (mode ``consult``).

    ## Description
    A case is drawn from the bundled gastro-intestinal knowledge graph (one of 12 diseases, its
    present symptoms, attribute values, patient factors such as a penicillin allergy, and the
    gold treatment those factors allow). The patient opens with a complaint and then answers
    only what the doctor asks: symptoms (matched by entity names and synonyms in either wording;
    absent ones are denied), the site, time course, nature and triggers of the complaint, allergies
    and conditions, and the results of tests the doctor orders. Personas: ``plain``, ``vague``
    (hedged answers) and ``distracting`` (adds irrelevant chatter).

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: a question in free text; ``REQUEST TEST:
    name`` lines to order tests; and, to finish, ``DIAGNOSIS: disease`` with ``TREATMENT:
    medicine, medicine`` (names in Chinese or English).

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the patient's words (test results are
    quoted), or the outcome at the end.

    ## Rewards
    Components: ``turn_cost`` (``-turn_cost`` every valid turn), ``elicited`` (``elicit_bonus``
    per newly elicited fact: a present symptom, an attribute value, an abnormal test result, a
    patient factor), and at the end ``diagnosis`` (+1 when correct), ``treatment``
    (``treatment_weight`` x F1 of the prescribed medicines against the gold treatment) and
    ``contraindication`` (``-contraindication_penalty`` per prescribed medicine that is
    contraindicated for this patient, disease or prescription). ``info`` at the end holds
    ``correct_diagnosis``, ``treatment_f1``, ``contraindicated``, ``disease`` and
    ``gold_treatment``.

    ## Starting State
    A case drawn from the reset seed; the observation is the patient's opening complaint.

    ## Episode End
    ``solved`` (correct diagnosis) or ``failed`` at the diagnosis; ``max_turns`` without one;
    ``invalid_action`` after more than ``max_invalid_actions`` empty or unreadable diagnoses.

    ## Arguments
    * ``language`` (``"zh"`` or ``"en"``), ``persona`` (``"plain"``).
    * ``turn_cost`` (0.02), ``elicit_bonus`` (0.02), ``treatment_weight`` (0.5),
      ``contraindication_penalty`` (0.5).
    * ``max_turns`` (20), ``max_invalid_actions`` (2), ``invalid_action_penalty`` (0.1),
      ``render_mode``.

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs.meddialog
    >>> env = gym.make("MedConsult-En-v0")
    >>> opening, info = env.reset(seed=1)
    >>> opening.startswith(("Hello doctor", "Hi doctor"))
    True
    >>> reply = env.step("Do you have any vomiting blood?")[0]
    >>> "vomiting blood" in reply
    True
    >>> _, reward, terminated, _, info = env.step("DIAGNOSIS: gastritis\nTREATMENT: omeprazole")
    >>> terminated, info["stop_reason"] in ("solved", "failed")
    (True, True)
    """

    def __init__(
        self,
        language: str = "zh",
        persona: str = "plain",
        turn_cost: float = 0.02,
        elicit_bonus: float = 0.02,
        treatment_weight: float = 0.5,
        contraindication_penalty: float = 0.5,
        max_turns: int = 20,
        max_invalid_actions: int = 2,
        invalid_action_penalty: float = 0.1,
        render_mode: str | None = None,
    ) -> None:
        check_language_and_persona(language, persona)
        for name, value in {
            "turn_cost": turn_cost,
            "elicit_bonus": elicit_bonus,
            "treatment_weight": treatment_weight,
            "contraindication_penalty": contraindication_penalty,
        }.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.language, self.persona = language, persona
        self.turn_cost, self.elicit_bonus = float(turn_cost), float(elicit_bonus)
        self.treatment_weight = float(treatment_weight)
        self.contraindication_penalty = float(contraindication_penalty)
        self.kg: KnowledgeGraph = load_knowledge_graph()
        super().__init__(
            max_turns=max_turns,
            invalid_action_penalty=invalid_action_penalty,
            max_invalid_actions=max_invalid_actions,
            render_mode=render_mode,
        )
        self.case: Case | None = None
        self._patient: Patient | None = None
        self._elicited: set[str] = set()

    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        rng = self.np_random
        self.case = sample_case(self.kg, rng, self.language)
        wording = np.random.default_rng(int(rng.integers(2**32)))
        self._patient = Patient(self.kg, self.case, self.persona, wording)
        opening = self._patient.opening()
        self._elicited = set(opening.entities)
        number = int(rng.integers(10**9))
        return Episode(
            task_id=f"medconsult/{self.language}/{self.case.disease}/{number:09d}",
            system_prompt=self._system_prompt(),
            prompt=opening.text,
            info={"language": self.language, "persona": self.persona},
        )

    def _system_prompt(self) -> str:
        language = "Chinese" if self.language == "zh" else "English"
        diseases = ", ".join(self.kg.name(d, self.language) for d in self.kg.by_category["disease"])
        tests = ", ".join(self.kg.name(t, self.language) for t in self.kg.by_category["test"])
        return (
            f"You are a gastroenterologist consulting a patient in {language}. Ask one or a few "
            "questions per turn (symptoms, where it hurts, how long, what it feels like, what "
            "brings it on, allergies and other conditions). Order a test with a line "
            "'REQUEST TEST: <name>'. When you are ready, finish with two lines:\n"
            "DIAGNOSIS: <one disease>\nTREATMENT: <medicines, comma-separated>\n"
            f"Possible diseases: {diseases}.\nAvailable tests: {tests}.\n"
            "Each turn costs a little; a correct diagnosis earns 1, the right medicines more, "
            "and a medicine the patient must not take is penalised."
        )

    def _respond(self, action: str) -> Turn | InvalidAction:
        assert self.case is not None and self._patient is not None
        finals = {m.group(1).upper(): m.group(2) for m in _FINAL.finditer(action)}
        if finals:
            return self._finish(finals)
        question = action
        notes = []
        for match in _REQUEST.finditer(action):
            tests = self._find(match.group(1), "test")
            if not tests:
                available = ", ".join(
                    self.kg.name(t, self.language) for t in self.kg.by_category["test"]
                )
                notes.append(
                    f"Unknown test {match.group(1).strip()[:40]!r}; available: {available}."
                )
            question += "\n" + " ".join(self.kg.name(t, self.language) for t in tests)
        reply = self._patient.reply(question)
        new = self._new_facts(reply.text, question)
        components = {"turn_cost": -self.turn_cost, "elicited": self.elicit_bonus * len(new)}
        observation = reply.text + ("\n" + "\n".join(notes) if notes else "")
        if self.is_last_turn:
            observation += "\nThe consultation ran out of turns without a diagnosis."
        return Turn(observation, components, info={"new_facts": sorted(new)})

    def _find(self, text: str, category: str) -> list[str]:
        found = self.kg.extract(text, "zh") | self.kg.extract(text, "en")
        order = self.kg.by_category[category]
        return [e for e in order if e in found]

    def _new_facts(self, reply: str, question: str) -> set[str]:
        assert self.case is not None
        asked = self.kg.extract(question, self.language)
        facts = set()
        for entity in asked:
            category = self.kg.category(entity)
            if (
                (category == "symptom" and entity in self.case.present)
                or category == "attribute"
                or (
                    category == "test"
                    and self.case.disease in self.kg.test_findings
                    and (entity in self.kg.test_findings[self.case.disease])
                )
            ):
                facts.add(entity)
        for factor in self.case.factors:
            if self.kg.name(factor, self.language) in reply:
                facts.add(f"factor:{factor}")
        new = facts - self._elicited
        self._elicited |= new
        return new

    def _finish(self, finals: dict[str, str]) -> Turn | InvalidAction:
        assert self.case is not None
        diagnosis_text = finals.get("DIAGNOSIS", finals.get("诊断"))
        if diagnosis_text is None:
            return InvalidAction(
                "a TREATMENT line needs a DIAGNOSIS line too: 'DIAGNOSIS: <one disease>'"
            )
        diseases = self._find(diagnosis_text, "disease")
        if len(diseases) != 1:
            what = "no known disease" if not diseases else "several diseases"
            return InvalidAction(
                f"the DIAGNOSIS line names {what}; name exactly one disease from the list in "
                "the instructions"
            )
        medicines = self._find(finals.get("TREATMENT", finals.get("治疗", "")), "medicine")
        correct = diseases[0] == self.case.disease
        _, _, treatment_f1 = prf(*entity_counts(medicines, self.case.treatment))
        contraindicated = self.kg.contraindicated_in(
            medicines, self.case.disease, self.case.factors
        )
        components = {
            "turn_cost": -self.turn_cost,
            "diagnosis": float(correct),
            "treatment": self.treatment_weight * treatment_f1,
            "contraindication": -self.contraindication_penalty * len(contraindicated),
        }
        gold = self.kg.name(self.case.disease, self.language)
        observation = (
            f"Diagnosis {'correct' if correct else 'incorrect'} (the patient had {gold}). "
            f"Treatment F1 {treatment_f1:.2f}"
            + (f"; contraindicated: {', '.join(contraindicated)}" if contraindicated else "")
            + "."
        )
        info = {
            "correct_diagnosis": correct,
            "treatment_f1": treatment_f1,
            "contraindicated": contraindicated,
            "disease": self.case.disease,
            "gold_treatment": list(self.case.treatment),
            "prescribed": medicines,
        }
        return Turn(observation, components, True, "solved" if correct else "failed", info)
