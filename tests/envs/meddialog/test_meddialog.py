"""MedDialog-v0 / MedConsult-v0: metrics against hand-computed values, the knowledge graph, the
patient, the baselines, the loader and the env contract."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import arenagym.envs.meddialog
from arenagym.envs.meddialog.baselines import (
    CandidateCopyDoctor,
    OracleDoctor,
    RandomDoctor,
    RetrievalDoctor,
)
from arenagym.envs.meddialog.dialogues import (
    PERSONAS,
    Findings,
    Patient,
    Utterance,
    generate_dialogue,
    read_patient_turn,
    sample_case,
)
from arenagym.envs.meddialog.env import MedDialogEnv, TurnTask
from arenagym.envs.meddialog.knowledge import KnowledgeGraphError, Triplet, load_knowledge_graph
from arenagym.envs.meddialog.loader import DialogueFormatError, load_dialogues, response_pairs
from arenagym.envs.meddialog.metrics import bleu, distinct, evaluate, prf, rouge_l, rouge_n

KG = load_knowledge_graph()
IDS = ["MedDialog-v0", "MedDialog-En-v0", "MedConsult-v0", "MedConsult-En-v0"]


# ----------------------------------------------------------------------------- metrics
def test_bleu_matches_hand_computed_nltk_method7_values() -> None:
    # every n-gram of the hypothesis is in the reference, so p1..p5 = 1 and method5 turns p1 into
    # (p1 + 1 + p1 + p2) / 3 = 4/3; the brevity penalty is exp(1 - ref_len / hyp_len)
    assert bleu("头痛多久了", "头痛多久了呢", n=1) == pytest.approx(4 / 3 * math.exp(1 - 6 / 5))
    assert bleu("how long has it been", "how long has it been going on", n=1, language="en") == (
        pytest.approx(4 / 3 * math.exp(1 - 7 / 5))
    )
    # BLEU-2: p2' = (p1' + p2 + p3) / 3 = 10/9; geometric mean with p1' = 4/3
    assert bleu("头痛多久了", "头痛多久了", n=2) == pytest.approx(math.sqrt(4 / 3 * 10 / 9))
    assert bleu("好", "好的", n=2) == 0.0  # hypotheses under 2 tokens score 0
    assert bleu("完全不同", "毫无关系", n=2) == 0.0


def test_rouge_is_character_level_and_set_based_like_the_rouge_package() -> None:
    # 胃痛多久了？ vs 胃疼有多久了？: 6 and 7 distinct characters, 5 shared
    assert rouge_n("胃痛多久了？", "胃疼有多久了？", 1) == pytest.approx(
        2 * (5 / 6) * (5 / 7) / (5 / 6 + 5 / 7)
    )
    # bigrams: hyp {胃痛,痛多,多久,久了,了？} ref {胃疼,疼有,有多,多久,久了,了？}: 3 shared
    assert rouge_n("胃痛多久了？", "胃疼有多久了？", 2) == pytest.approx(2 * 0.6 * 0.5 / 1.1)
    assert rouge_l("abcd", "acbd") == pytest.approx(0.75)  # LCS 3 of 4 distinct tokens each side
    assert rouge_n("aaab", "ab", 1) == 1.0  # distinct n-grams: repetition is not counted
    assert rouge_n("how long", "how long ago", 1, "en") == pytest.approx(0.8)  # P 1, R 2/3
    assert rouge_l("", "abc") == 0.0


def test_distinct_and_entity_prf_hand_computed() -> None:
    assert distinct(["aab", "ab"], 1) == 0.4  # {a, b} over 5 characters
    assert distinct(["aab", "ab"], 2) == pytest.approx(0.6667)  # {aa, ab} over 3 bigrams
    assert distinct(["a dog", "a cat"], 1, "en") == 0.75
    assert prf(1, 2, 4) == pytest.approx((0.5, 0.25, 1 / 3))
    assert prf(0, 0, 0, empty=1.0) == (1.0, 1.0, 1.0)


def test_evaluate_micro_entities_zh_and_en() -> None:
    zh = evaluate(
        ["有没有腹泻和呕吐？", "建议做个胃镜检查。"], ["有没有腹泻？", "先去查一下肠镜吧。"]
    )
    # predicted {diarrhea, vomiting} + {gastroscopy}; gold {diarrhea} + {colonoscopy}: 1 of 3, 1 of 2
    assert (zh["Entity-P"], zh["Entity-R"], zh["Entity-F1"]) == (0.3333, 0.5, 0.4)
    en = evaluate(["Any heartburn?"], ["Do you have any heartburn or nausea?"], language="en")
    assert (en["Entity-P"], en["Entity-R"]) == (1.0, 0.5)
    assert en["ROUGE-1"] == pytest.approx(round(2 * 1 * (3 / 8) / (1 + 3 / 8), 4))
    with pytest.raises(ValueError, match="one reference per response"):
        evaluate(["a"], [])


# ---------------------------------------------------------------------- knowledge graph
def test_knowledge_graph_sizes_sources_and_medical_facts() -> None:
    sizes = {c: len(ids) for c, ids in KG.by_category.items()}
    assert sizes == {"disease": 12, "symptom": 40, "attribute": 4, "test": 15, "medicine": 30}
    assert all(note.strip() for note in KG.sources.values())
    assert KG.gold_treatment("appendicitis", {"penicillin_allergy"}) == (
        "levofloxacin",
        "metronidazole",
    )
    assert KG.contraindicated_in(["domperidone", "clarithromycin"], None, ()) == [
        "clarithromycin",
        "domperidone",
    ]
    assert KG.contraindicated_in(["ursodiol"], "cholecystitis", ()) == ["ursodiol"]
    for disease in KG.by_category["disease"]:
        for factor in KG.patient_factors:
            gold = KG.gold_treatment(disease, {factor})
            assert gold and not KG.contraindicated_in(gold, disease, {factor})


def test_every_pair_of_diseases_is_told_apart_by_a_defining_symptom_or_a_test() -> None:
    diseases = KG.by_category["disease"]
    for i, a in enumerate(diseases):
        for b in diseases[i + 1 :]:
            symptom = any(
                {KG.symptoms_of(a).get(s, 0), KG.symptoms_of(b).get(s, 0)} == {0, 1.0}
                for s in KG.by_category["symptom"]
            )
            test = any(
                KG.test_result(a, t, "en") != KG.test_result(b, t, "en")
                for t in KG.by_category["test"]
            )
            assert symptom or test, (a, b)


def test_extraction_prefers_the_longest_name() -> None:
    assert KG.extract("急性胃肠炎", "zh") == {"gastroenteritis"}
    assert KG.extract("溃疡性结肠炎", "zh") == {"colitis"}
    assert KG.extract("Acute gastroenteritis, not enteritis", "en") == {
        "gastroenteritis",
        "enteritis",
    }
    assert KG.extract("pain relieved by a bowel movement", "en") == {"relief_after_defecation"}


def test_bad_knowledge_graph_files_name_the_file_and_field(tmp_path: Path) -> None:
    data = json.loads(Path(KG_PATH).read_text(encoding="utf-8"))
    data["relations"]["has_symptom"]["facts"][3] = ["gastritis", "no_such_symptom", 0.5]
    bad = tmp_path / "kg.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(
        KnowledgeGraphError, match=r"kg.json: field relations.has_symptom.facts\[3\]"
    ):
        load_knowledge_graph(bad)
    del data["relations"]["precaution"]["source"]
    bad.write_text("{\n  oops", encoding="utf-8")
    with pytest.raises(KnowledgeGraphError, match="line 2"):
        load_knowledge_graph(bad)


KG_PATH = Path(arenagym.envs.meddialog.__file__).parent / "data" / "knowledge_graph.json"


# ---------------------------------------------------------------------------- dialogues
@pytest.mark.parametrize("language", ["zh", "en"])
def test_doctor_turn_tags_are_exactly_the_entities_in_the_text(language: str) -> None:
    acts_seen = set()
    for seed in range(60):
        rng = np.random.default_rng(seed)
        case = sample_case(KG, rng, language)
        dialogue = generate_dialogue(KG, case, rng, PERSONAS[seed % 3])
        diagnosis = [u.entities for u in dialogue if "diagnosis" in u.acts]
        assert diagnosis == [(case.disease,)]
        for turn in dialogue:
            assert set(turn.entities) >= KG.extract(turn.text, language)
            if turn.speaker == "doctor":
                assert set(turn.entities) == KG.extract(turn.text, language)
                acts_seen |= set(turn.acts)
                if "treatment" in turn.acts:
                    assert set(turn.entities) == set(case.treatment)
    assert acts_seen == {"inquire", "test", "diagnosis", "treatment", "precaution", "chitchat"}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    asked=st.lists(st.sampled_from(sorted(KG.entities)), max_size=4),
    language=st.sampled_from(["zh", "en"]),
    persona=st.sampled_from(PERSONAS),
)
def test_patient_never_reveals_an_unasked_fact(
    seed: int, asked: list[str], language: str, persona: str
) -> None:
    rng = np.random.default_rng(seed)
    case = sample_case(KG, rng, language)
    patient = Patient(KG, case, persona, rng)
    question = " ".join(KG.name(e, language) for e in asked)
    reply = patient.reply(question)
    revealed = KG.extract(reply.text, language)
    result_entities = set()
    for test in (e for e in asked if KG.category(e) == "test"):
        result_entities |= KG.extract(KG.test_result(case.disease, test, language), language)
    assert revealed <= set(asked) | result_entities
    findings = Findings()
    read_patient_turn(KG, findings, reply.text, language, set(asked))
    symptoms = {e for e in asked if KG.category(e) == "symptom"}
    assert findings.present == symptoms & set(case.present)  # confirmed exactly when present
    assert findings.absent == symptoms - set(case.present)  # absent ones are denied


def _play(env_id: str, agent: object, seed: int, **kwargs: object) -> tuple[float, dict]:
    env = gym.make(env_id, **kwargs)
    observation, info = env.reset(seed=seed)
    agent.reset(info["system_prompt"])  # type: ignore[attr-defined]
    total, done = 0.0, False
    while not done:
        observation, reward, terminated, truncated, info = env.step(agent.act(observation))  # type: ignore[attr-defined]
        total += reward
        done = terminated or truncated
    env.close()
    return total, info


@pytest.mark.parametrize("env_id", ["MedConsult-v0", "MedConsult-En-v0"])
def test_oracle_doctor_solves_consults_and_random_is_near_chance(env_id: str) -> None:
    n = 60
    oracle = [_play(env_id, OracleDoctor(), s, persona=PERSONAS[s % 3])[1] for s in range(n)]
    assert sum(i["stop_reason"] == "solved" for i in oracle) >= 0.95 * n
    assert all(not i["contraindicated"] for i in oracle)
    randoms = [_play(env_id, RandomDoctor(seed=s), s)[1] for s in range(n)]
    solved = sum(i.get("stop_reason") == "solved" for i in randoms)
    assert solved <= 0.25 * n  # chance is 1/12 (5 of 60); 15 is far above it


@pytest.mark.parametrize("env_id", ["MedDialog-v0", "MedDialog-En-v0"])
def test_reference_turns_score_entity_f1_one_and_oracle_triplets_are_exact(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=7)
    inner = env.unwrapped
    done = False
    while not done:
        task = inner._tasks[inner._index]
        kept = ", ".join(f"T{k}" for k in sorted(task.relevant_triplets))
        demos = ", ".join(f"D{k}" for k in sorted(task.relevant_demos))
        action = f"{task.reference.text}\nTRIPLETS: {kept}\nDEMOS: {demos}\nACTS: {', '.join(task.reference.acts)}"
        _, _, terminated, truncated, info = env.step(action)
        assert info["meddg"]["Entity-F1"] == 1.0 and info["act_f1"] == 1.0
        assert info["triplet_precision"] == info["triplet_recall"] == 1.0
        assert info["demo_hit"] == (1.0 if task.relevant_demos else 0.0)
        assert info["meddg"]["ROUGE-L"] == 1.0
        done = terminated or truncated
    assert info["stop_reason"] == "completed"


def test_next_turn_baselines_rank_oracle_over_retrieval_over_random() -> None:
    scores = {
        name: np.mean([_play("MedDialog-v0", agent(), s)[0] for s in range(8)])
        for name, agent in (
            ("oracle", OracleDoctor),
            ("retrieval", RetrievalDoctor),
            ("random", RandomDoctor),
        )
    }
    assert scores["oracle"] > 0.85 > scores["retrieval"] > 0.25 > 0.1 > scores["random"]


def _history_neighbourhood(history: set[str]) -> set[Triplet]:
    """What the env may retrieve for a history (see ``MedDialogEnv._candidate_triplets``)."""
    clinical = {e for e in history if KG.category(e) != "attribute"}
    diseases = set(KG.by_category["disease"])
    linked = diseases & clinical
    for t in KG.neighbourhood(clinical):
        linked |= {t.head, t.tail} & diseases
    return {t for t in KG.triplets() if {t.head, t.tail} & (history | linked)}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_candidate_triplets_come_from_the_history_never_the_reference_turn(language: str) -> None:
    inner = MedDialogEnv(language=language)
    inner.reset(seed=11)
    dialogue = inner._dialogue
    history: set[str] = set()
    for index, task in zip(range(1, len(dialogue), 2), inner._tasks, strict=True):
        history |= set(dialogue[index - 1].entities)
        retrieved = set(task.triplets) & _history_neighbourhood(history)
        assert len(task.triplets) == inner.n_triplets
        assert len(retrieved) >= inner.n_triplets - inner.n_triplets // 4
        history |= set(dialogue[index].entities)
    # the same history and random state with another reference turn: the same candidates
    task = inner._tasks[2]
    other = dataclasses.replace(task.reference, entities=tuple(KG.by_category["medicine"][:3]))
    shown = [
        inner._task(np.random.default_rng(5), task.patient, reference, history, [])
        for reference in (task.reference, other)
    ]
    assert shown[0].triplets == shown[1].triplets


class _ReferenceLeakingEnv(MedDialogEnv):
    """Candidates built around the reference turn, as the env once did: half of the slots go to
    triplets that touch the reference turn's entities, the rest to random ones that do not.
    Only here to show that the entity-F1 check below would catch such a leak."""

    def _task(
        self, rng: np.random.Generator, patient: str, reference: Utterance, history: set[str],
        pool: list[tuple[str, Utterance]],
    ) -> TurnTask:  # fmt: skip
        task = super()._task(rng, patient, reference, history, pool)
        gold = set(reference.entities)
        touching = self.kg.neighbourhood(gold)[: self.n_triplets // 2]
        everything = self.kg.triplets()
        order = np.random.default_rng(len(history)).permutation(len(everything))
        rest = [everything[i] for i in order if not {everything[i].head, everything[i].tail} & gold]
        return dataclasses.replace(task, triplets=tuple(touching + rest)[: self.n_triplets])


def _entity_f1(env: MedDialogEnv, make_agent: type, seeds: range) -> float:
    """Mean over dialogues of the mean turn entity F1 of an agent."""
    means = []
    for seed in seeds:
        observation, info = env.reset(seed=seed)
        agent = make_agent()
        agent.reset(info["system_prompt"])
        turns, done = [], False
        while not done:
            observation, _, terminated, truncated, info = env.step(agent.act(observation))
            turns.append(info["meddg"]["Entity-F1"])
            done = terminated or truncated
        means.append(float(np.mean(turns)))
    return float(np.mean(means))


@pytest.mark.parametrize("language", ["zh", "en"])
def test_copying_recurring_candidate_entities_does_not_beat_retrieval(language: str) -> None:
    # seeds 0-29, entity F1: zh retrieval 0.51, copy 0.25 (0.64 on reference-built candidates);
    # en retrieval 0.50, copy 0.26 (0.64)
    seeds = range(30)
    retrieval = _entity_f1(MedDialogEnv(language=language), RetrievalDoctor, seeds)
    copy = _entity_f1(MedDialogEnv(language=language), CandidateCopyDoctor, seeds)
    assert copy < retrieval - 0.1
    leaking = _entity_f1(_ReferenceLeakingEnv(language=language), CandidateCopyDoctor, seeds)
    assert leaking > retrieval + 0.1  # the check has teeth: a leaking list is exploited


# ------------------------------------------------------------------------ env contract
@pytest.mark.parametrize("env_id", IDS)
def test_check_env_and_seeded_determinism(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert not [w for w in caught if not issubclass(w.category, (DeprecationWarning, ResourceWarning))]
    first = env.reset(seed=5)
    step_one = env.step("有没有腹泻？ How long?")
    again = env.reset(seed=5)
    assert json.dumps(first, default=str) == json.dumps(again, default=str)
    assert json.dumps(env.step("有没有腹泻？ How long?"), default=str) == json.dumps(
        step_one, default=str
    )
    assert env.reset(seed=6)[0] != first[0] or env.reset(seed=8)[0] != first[0]
    env.close()
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_garbage_actions_never_raise(env_id: str) -> None:
    env = gym.make(env_id, max_invalid_actions=3, max_turns=4)
    env.action_space.seed(0)
    env.reset(seed=0)
    garbage = [
        "",
        "  \n",
        None,
        12,
        b"x",
        "x" * 70_000,
        "DIAGNOSIS:",
        "TREATMENT: x",
        "REQUEST TEST: ???",
        "ENTITIES: T99\nACTS: dance",
        "🙂" * 500,
        "DIAGNOSIS: 胃炎 肠炎",
    ]
    for index in range(80):
        action = garbage[index % len(garbage)] if index % 2 else env.action_space.sample()
        observation, reward, terminated, truncated, info = env.step(action)
        assert isinstance(observation, str) and math.isfinite(reward)
        assert math.isclose(sum(info["reward_components"].values()), reward, abs_tol=1e-9)
        if info.get("invalid_action"):
            assert observation.startswith("Invalid action:")
        if terminated or truncated:
            assert info["stop_reason"]
            env.reset()
    env.close()


# -------------------------------------------------------------------------------- loader
def test_loader_reads_meddg_json_and_jsonl_and_names_bad_fields(tmp_path: Path) -> None:
    dialogue = [
        {
            "id": "Patients",
            "Sentence": "胃疼两天了",
            "Symptom": ["胃痛"],
            "Medicine": [],
            "Test": [],
            "Attribute": ["时长"],
            "Disease": [],
        },
        {
            "id": "Doctor",
            "Sentence": "建议做个胃镜",
            "Symptom": [],
            "Medicine": [],
            "Test": ["胃镜"],
            "Attribute": [],
            "Disease": [],
        },
    ]
    good = tmp_path / "meddg.jsonl"
    good.write_text(json.dumps(dialogue, ensure_ascii=False) + "\n", encoding="utf-8")
    pairs = response_pairs(load_dialogues(good))
    assert [(h[-1].text, r.text, r.entities) for h, r in pairs] == [
        ("胃疼两天了", "建议做个胃镜", ("胃镜",))
    ]
    bad = tmp_path / "bad.json"
    dialogue[1]["Test"] = "胃镜"
    bad.write_text(json.dumps([dialogue, dialogue], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DialogueFormatError, match=r"bad.json: dialogue 0, turn 1: field 'Test'"):
        load_dialogues(bad)
    with pytest.raises(DialogueFormatError, match="pickles are not loaded"):
        load_dialogues(tmp_path / "test.pk")
    broken = tmp_path / "broken.jsonl"
    broken.write_text("[]\n", encoding="utf-8")
    with pytest.raises(DialogueFormatError, match=r"broken\.jsonl: line 1: dialogue 0: must be"):
        load_dialogues(broken)
    broken.write_text('[{"id": "Doctor", "Sentence": "x"}]\n{', encoding="utf-8")
    with pytest.raises(DialogueFormatError, match=r"broken\.jsonl: line 2: not valid JSON"):
        load_dialogues(broken)
    broken.write_text('[{"id": "Doctor", "Sentence": "x"}]\n' + "[" * 100_000, encoding="utf-8")
    with pytest.raises(DialogueFormatError, match=r"broken\.jsonl: line 2: the JSON is nested too"):
        load_dialogues(broken)


def test_suite_manifest_loads() -> None:
    from arenagym.benchmarks.suite import load_suite

    suite = load_suite(Path(__file__).parents[3] / "benchmarks" / "suites" / "meddialog.toml")
    assert {t.env for t in suite.tasks} == {"MedDialog-v0", "MedDialog-En-v0", "MedConsult-v0"}
