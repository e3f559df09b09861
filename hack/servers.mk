# Real servers for the integration tests (see tests/servers/ and docs/development.md).
# Included by the top-level Makefile.
.PHONY: servers servers-deps

servers-deps: ## Install Debian's PostgreSQL and openssl for the test servers (only what is missing)
	hack/servers/deps.sh

servers: servers-deps ## Test servers: PostgreSQL (Debian) + versitygw S3 built from its Go module (cached)
	hack/servers/build.sh versitygw >/dev/null
