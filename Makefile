# samd: build, test, run.
# The Go release (GOTOOLCHAIN) every target uses.
include test/toolchain.env
GO ?= go
TESTFLAGS ?=

.PHONY: all build test test-vault deps dev vet tools proto api-snapshot cover clean bench fuzz

all: build

build:
	$(GO) build -o bin/samd ./cmd/samd

# deps installs what the tests need (SoftHSM2, OpenSSL, PostgreSQL) when missing.
deps:
	@bash test/setup.sh

# test runs every test, with SoftHSM2, OpenSSL, PostgreSQL and Chromium
# required: a test that would skip for want of them fails instead.
test: deps
	SAMD_REQUIRE_SOFTHSM=1 SAMD_REQUIRE_POSTGRES=1 SAMD_REQUIRE_BROWSER=1 $(GO) test -count=1 $(TESTFLAGS) ./...

# test-vault runs the Vault client's tests against a real Vault (VAULT_ADDR,
# VAULT_TOKEN, optional VAULT_CACERT; transit is mounted if missing, KV v2
# is expected at secret/) instead of the built-in test server.
test-vault:
	@test -n "$$VAULT_ADDR" && test -n "$$VAULT_TOKEN" || { echo "test-vault: set VAULT_ADDR and VAULT_TOKEN"; exit 1; }
	$(GO) test -count=1 -v ./keys/vault/...

dev:
	$(GO) run ./cmd/samd dev

# bench measures samd against the token's own ceiling (README: Performance).
bench: build
	test -f .samd-bench/samd.yaml || bin/samd dev --init-only --dir .samd-bench
	bin/samd bench --dev .samd-bench --half --json bench.json --svg bench.svg
	$(GO) test -run '^$$' -bench . -benchmem ./cmac ./derive ./cardauth ./mac

# vet runs the checks CI runs before the tests (test/check.sh): gofmt, go
# vet, go mod tidy -diff, generated code, staticcheck, govulncheck.
# CHECKS=staticcheck runs one of them.
CHECKS ?=
vet:
	bash test/check.sh $(CHECKS)

# tools installs the pinned tools of vet and proto into .tools/.
tools:
	bash test/tools.sh

# proto regenerates api/ (protoc and its plugins from test/tools.sh).
proto:
	bash api/generate.sh

# api-snapshot adds what samd.proto appended to api/samd/v1/samd.snapshot.json;
# it writes nothing if a field or value was renumbered, renamed or removed.
api-snapshot:
	$(GO) test -count=1 ./api/samdv1 -run TestAPIAppendOnly -update

# cover reports coverage (no threshold): unit tests, and the e2e tests
# through a samd built with -cover (GOCOVERDIR), merged per package.
# E2E_RUN restricts the e2e tests (a -run pattern), UNIT_PKGS the unit
# tests' packages ("none" skips them).
E2E_RUN ?=
UNIT_PKGS ?=
cover: deps
	E2E_RUN='$(E2E_RUN)' UNIT_PKGS='$(UNIT_PKGS)' bash test/cover.sh

clean:
	rm -rf bin .samd-dev .cover

# fuzz runs every fuzz target for FUZZTIME each; a crash is saved under the
# package's testdata/fuzz and becomes a regression test.
FUZZTIME ?= 30s
FUZZ_TARGETS = FuzzCompile:./policies FuzzParse:./config FuzzPKCS11URI:./config FuzzParse:./identity \
	FuzzRead:./audit FuzzAppendRecord:./audit FuzzCardResponses:./cardauth FuzzParseLabel:./keys FuzzProfileInput:./mac \
	FuzzJSONRequests:./server FuzzParse:./revocation FuzzParse:./pki/cms FuzzDecode:./tr31 \
	FuzzDecode:./lists FuzzParseReceipt:./lists FuzzParseUnit:./apta FuzzField:./apta FuzzISO7816:./cardauth \
	FuzzParseName:./pki/part19 FuzzVerify:./pki/part19
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; echo "fuzz $$name $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done
