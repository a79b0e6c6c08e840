# Every target that needs dependencies installs them first (npm ci) when they are missing.
.DEFAULT_GOAL := help
SHELL := /bin/bash
DEPS := node_modules/.package-lock.json
TSX := node_modules/.bin/tsx
BASE_URL ?= http://127.0.0.1:8080

.PHONY: test-matrix
.PHONY: help setup build test fuzz type-check lint format format-check server test-integration bench \
	bench-smoke bench-placement clean example-express example-koa example-nestjs example-nestjs-fastify example-fetch example-node

help:
	@echo "make server            run the conformance auth server on 127.0.0.1:8080 (PORT, HOST)"
	@echo "make test              run every test"
	@echo "make fuzz              fuzz every operation longer (FUZZ_RUNS per target, FUZZ_SEED)"
	@echo "make test-integration  run our client through every flow against BASE_URL"
	@echo "make test-matrix       the packed package in fresh apps: Express 4/5, Koa 2/3, NestJS 10/11/12, ..."
	@echo "make example-web       the web demo (browser client) on 127.0.0.1:8080 (PORT, HOST)"
	@echo "make test-browser      the web demo and the client in Chromium (apt-get install chromium)"
	@echo "make example-express   the Express example on 127.0.0.1:8080 (PORT, HOST); also"
	@echo "                       example-koa, example-nestjs, example-nestjs-fastify,"
	@echo "                       example-fetch, example-node"
	@echo "make bench             the benchmark (docs/performance.md); make bench-smoke: under a minute"
	@echo "make bench-placement   where ECDSA runs (crypto.ecdsa), light and saturated load"
	@echo "make docs              the API reference (TypeDoc) in docs/api"
	@echo "other targets: setup build type-check lint format format-check clean"

# One install at a time (two targets started together on a fresh clone share node_modules); the
# second waits, then finds the dependencies installed.
$(DEPS): package.json package-lock.json
	@flock .npm-install.lock sh -c 'if [ -f $(DEPS) ] && [ $(DEPS) -nt package.json ] && [ $(DEPS) -nt package-lock.json ]; then :; else npm ci --no-audit --no-fund && touch $(DEPS); fi'

setup: $(DEPS)

# dist/cjs and dist/esm: the same sources compiled twice by tsc (real ES modules, see scripts/build.mjs).
build: $(DEPS)
	node scripts/build.mjs

test: $(DEPS)
	npx jest

# More fuzz cases than `make test` runs, with a new seed each time unless FUZZ_SEED is given.
FUZZ_RUNS ?= 20000
fuzz: $(DEPS)
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "fuzz: FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SEED=$$seed"; \
	FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SEED=$$seed npx jest test/fuzz.test.ts

# The API reference of every entry point (typedoc.json), in docs/api (not committed).
.PHONY: docs
docs: $(DEPS)
	npx typedoc

type-check: $(DEPS)
	npx tsc --noEmit -p tsconfig.json

lint: $(DEPS)
	npx eslint .

format: $(DEPS)
	npx prettier --write .

format-check: $(DEPS)
	npx prettier --check .

# The conformance server runs without rate limits (clients' integration suites send bursts);
# BETTER_AUTH_RATE_LIMIT=on gives it the defaults that `npx better-auth-protocol serve` has.
BETTER_AUTH_RATE_LIMIT ?= off
server: $(DEPS)
	BETTER_AUTH_RATE_LIMIT=$(BETTER_AUTH_RATE_LIMIT) $(TSX) examples/server-listen.ts

example-express: $(DEPS)
	$(TSX) examples/express/listen.ts

example-koa: $(DEPS)
	$(TSX) examples/koa/listen.ts

example-nestjs: $(DEPS)
	$(TSX) examples/nestjs/listen.ts

example-nestjs-fastify: $(DEPS)
	$(TSX) examples/nestjs/listen.ts fastify

example-fetch: $(DEPS)
	$(TSX) examples/fetch/listen.ts

example-node: $(DEPS)
	$(TSX) examples/node/listen.ts

# The web demo (examples/web): the conformance server plus a page using better-auth-protocol/client.
.PHONY: example-web test-browser
example-web: $(DEPS)
	$(TSX) examples/web/listen.ts

# The demo and the client in Chromium (Debian's chromium, driven by playwright-core; never downloads one).
test-browser: $(DEPS)
	$(TSX) test/browser/run.ts

# Smoke tests of the packed tarball in fresh apps: each framework major, ioredis 5 + pg 8, Node 22
# and 24, node:sqlite (scripts/matrix.mjs; needs the npm registry, PostgreSQL and Redis).
test-matrix: $(DEPS)
	node scripts/matrix.mjs

test-integration: $(DEPS)
	BASE_URL=$(BASE_URL) $(TSX) test/integration/run.ts

bench: $(DEPS)
	$(TSX) bench/run.ts

bench-placement: $(DEPS)
	$(TSX) bench/placement.ts

bench-smoke: $(DEPS)
	BENCH_SMOKE=1 $(TSX) bench/run.ts

clean:
	rm -rf dist coverage node_modules
