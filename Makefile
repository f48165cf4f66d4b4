# Two commands do everything on a fresh machine:
#   make serve   - install what is missing, build, run the server (data in ./kitch-data)
#   make test    - install what is missing, build, lint, type-check and run the whole suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Only the tests need these: real clients (ffmpeg, GStreamer's librtmp sink), the browser,
# openssl for RTMPS certificates, nginx/wrk as benchmark baselines, redis-server for the
# fan-out between nodes. The server needs none (a cluster points --redis at its own Redis).
TEST_APT_PACKAGES := ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base \
                     gstreamer1.0-plugins-good gstreamer1.0-plugins-bad chromium openssl \
                     nginx libnginx-mod-rtmp wrk redis-server
# The database tests run on PostgreSQL too: the suite starts its own server from these
# programs (initdb, pg_ctl; not on PATH in Debian's package).
TEST_APT_PACKAGES += postgresql
TEST_COMMANDS := ffmpeg gst-launch-1.0 chromium openssl nginx wrk redis-server
PYTEST_ARGS ?=

.PHONY: setup test-deps serve test lint native clean

setup: $(VENV)/.installed native

$(VENV)/.installed: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[build,test]'
	touch $@

native: $(VENV)/.installed
	$(BIN)/python setup.py -q build_ext --inplace

test-deps:
	@missing=; for c in $(TEST_COMMANDS); do command -v $$c >/dev/null || missing=1; done; \
	[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing=1; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(TEST_APT_PACKAGES); \
	fi

serve: setup
	$(BIN)/kitch serve $(ARGS)

lint: setup
	$(BIN)/ruff check kitch tests benchmarks
	$(BIN)/ruff format --check kitch tests benchmarks
	$(BIN)/mypy

test: test-deps setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	KITCH_PUREPYTHON=1 $(BIN)/python -m pytest -q -m native $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) kitch/*.so kitch/*.c
