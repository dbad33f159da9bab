# mad: `make demo` runs the main job on embedded defaults, `make test` runs the tests.
# Both set up a virtual environment first (.venv), installing torch 2.13.0 before the rest.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Users with CUDA can point this at another torch 2.13.0 build, e.g. TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
OUT ?= out
PYTEST_ARGS ?=

.PHONY: install demo test test-all bench-zoo bench-dataset bench-ir clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	@command -v dot >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || echo "note: graphviz 'dot' not found; mad show falls back to matplotlib"; }
	touch $@

demo: install
	mkdir -p $(OUT)
	$(BIN)/mad convert bert -o $(OUT)/bert.json
	$(BIN)/mad info $(OUT)/bert.json
	$(BIN)/mad show $(OUT)/bert.json -o $(OUT)/bert.svg --depth 3
	$(BIN)/mad code $(OUT)/bert.json -o $(OUT)/bert_model.py
	$(BIN)/python examples/round_trip.py
	$(BIN)/mad dataset info default
	$(BIN)/python examples/dataset_tasks.py
	$(BIN)/python examples/build_and_train.py
	$(BIN)/python examples/ghn_predict.py
	$(BIN)/python examples/generate.py
	$(BIN)/python examples/search.py
	@echo "demo outputs in $(OUT)/"

test: install
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest -n 2 -q -m "" $(PYTEST_ARGS)

bench-zoo: install
	$(BIN)/python bench/code2graph_zoo.py

bench-dataset: install
	$(BIN)/python bench/dataset_build.py

bench-ir: install
	$(BIN)/python bench/ir_learning.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
