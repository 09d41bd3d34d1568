# The two set-up commands a newcomer needs are `make demo` and `make test`.
# Each creates .venv, installs what it needs (Debian packages too, when missing) and runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := xmlsec1 openssl prometheus postgresql softhsm2 haproxy chromium chromium-driver

.PHONY: test demo bench bench-evidence deps sysdeps benchdeps typecheck clean

test: deps
	$(BIN)/mypy
	$(BIN)/pytest

demo: deps
	$(BIN)/fedbus demo $(DEMO_ARGS)

deps: sysdeps $(STAMP)

# `make bench` also needs the load generator wrk (Debian package), installed only when missing.
bench: deps benchdeps
	$(BIN)/python bench/run.py
	$(BIN)/python bench/evidence.py --only

# Evidence at scale in full: verify speed, then record size, search on 10 M records and archiving 1 M (long: ~20 min).
bench-evidence: deps
	$(BIN)/python bench/evidence.py

benchdeps:
	@command -v wrk >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends wrk; }

# Debian packages the tests call as independent oracles (xmlsec1, openssl, prometheus's promtool) and the servers and devices they start (postgresql, softhsm2, haproxy); installed only when missing.
sysdeps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

typecheck: deps
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .hypothesis
