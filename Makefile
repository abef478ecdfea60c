# make test — installs what the tests need when it is missing, then runs every test.
GO ?= go

.PHONY: test deps unit lint build bench

test: deps lint
	GATEHOUSE_E2E_RACE=1 $(GO) test -race -count=1 -timeout 15m ./...

deps:
	@scripts/install-test-deps.sh chromium redis-server curl haproxy

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o bin/gatehouse ./cmd/gatehouse

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	bench/compare.sh
