# Payesh — the two set-up commands are `make run` and `make test`.
GO        ?= go
STORE     ?= sqlite://./data/payesh.db
ADDR      ?= :8080
DEMO_FACILITIES ?= 20000
PKGS      := ./...
STATICCHECK_VERSION := 2025.1.1

.PHONY: all build run test test-short test-kurrentdb lint bench services clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

## run: the server on the embedded SQLite store, seeded with demo data
## (DEMO_FACILITIES plans, 1400-1404) on first start, in development mode
## (tokens signed with the public dev key: ./bin/payesh token mint --dev).
run: build
	@./bin/payesh seed --store '$(STORE)' --facilities $(DEMO_FACILITIES) --if-empty
	@echo
	@echo "Payesh is starting on $(ADDR) with the demo history in $(STORE). Try:"
	@echo "  curl -s localhost$(ADDR)/readyz"
	@echo "  TOKEN=\$$(./bin/payesh token mint --dev --role ministry)"
	@echo "  curl -s -H \"Authorization: Bearer \$$TOKEN\" localhost$(ADDR)/v1/job-counts"
	@echo "  ./bin/payesh verify --store '$(STORE)'"
	@echo
	./bin/payeshd --store '$(STORE)' --addr '$(ADDR)' --dev

## test: the whole suite with the race detector, against a real PostgreSQL
## and a real NATS server (both started, or installed, when missing). The
## KurrentDB backend runs its contract suite against the protocol test
## server (eventstore/kurrentdb/kurrenttest).
test: services
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

## test-short: unit tests only, no database servers.
test-short:
	$(GO) test -short -count=1 $(PKGS)

## test-kurrentdb: the KurrentDB backend's contract suite against a real
## KurrentDB as well (docker compose up kurrentdb, or any node you name).
KURRENTDB_URL ?= kurrentdb://127.0.0.1:2113?tls=false
test-kurrentdb:
	PAYESH_TEST_KURRENTDB_URL='$(KURRENTDB_URL)' $(GO) test -race -count=1 -v -run 'TestContract' ./eventstore/kurrentdb/

services:
	@./scripts/ensure-postgres.sh
	@./scripts/ensure-nats.sh

lint:
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

## bench: every benchmark beside its baseline, in one run (about half an
## hour), on the PostgreSQL the tests use; rewrites docs/BENCHMARKS.md.
bench: services build
	./bin/payesh bench --out docs/BENCHMARKS.md $(if $(TEST_DATABASE_URL),--pg '$(TEST_DATABASE_URL)')

clean:
	rm -rf bin data
