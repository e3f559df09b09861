# Operator image, Helm chart and install manifest (see docs/install.md).
# Included by the top-level Makefile (`-include hack/*.mk`).
OPERATOR_IMAGE ?= kascade-operator:dev
HELM_CHART := helm/kascade
HELM_VERSION_DIR ?= helm-v3.22.0
# helm: $HELM, else the one `make cluster-build` built, else the one on PATH.
HELM ?= $(firstword $(wildcard $(HOME)/.cache/kascade/$(HELM_VERSION_DIR)/helm) $(shell command -v helm 2>/dev/null) helm)
INSTALL_MANIFEST := manifests/install.yaml
INSTALL_NAMESPACE ?= kascade-system
KIND_KUBECONFIG ?= $(HOME)/.kube/kind-$(KIND_CLUSTER).kubeconfig

.PHONY: image image-tarball helm-lint helm-docs helm-crds install-manifest kind-e2e

image: ## Build the operator image without Docker (mmdebstrap) and import it as $(OPERATOR_IMAGE) into the local cluster
	IMAGE=$(OPERATOR_IMAGE) hack/image/build-operator-image.sh

image-tarball: ## Build the operator image into build/kascade-operator.tar (docker-save layout; no cluster needed)
	IMAGE=$(OPERATOR_IMAGE) hack/image/build-operator-image.sh --no-import --output build/kascade-operator.tar

helm-crds: ## Copy crds/*.yaml into the chart (helm/kascade/files/crds)
	rm -f $(HELM_CHART)/files/crds/*.yaml
	cp crds/*.yaml $(HELM_CHART)/files/crds/

helm-docs: ## Regenerate helm/kascade/README.md from values.yaml comments
	$(PYTHON) hack/helm-docs.py

helm-lint: ## helm lint the chart with its default values and every ci/*-values.yaml
	$(HELM) lint $(HELM_CHART)
	for f in $(HELM_CHART)/ci/*-values.yaml; do $(HELM) lint $(HELM_CHART) -f $$f || exit 1; done

install-manifest: helm-crds ## Regenerate manifests/install.yaml (the chart with default values)
	$(PYTHON) hack/image/render-install-manifest.py --helm $(HELM)

# For users with a Docker engine (not the CI/dev VMs): a kind cluster from kind-config.yaml,
# the operator image built with operator/Dockerfile and loaded into it (plus the task
# images the examples use), then the e2e tier, whose test_helm_install.py installs the chart.
kind-e2e: ## (needs Docker + kind) kind cluster, docker build + kind load the operator, make e2e (helm install inside)
	$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml
	docker build -f operator/Dockerfile -t $(OPERATOR_IMAGE) .
	$(KIND) load docker-image $(OPERATOR_IMAGE) --name $(KIND_CLUSTER)
	for img in busybox:1.36 python:3.11-slim; do \
	  docker image inspect $$img >/dev/null 2>&1 || docker pull $$img || exit 1; \
	  $(KIND) load docker-image $$img --name $(KIND_CLUSTER) || exit 1; \
	done
	mkdir -p $(dir $(KIND_KUBECONFIG))
	$(KIND) get kubeconfig --name $(KIND_CLUSTER) >$(KIND_KUBECONFIG)
	$(HELM) lint $(HELM_CHART)
	KUBECONFIG=$(KIND_KUBECONFIG) KASCADE_E2E_IMAGE=$(OPERATOR_IMAGE) HELM=$(HELM) $(MAKE) e2e
