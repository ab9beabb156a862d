# π-DOC Explorer. `make serve` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# loopback only; `make serve ADDRESS=...` on the command line overrides it on purpose
ADDRESS = 127.0.0.1
PORT   ?= 5006

.PHONY: serve test bench install install-test clean-venv

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "π-DOC Explorer needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip setuptools wheel

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

serve: $(VENV)/.installed
	$(VENV)/bin/pidoc prepare
	$(VENV)/bin/panel serve app/dashboard.py --address $(ADDRESS) --port $(PORT) \
		--websocket-max-message-size 75000000 \
		--allow-websocket-origin=$(ADDRESS):$(PORT) --allow-websocket-origin=localhost:$(PORT)

test: $(VENV)/.installed-test
	$(PY) -m pytest

# every benchmark, each in its own process -> benchmarks/RESULTS.md (~15 min; not part of `make test`)
bench: $(VENV)/.installed-test
	$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
