# Kascade developer tasks. `make help` lists them.
PYTHON ?= python3
SRC := operator/kascade
export PYTHONPATH := $(CURDIR)/operator

.PHONY: help install lint test e2e bench crds crds-check run-example browser

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: ## Install kascade and its dev tools (pinned) into the current Python
	$(PYTHON) -m pip install -q -e '.[dev]'

lint: ## ruff + mypy + import-linter (the layers: pure engine, only kube/ calls the API)
	$(PYTHON) -m ruff check operator tests
	$(PYTHON) -m ruff format --check operator tests
	$(PYTHON) -m mypy
	cd operator && $(PYTHON) -c 'from importlinter.cli import lint_imports_command as l; l()' \
		--config ../pyproject.toml --no-cache

test: install ## Unit tests, CRD sync, local-runner examples (no cluster needed)
	$(PYTHON) -m pytest -q tests

e2e: ## Tests against the cluster in KUBECONFIG (default: the local one from make cluster-up)
	$(PYTHON) -m pytest -q -m e2e tests/e2e -p no:randomly

bench: ## Engine and local-runner benchmarks (figures printed); a larger differential tier
	$(PYTHON) -m pytest -q -m bench tests/bench -s
	KASCADE_DIFF_DAGS=$${KASCADE_DIFF_DAGS:-30} KASCADE_DIFF_TIMEOUT=900 \
		$(PYTHON) -m pytest -q -m e2e tests/e2e/test_local_vs_cluster.py -p no:randomly

browser: ## Install Debian's Chromium for the UI browser tests (Playwright drives it; no download)
	bash hack/browser.sh

crds: ## Regenerate crds/*.yaml from the pydantic models
	$(PYTHON) -m kascade.api.crdgen --out crds

crds-check: ## Fail when crds/ drifted from the models
	$(PYTHON) -m kascade.api.crdgen --check crds

run-example: ## Run the hello-world example with the local runner
	$(PYTHON) -m kascade run manifests/examples/hello-world.yaml

-include hack/*.mk
