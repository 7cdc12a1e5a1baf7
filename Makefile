# River Lifeguard: build, lint and test everything from a fresh machine.
#
#   make test       installs and builds what it needs, then runs every test
#   make demo       the main job on the embedded local environment
#
# Go tools are built once into $(LIFEGUARD_CACHE)/tools/<tool>-<version>-<go>/, the real node's
# images once into $(LIFEGUARD_CACHE)/images/ (tools/images.sh).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LIFEGUARD_CACHE ?= $(HOME)/.cache/river-lifeguard
export GOTOOLCHAIN := local
export GOWORK := off
export GOFLAGS := -mod=mod

# Runs pytest and turns "no tests collected" (exit 5) into a failure:
# a green run must have run something.
define pytest
	@set +e; $(PY) -m pytest $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc
endef

.PHONY: all test test-unit test-services lint venv tools node-packages node-tools images postgres crds check-crds chart-crds image-lock devenv devenv-down demo bench bench-doc clean

all: test

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# PostgreSQL from Debian's packages, installed only when missing.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing PostgreSQL from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL is missing: run 'sudo apt-get install postgresql'" >&2; exit 1; fi

tools:
	@tools/build.sh >/dev/null

# The real node (tests/devenv/realnode.py) needs Debian's buildah and debootstrap (images),
# libseccomp-dev (runc's seccomp support) and iproute2 (its pod bridge); installed once as root.
NODE_PACKAGES := buildah debootstrap libseccomp-dev iproute2
node-packages:
	@missing=$$(for p in $(NODE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing $$missing from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing packages: run 'sudo apt-get install $$missing'" >&2; exit 1; fi

# kubelet, containerd (+ ctr and the runc shim), runc and the CNI plugins of the real node.
node-tools: node-packages
	@tools/build.sh kubelet containerd runc cni >/dev/null

# The real node's images (base, operator, worker, pause), built with buildah.
images: node-packages
	@tools/images.sh >/dev/null

lint: venv
	$(VENV)/bin/ruff check operator tests bench demo
	$(VENV)/bin/ruff format --check operator tests bench demo
	$(VENV)/bin/mypy operator/lifeguard
	$(VENV)/bin/mypy tests/devenv bench demo
	$(VENV)/bin/lint-imports

test-unit: venv
	$(call pytest,tests/unit)

# Everything: lint, unit, then integration and end-to-end tests on the real
# PostgreSQL, River and Kubernetes control plane started by tests/devenv.
test: venv postgres tools node-tools images lint
	$(call pytest,tests)

# The JobPolicy CRD and the reference in docs/jobpolicy.md are generated from lifeguard.model.
crds: venv
	$(PY) -m lifeguard.model.crd > crds/lifeguard.dev_jobpolicies.yaml
	$(PY) -m lifeguard.model.reference docs/jobpolicy.md
	$(MAKE) --no-print-directory chart-crds

# The Helm chart ships a copy of the CRD (charts/river-lifeguard/crds/); `make crds` refreshes it.
chart-crds:
	cp crds/lifeguard.dev_jobpolicies.yaml charts/river-lifeguard/crds/

# Re-pins the image's Python dependencies (docker/*.lock) from pyproject.toml.
image-lock: venv
	$(PY) docker/lock_requirements.py

# Fails when the committed CRD or reference differs from a fresh generation.
check-crds: venv
	$(call pytest,tests/unit/test_model_generated.py)

# REAL_NODE=1 also starts the real node (kubelet, containerd, runc; its tools and images are
# built on the first run).
devenv: venv postgres tools $(if $(REAL_NODE),node-tools images)
	PYTHONPATH=tests $(PY) -m devenv up --state-dir $(or $(STATE_DIR),build/devenv) $(if $(REAL_NODE),--real-node)

devenv-down: venv
	PYTHONPATH=tests $(PY) -m devenv down --state-dir $(or $(STATE_DIR),build/devenv)

# Lifeguard's main job on the local environment, with the real node (the operator installed by
# Helm from its image, an OOM kill read from the real kubelet), in about 3 minutes once the tools
# and images are cached (demo/); a first run builds them and says so as it goes. KEEP=1 leaves
# the environment running and says how to use it.
demo: venv postgres tools node-packages
	PYTHONPATH=tests:. $(PY) -m demo $(if $(KEEP),--keep)

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache

# Detection, cost and scale figures on the real local environment (never part of `make test`):
# build/bench/results.json and results.md. Sizes: BENCH_* variables (bench/config.py).
bench: venv postgres tools node-tools images
	PYTHONPATH=tests:. $(PY) -m bench --out build/bench

# docs/performance.md from build/bench/results.json (after `make bench`).
bench-doc: venv
	PYTHONPATH=tests:. $(PY) -m bench.doc build/bench/results.json docs/performance.md
