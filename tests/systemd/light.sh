#!/usr/bin/env bash
# Light checks of telemetryd's systemd files; no booted systemd needed, no root needed (a few seconds).
#
#   1. `make install-systemd DESTDIR=<tmp>` installs the units, sysusers.d, tmpfiles.d and the catalog,
#      with ExecStart following BINDIR.
#   2. `systemd-analyze verify` of the installed service + socket prints nothing at all (it exits 0 on
#      warnings, so the output is what counts).
#   3. `systemd-analyze security --offline=true`: overall exposure <= 1.5, and no warning on stderr.
#   4. sysusers.d and tmpfiles.d applied to the temporary root: the user, the group and the directories
#      with their modes and owners, and no warning.
#   5. The catalog compiles (`journalctl --root --update-catalog`), has exactly the MESSAGE_IDs of
#      Sources/TelemetryCore/JournalMessageID.swift, each with Subject, Defined-By, Support, Documentation.
#   6. The units agree with the daemon's defaults (config/telemetryd.conf): socket path, state and spool
#      directories, and TimeoutStopSec >= TELEMETRY_SHUTDOWN_TIMEOUT + 10 s.
#
# Usage: bash tests/systemd/light.sh   (from anywhere; exit 0 = every check passed)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
MAX_EXPOSURE=1.5
FAILS=0
log()  { printf '[light] %s\n' "$*" >&2; }
pass() { log "PASS: $*"; }
fail() { log "FAIL: $*"; FAILS=$((FAILS + 1)); }
indent() { sed 's/^/    | /' >&2; }

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles journalctl; do
    command -v "$tool" >/dev/null || { log "FAIL: $tool is missing (the systemd package; make deps installs it)"; exit 1; }
done

WORK=$(mktemp -d /tmp/telemetryd-systemd-light.XXXXXX)
# systemd-analyze leaves an empty marker /run/systemd/systemd-units-load behind on a host where PID 1 is
# not systemd: remove it again unless it was there before.
MARKER=/run/systemd/systemd-units-load
had_marker=no; [ -e "$MARKER" ] && had_marker=yes
cleanup() {
    rm -rf "$WORK"
    if [ "$had_marker" = no ] && [ -e "$MARKER" ]; then rm -f "$MARKER" 2>/dev/null || true; fi
}
trap cleanup EXIT

ROOT=$WORK/root
STUB_BINDIR=$WORK/bin
UNITS=$ROOT/usr/local/lib/systemd/system

# ---- 1. install into a temporary root -----------------------------------------------------------------
# BINDIR points at a stub, so that the installed unit's ExecStart exists (verify checks it) and the
# substitution of the installed path is tested.
mkdir -p "$STUB_BINDIR"
printf '#!/bin/sh\nexit 0\n' >"$STUB_BINDIR/telemetryd"; chmod 755 "$STUB_BINDIR/telemetryd"
if out=$(make -C "$REPO" --no-print-directory install-systemd DESTDIR="$ROOT" PREFIX=/usr/local BINDIR="$STUB_BINDIR" 2>&1); then
    pass "make install-systemd DESTDIR=… installs the systemd files"
else
    printf '%s\n' "$out" | indent; fail "make install-systemd failed"; exit 1
fi
for f in "$UNITS/telemetryd.service" "$UNITS/telemetryd.socket" "$ROOT/usr/local/lib/sysusers.d/telemetryd.conf" \
         "$ROOT/usr/local/lib/tmpfiles.d/telemetryd.conf" "$ROOT/usr/local/lib/systemd/catalog/telemetryd.catalog"; do
    [ -f "$f" ] || fail "not installed: ${f#"$ROOT"}"
done
if grep -qx "ExecStart=$STUB_BINDIR/telemetryd" "$UNITS/telemetryd.service"; then
    pass "installed ExecStart follows BINDIR ($STUB_BINDIR/telemetryd)"
else
    fail "installed ExecStart is $(grep '^ExecStart=' "$UNITS/telemetryd.service")"
fi

# ---- 2. systemd-analyze verify: no output at all -----------------------------------------------------
out=$(cd "$UNITS" && systemd-analyze verify telemetryd.service telemetryd.socket 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ] && [ -z "$out" ]; then
    pass "systemd-analyze verify telemetryd.service telemetryd.socket: exit 0, no output"
else
    printf '%s\n' "$out" | indent; fail "systemd-analyze verify: exit $rc, output above"
fi

# ---- 3. systemd-analyze security --offline=true -------------------------------------------------------
sec_err=$WORK/security.stderr
sec=$(cd "$UNITS" && systemd-analyze security --offline=true --no-pager telemetryd.service 2>"$sec_err") || true
score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for telemetryd.service: \([0-9.]*\).*/\1/p')
printf '%s\n' "$sec" | grep '✗' | indent || true
if [ -z "$score" ]; then
    printf '%s\n' "$sec" | tail -n 5 | indent; fail "no 'Overall exposure level' line from systemd-analyze security"
elif awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
    pass "systemd-analyze security --offline=true: overall exposure $score (limit $MAX_EXPOSURE)"
else
    fail "systemd-analyze security --offline=true: overall exposure $score > $MAX_EXPOSURE"
fi
if [ -s "$sec_err" ]; then indent <"$sec_err"; fail "systemd-analyze security printed warnings (above)"; fi

# ---- 4. sysusers.d and tmpfiles.d in the temporary root ----------------------------------------------
mkdir -p "$ROOT/etc/telemetryd"
install -m 0640 "$REPO/config/telemetryd.conf" "$ROOT/etc/telemetryd/telemetryd.conf"
out=$(systemd-sysusers --root="$ROOT" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ] && ! printf '%s\n' "$out" | grep -qv '^Creating '; then
    pass "systemd-sysusers --root: exit 0, only 'Creating …' lines"
else
    printf '%s\n' "$out" | indent; fail "systemd-sysusers --root: exit $rc or unexpected output"
fi
uid=$(awk -F: '$1=="telemetryd"{print $3}' "$ROOT/etc/passwd" 2>/dev/null)
ugid=$(awk -F: '$1=="telemetryd"{print $4}' "$ROOT/etc/passwd" 2>/dev/null)
shell=$(awk -F: '$1=="telemetryd"{print $7}' "$ROOT/etc/passwd" 2>/dev/null)
sgid=$(awk -F: '$1=="telemetry"{print $3}' "$ROOT/etc/group" 2>/dev/null)
dgid=$(awk -F: '$1=="telemetryd"{print $3}' "$ROOT/etc/group" 2>/dev/null)
if [ -n "$uid" ] && [ "$uid" -lt 1000 ] && [ "$ugid" = "$dgid" ] && [ -n "$sgid" ] && [ "$shell" = /usr/sbin/nologin ]; then
    pass "sysusers: system user telemetryd ($uid, group telemetryd $dgid, nologin) and group telemetry ($sgid)"
else
    fail "sysusers: user/group not as expected (uid=$uid gid=$ugid shell=$shell telemetry=$sgid)"
fi
out=$(systemd-tmpfiles --root="$ROOT" --create 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ] && [ -z "$out" ]; then
    pass "systemd-tmpfiles --root --create: exit 0, no output"
else
    printf '%s\n' "$out" | indent; fail "systemd-tmpfiles --root --create: exit $rc or output"
fi
check_path() {  # path "mode uid gid" why
    local got
    got=$(stat -c '%a %u %g' "$ROOT$1" 2>/dev/null || echo missing)
    if [ "$got" = "$2" ]; then pass "tmpfiles: $1 is $2 ($3)"; else fail "tmpfiles: $1 is '$got', expected '$2' ($3)"; fi
}
check_path /var/spool/telemetryd "3730 $uid $sgid" "setgid+sticky, telemetryd:telemetry"
check_path /run/telemetryd "755 0 0" "root-owned parent of the socket"
check_path /etc/telemetryd "750 0 $dgid" "root:telemetryd"
check_path /etc/telemetryd/telemetryd.conf "640 0 $dgid" "readable by the daemon"

# ---- 5. the catalog ----------------------------------------------------------------------------------
out=$(journalctl --root="$ROOT" --update-catalog 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ] && [ -z "$out" ] && [ -s "$ROOT/var/lib/systemd/catalog/database" ]; then
    pass "journalctl --root --update-catalog: database built, no output"
else
    printf '%s\n' "$out" | indent; fail "journalctl --update-catalog: exit $rc or output"
fi
listed=$(journalctl --root="$ROOT" --list-catalog 2>&1 | awk '{print $1}' | sort)
defined=$(grep -o '"[0-9a-f]\{32\}"' "$REPO/Sources/TelemetryCore/JournalMessageID.swift" 2>/dev/null | tr -d '"' | sort || true)
if [ -z "$defined" ]; then
    fail "no MESSAGE_IDs found in Sources/TelemetryCore/JournalMessageID.swift"
elif [ "$listed" = "$defined" ]; then
    pass "catalog lists exactly the $(wc -l <<<"$defined") MESSAGE_IDs of JournalMessageID.swift"
else
    diff <(printf '%s\n' "$defined") <(printf '%s\n' "$listed") | indent || true
    fail "catalog IDs differ from JournalMessageID.swift (< only in the source, > only in the catalog)"
fi
for id in $listed; do
    entry=$(journalctl --root="$ROOT" --dump-catalog "$id" 2>&1)
    missing=""
    for header in "Subject: " "Defined-By: telemetryd" "Support: " "Documentation: file:///usr/local/share/doc/telemetryd/"; do
        grep -q "^$header" <<<"$entry" || missing="$missing '$header'"
    done
    # The explanation after the headers must say something.
    body=$(awk 'NR > 1 && /^$/ {b=1; next} b' <<<"$entry" | grep -c . || true)
    if [ -z "$missing" ] && [ "$body" -ge 2 ]; then :; else fail "catalog entry $id: missing$missing, $body text lines"; fi
done
[ "$FAILS" -eq 0 ] && pass "every catalog entry has Subject, Defined-By, Support, Documentation and an explanation"

# ---- 6. units agree with the daemon's defaults --------------------------------------------------------
default() { sed -n "s/^#\{0,1\}$1=//p" "$REPO/config/telemetryd.conf" | head -n 1; }
svc=$UNITS/telemetryd.service
sock_default=$(default TELEMETRY_SOCKET); state_default=$(default TELEMETRY_STATE_DIR)
spool_default=$(default TELEMETRY_SPOOL_DIR); shutdown_default=$(default TELEMETRY_SHUTDOWN_TIMEOUT)
grep -qx "ListenStream=$sock_default" "$UNITS/telemetryd.socket" \
    && pass "telemetryd.socket listens on the default TELEMETRY_SOCKET ($sock_default)" \
    || fail "telemetryd.socket ListenStream is not TELEMETRY_SOCKET's default $sock_default"
grep -qx "StateDirectory=${state_default#/var/lib/}" "$svc" \
    && pass "StateDirectory= is the default TELEMETRY_STATE_DIR ($state_default)" \
    || fail "StateDirectory= does not match TELEMETRY_STATE_DIR's default $state_default"
grep -qx "ReadWritePaths=$spool_default" "$svc" && grep -q "^d $spool_default " "$ROOT/usr/local/lib/tmpfiles.d/telemetryd.conf" \
    && pass "spool directory $spool_default is writable by the unit and created by tmpfiles.d" \
    || fail "spool directory $spool_default is not both in ReadWritePaths= and tmpfiles.d"
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$svc")
if [ -n "$stop" ] && [ -n "$shutdown_default" ] && [ "$stop" -ge $((shutdown_default + 10)) ]; then
    pass "TimeoutStopSec=${stop}s >= TELEMETRY_SHUTDOWN_TIMEOUT (${shutdown_default}s) + 2 s read + margin"
else
    fail "TimeoutStopSec='$stop' is not >= TELEMETRY_SHUTDOWN_TIMEOUT ($shutdown_default) + 10 s"
fi

if [ "$FAILS" -eq 0 ]; then log "all light checks passed"; else log "$FAILS light check(s) FAILED"; fi
[ "$FAILS" -eq 0 ]
