# Posthorn. `make run` starts a server on loopback; `make test` runs every test.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN      := bin/posthorn
FUZZTIME ?= 5m
TORTURE_TIME ?= 30m
IMAPCHECK_CLIENTS ?= 50
IMAPCHECK_TIME ?= 5m

# The embedded default for `make run`: loopback, unprivileged ports, data in ./var.
DEV := -o hostname=localhost -o domains=localhost,example.test -o data_dir=./var \
       -o smtp_listen=127.0.0.1:2525 -o submission_listen=127.0.0.1:2587 \
       -o submissions_listen=127.0.0.1:2465 -o pop3_listen=127.0.0.1:2110 \
       -o pop3s_listen=127.0.0.1:2995 -o imap_listen=127.0.0.1:2143 \
       -o imaps_listen=127.0.0.1:2993 -o dns_resolvers=127.0.0.1:53
DEMO_USER := demo@localhost
DEMO_PASS := demo-password

.PHONY: build run test fuzz torture imapcheck bench vet clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/posthorn

run: build
	@$(BIN) $(DEV) user list 2>/dev/null | grep -qx '$(DEMO_USER)' || \
		echo '$(DEMO_PASS)' | $(BIN) $(DEV) user add $(DEMO_USER) >/dev/null
	@echo "posthorn: SMTP 127.0.0.1:2525, submission 2587 (STARTTLS) and 2465 (TLS), POP3 2110/2995, IMAP 2143/2993 (TLS); data in ./var"
	@echo "posthorn: demo account $(DEMO_USER), password $(DEMO_PASS)"
	@echo "posthorn: try: swaks --server 127.0.0.1:2525 --to $(DEMO_USER)"
	@echo "posthorn: stop with Ctrl-C"
	$(BIN) $(DEV) serve

vet:
	$(GO) vet ./...
	$(GO) vet -tags failpoint ./mailbox/... ./spool/... ./cmd/posthorn/
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

test: vet
	$(GO) test -race -count=1 -tags failpoint ./mailbox/failpoint/
	$(GO) test -race -count=1 -timeout 20m ./...

# Each fuzz target for FUZZTIME (default 5m): make fuzz FUZZTIME=30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# The random-kill torture test for TORTURE_TIME (default 30m): make torture TORTURE_TIME=2h
# (docs/reliability.md). `make test` runs it for 20 s.
torture:
	POSTHORN_TORTURE_TIME=$(TORTURE_TIME) $(GO) test -run '^TestTorture$$' -count=1 -timeout 0 -v ./cmd/posthorn/

# The IMAP concurrency checker: IMAPCHECK_CLIENTS sessions on one account for
# IMAPCHECK_TIME (default 50 for 5m). `make test` runs 10 for 12 s.
imapcheck:
	POSTHORN_IMAPCHECK_CLIENTS=$(IMAPCHECK_CLIENTS) POSTHORN_IMAPCHECK_TIME=$(IMAPCHECK_TIME) \
		$(GO) test -run '^TestIMAPCheck$$' -count=1 -timeout 0 -v ./cmd/posthorn/

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...
	$(GO) run ./cmd/posthorn-bench -bin $(BIN)

clean:
	rm -rf bin var
