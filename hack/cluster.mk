# Local single-node Kubernetes built from source (see docs/development.md).
# Included by the top-level Makefile.
CLUSTER_DIR := $(CURDIR)/hack/cluster
KIND ?= kind
KIND_CLUSTER ?= kascade

.PHONY: cluster-build cluster-images cluster-up cluster-down cluster-status cluster-latency kind-up kind-down

cluster-build: ## Build etcd, Kubernetes (and helm) from source into ~/.cache/kascade (cached)
	$(CLUSTER_DIR)/deps.sh
	$(CLUSTER_DIR)/build.sh all

cluster-images: ## Build busybox/python/pause images locally (cached in ~/.cache/kascade/images)
	$(CLUSTER_DIR)/deps.sh
	$(CLUSTER_DIR)/images.sh build

cluster-up: ## Start the local cluster (builds first when needed); prints export KUBECONFIG=...
	$(CLUSTER_DIR)/up.sh

cluster-down: ## Stop the local cluster and restore host state
	$(CLUSTER_DIR)/down.sh

cluster-status: ## Show local cluster processes, memory, node and pods
	@$(CLUSTER_DIR)/status.sh

cluster-latency: ## Pod create -> Succeeded latency over 10 busybox pods (cluster must be up)
	$(PYTHON) $(CLUSTER_DIR)/pod-latency.py

kind-up: ## (needs Docker) Create a kind cluster from kind-config.yaml
	$(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml

kind-down: ## (needs Docker) Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)
