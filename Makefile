# telemetryd — build, test, demo, benchmark and install.
#
#   make            release build of telemetryd and telemetry
#   make test       unit and integration tests, the alerting rules' tests and a real Prometheus scraping
#                   the daemon (installs missing Debian packages first)
#   make demo       run the product end to end on its embedded local store, no root or systemd needed
#   make bench      benchmarks with their targets, side by side (prints a table)
#   make install    PREFIX=/usr/local DESTDIR= : binaries, bash library, units, config
#   make deps       install missing Debian packages with apt-get

PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
SHAREDIR    ?= $(PREFIX)/share/telemetry
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
CATALOGDIR  ?= $(PREFIX)/lib/systemd/catalog
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DOCDIR      ?= $(PREFIX)/share/doc/telemetryd
SWIFT       ?= swift
SWIFT_FLAGS ?=
# The client starts on every scripted event: link the Swift runtime statically (see docs/architecture.md).
RELEASE_FLAGS = -c release --static-swift-stdlib
RELEASE_BIN  = $(shell $(SWIFT) build $(RELEASE_FLAGS) --show-bin-path 2>/dev/null)

DEBIAN_PACKAGES = libsqlite3-dev libsystemd-dev libcurl4-openssl-dev zlib1g-dev libzstd-dev sqlite3 util-linux \
                  bsdutils python3 openssl bats shellcheck prometheus
# Python packages the tests use: the official OTLP protobuf definitions (to validate what we send) and zstd
# (the test receiver decodes zstd bodies).
PYTHON_PACKAGES = opentelemetry-proto protobuf zstandard

.PHONY: all build test demo bench install deps clean

all: build

build: deps
	$(SWIFT) build $(RELEASE_FLAGS) $(SWIFT_FLAGS) --product telemetryd
	$(SWIFT) build $(RELEASE_FLAGS) $(SWIFT_FLAGS) --product telemetry

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "make deps: run as root (or install:$$missing)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@python3 -c "import opentelemetry.proto, google.protobuf, zstandard" 2>/dev/null || \
	  { echo "make deps: installing Python packages: $(PYTHON_PACKAGES)"; \
	    python3 -m pip install --quiet --disable-pip-version-check $(PYTHON_PACKAGES) \
	    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages $(PYTHON_PACKAGES); }
	@# systemd-nspawn for the systemd integration test, pinned to the installed systemd: an unpinned install
	@# would upgrade the systemd package itself (systemd-container requires the same version).
	@if ! command -v systemd-nspawn >/dev/null && [ "$$(id -u)" -eq 0 ]; then \
	  v=$$(dpkg-query -W -f='$${Version}' systemd 2>/dev/null || true); \
	  apt-cache madison systemd-container 2>/dev/null | grep -q . || apt-get update -qq; \
	  if [ -n "$$v" ] && apt-cache madison systemd-container | awk -v v="$$v" '$$3==v{f=1} END{exit !f}'; then \
	    pkg="systemd-container=$$v"; \
	  else echo "make deps: WARNING: systemd-container $$v is not offered; the newest one upgrades systemd"; pkg=systemd-container; fi; \
	  echo "make deps: installing $$pkg"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkg; \
	fi

test: deps
	$(SWIFT) build $(SWIFT_FLAGS)
	$(SWIFT) test $(SWIFT_FLAGS)
	shellcheck share/telemetry/utils.sh
	TELEMETRY_BIN=$$($(SWIFT) build $(SWIFT_FLAGS) --show-bin-path) bats tests/bash
	promtool check rules config/prometheus/alerting.yml
	promtool test rules config/prometheus/alerting_test.yml
	promtool check config --syntax-only config/prometheus/prometheus.yml
	TELEMETRY_BIN=$$($(SWIFT) build $(SWIFT_FLAGS) --show-bin-path) bats tests/prometheus
	$(MAKE) --no-print-directory test-systemd

demo: deps build
	TELEMETRY_BIN=$(RELEASE_BIN) bash scripts/demo.sh

bench: deps build
	TELEMETRY_BIN=$(RELEASE_BIN) bash bench/run.sh
	TELEMETRY_BIN=$(RELEASE_BIN) bash tests/bash/bench.sh
	TELEMETRY_BIN=$(RELEASE_BIN) bash bench/delivery.sh

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(SYSCONFDIR)/telemetryd
	install -m 0755 $(RELEASE_BIN)/telemetryd $(DESTDIR)$(BINDIR)/telemetryd
	install -m 0755 $(RELEASE_BIN)/telemetry $(DESTDIR)$(BINDIR)/telemetry
	install -m 0644 share/telemetry/utils.sh $(DESTDIR)$(SHAREDIR)/utils.sh
	if [ ! -f $(DESTDIR)$(SYSCONFDIR)/telemetryd/telemetryd.conf ]; then \
	  install -m 0640 config/telemetryd.conf $(DESTDIR)$(SYSCONFDIR)/telemetryd/telemetryd.conf; fi
	$(MAKE) --no-print-directory install-systemd

# systemd integration (docs/systemd.md): units, sysusers.d, tmpfiles.d, message catalog. Paths in the files
# are written for PREFIX=/usr/local and SYSCONFDIR=/etc; other values are substituted. Without DESTDIR it also
# creates the user and directories and updates the catalog; it never enables or starts a unit.
SYSTEMD_SED = -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/doc/telemetryd|$(DOCDIR)|g' \
              -e 's|/etc/telemetryd/|$(SYSCONFDIR)/telemetryd/|g'
.PHONY: install-systemd test-systemd
install-systemd:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CATALOGDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR)
	for f in systemd/telemetryd.service systemd/telemetryd.socket; do \
	  sed $(SYSTEMD_SED) "$$f" >$(DESTDIR)$(UNITDIR)/$${f#systemd/} && chmod 0644 $(DESTDIR)$(UNITDIR)/$${f#systemd/} || exit 1; \
	done
	sed $(SYSTEMD_SED) systemd/telemetryd.catalog >$(DESTDIR)$(CATALOGDIR)/telemetryd.catalog
	sed $(SYSTEMD_SED) systemd/tmpfiles.d/telemetryd.conf >$(DESTDIR)$(TMPFILESDIR)/telemetryd.conf
	chmod 0644 $(DESTDIR)$(CATALOGDIR)/telemetryd.catalog $(DESTDIR)$(TMPFILESDIR)/telemetryd.conf
	install -m 0644 systemd/sysusers.d/telemetryd.conf $(DESTDIR)$(SYSUSERSDIR)/telemetryd.conf
	install -m 0644 docs/systemd.md docs/operations.md docs/configuration.md docs/delivery.md $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ]; then \
	  set -e; systemd-sysusers $(SYSUSERSDIR)/telemetryd.conf; \
	  systemd-tmpfiles --create $(TMPFILESDIR)/telemetryd.conf; \
	  journalctl --update-catalog; \
	  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	  echo "installed; start with: systemctl enable --now telemetryd.socket telemetryd.service"; \
	fi

# Light checks always (systemd-analyze verify/security, sysusers, tmpfiles, catalog); then the units under a
# real systemd booted with systemd-nspawn (root only; TELEMETRY_SKIP_NSPAWN=1 accepts a skip).
test-systemd: build
	bash tests/systemd/light.sh
	TELEMETRY_BIN=$(RELEASE_BIN) bash tests/systemd/integration.sh

clean:
	rm -rf .build demo-state bench-state
