# Two commands do everything on a fresh machine:
#   make serve   - install what is missing, build, run the server (data in ./kitch-data)
#   make test    - install what is missing, build, lint, type-check and run the whole suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
                gstreamer1.0-plugins-bad chromium
PYTEST_ARGS ?=

.PHONY: setup serve test lint native web web-check clean

setup: $(VENV)/.installed native

$(VENV)/.installed: pyproject.toml setup.py
	@command -v ffmpeg >/dev/null && command -v gst-launch-1.0 >/dev/null && command -v chromium >/dev/null || \
	  { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(APT_PACKAGES); }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

native: $(VENV)/.installed
	$(BIN)/python setup.py -q build_ext --inplace

serve: setup
	$(BIN)/kitch serve $(ARGS)

lint: setup
	$(BIN)/ruff check kitch tests benchmarks
	$(BIN)/ruff format --check kitch tests benchmarks
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	KITCH_PUREPYTHON=1 $(BIN)/python -m pytest -q -m native $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) kitch/*.so kitch/*.c
