# One command sets everything up and runs the product; one sets up and runs the tests.
# Both expect ../shared (models and sample footage) beside this checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared)
export SMARTFOCUS_MODEL ?= $(SHARED)/models/yolov8n-seg-int8dq.pt
export SMARTFOCUS_SAM_DIR ?= $(SHARED)/models/mobilesam
STAMP := $(VENV)/.installed

.PHONY: setup run test test-quick lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

HOST ?= 127.0.0.1
PORT ?= 8000

# The web app: open the printed URL, drop a video (e.g. ../shared/samples/sam2_01_dog.mp4) on it.
run: $(STAMP)
	$(BIN)/smartfocus serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

# The daily loop: everything but the dozen longest real-footage runs (`slow`); `make test` runs all.
test-quick: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/io.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/composite.py
	$(BIN)/python bench/davis.py
	$(BIN)/python bench/server.py
	$(BIN)/python bench/live.py

clean:
	rm -rf $(VENV) out
