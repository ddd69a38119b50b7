#!/usr/bin/env bash
# telemetryd under a real systemd: boots systemd as PID 1 of a container (systemd-nspawn --boot), installs
# the units and the release binaries, and checks what an operator relies on. See docs/systemd.md.
#
# The container boots the host's own /usr read-only under an empty tmpfs root (`--directory=/
# --volatile=yes`): no root file system to download, and the binaries find the libraries they were built
# against. The installed tree (`make install DESTDIR=…`, PREFIX=/usr/local) is bind-mounted on /usr/local,
# where systemd finds the units, sysusers.d, tmpfiles.d and the catalog at boot, as after a package install
# and a reboot. /etc/telemetryd is a copy of the installed one.
#
# Needs root, systemd-nspawn (package systemd-container, installed by `make deps`) and a cgroup hierarchy.
# Where it cannot run it prints SKIPPED and FAILS, unless TELEMETRY_SKIP_NSPAWN=1 accepts the skip.
#
# Env: TELEMETRY_BIN        directory with release telemetryd and telemetry; unset: `make install` builds them
#      TELEMETRY_SKIP_NSPAWN=1  exit 0 (still printing SKIPPED) where the test cannot run
#      ITEST_KEEP=1         keep the work directory (the container is always powered off)
#      ITEST_HOLD=SECONDS   debugging: keep the container running this long before the clean-up
# Exit: 0 all checks passed; 1 a check failed (the container's journal for telemetryd is dumped) or skipped.
# pass always succeeds, so `check && pass … || fail …` is an if-then-else here.
# shellcheck disable=SC2015
set -euo pipefail
# NB: never end a pipeline with `grep -q`: it stops reading at the first match, and with pipefail the
# writer's SIGPIPE then fails the whole pipeline.

REPO=$(cd "$(dirname "$0")/../.." && pwd)
MACHINE=telemetryd-itest-$$
CPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WATCHDOG_SEC=3          # the test's drop-in; the shipped unit has 30 s
T0=$SECONDS
FAILS=0
log()    { printf '[itest %3ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
pass()   { log "PASS: $*"; }
fail()   { log "FAIL: $*"; FAILS=$((FAILS + 1)); }
indent() { sed 's/^/    | /' >&2; }
phase()  { log "== $*"; }

skip() {
    {
        echo "##########################################################################"
        echo "SKIPPED: systemd integration test (tests/systemd/integration.sh): $*"
        echo "##########################################################################"
    } >&2
    if [ "${TELEMETRY_SKIP_NSPAWN:-}" = 1 ]; then
        echo "TELEMETRY_SKIP_NSPAWN=1: the skip is accepted" >&2; exit 0
    fi
    echo "This is a failure: fix the cause above, or set TELEMETRY_SKIP_NSPAWN=1 to accept the skip." >&2
    exit 1
}

# ---- can it run here? ---------------------------------------------------------------------------------
[ "${TELEMETRY_SKIP_NSPAWN:-}" = 1 ] && skip "TELEMETRY_SKIP_NSPAWN=1 is set"
[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn); run as root"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is not installed (as root, make deps installs systemd-container)"
[ -x /usr/lib/systemd/systemd ] || skip "/usr/lib/systemd/systemd is missing (package systemd)"
for tool in nsenter python3 sqlite3 setpriv timeout; do
    command -v "$tool" >/dev/null || skip "$tool is missing"
done
cgroup_roots() {  # the cgroup2 mount and the v1 name=systemd one, where present
    awk '$3 == "cgroup2" {print $2} $3 == "cgroup" && $4 ~ /(^|,)name=systemd(,|$)/ {print $2}' /proc/self/mounts
}
[ -n "$(cgroup_roots)" ] || skip "no cgroup2 or name=systemd cgroup hierarchy is mounted"

WORK=$(mktemp -d /var/tmp/telemetryd-itest.XXXXXX)
STAGE=$WORK/stage
NSPAWN_PID=""
LEADER=""
CGROUPS=()

# ---- clean-up, always ----------------------------------------------------------------------------------
cleanup() {
    local rc=$? d hold
    trap - EXIT
    if [ -n "${ITEST_HOLD:-}" ] && [ -n "$LEADER" ]; then
        log "ITEST_HOLD: container kept for ${ITEST_HOLD} s (Ctrl-C ends it): nsenter --target $LEADER --all --root --wd"
        sleep "$ITEST_HOLD" & hold=$!
        trap 'kill $hold 2>/dev/null' INT TERM HUP
        wait "$hold" || true
    fi
    trap '' INT TERM HUP          # the clean-up itself is not interrupted
    if [ "$rc" != 0 ] && [ -n "$LEADER" ] && kill -0 "$LEADER" 2>/dev/null; then dump_journal; fi
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true        # nspawn: SIGTERM = clean poweroff of the container
        for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$NSPAWN_PID" 2>/dev/null; then
            log "container still up after 10 s: SIGKILL to systemd-nspawn $NSPAWN_PID"
            kill -KILL "$NSPAWN_PID" 2>/dev/null || true   # the kernel then ends the whole PID namespace
            sleep 1
        fi
    fi
    for d in "${CGROUPS[@]}"; do                          # depth first; fails harmlessly if still busy
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
        [ -d "$d" ] && log "WARNING: could not remove cgroup $d"
    done
    # Left by nspawn on a host where PID 1 is not systemd.
    rm -rf "/run/systemd/nspawn/propagate/$MACHINE" "/run/systemd/nspawn/unix-export/$MACHINE" 2>/dev/null || true
    rmdir /run/systemd/nspawn/propagate /run/systemd/nspawn/unix-export /run/systemd/nspawn/locks \
          /run/systemd/nspawn /run/systemd/nspawn-root 2>/dev/null || true
    if [ "${ITEST_KEEP:-}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    log "finished in $((SECONDS - T0)) s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- install into a staging tree -----------------------------------------------------------------------
phase "install (make install DESTDIR=…)"
if [ -n "${TELEMETRY_BIN:-}" ]; then
    # The binaries are built already (make test-systemd depends on build): install them like `make install`.
    for b in telemetryd telemetry; do
        [ -x "$TELEMETRY_BIN/$b" ] || { log "FAIL: $TELEMETRY_BIN/$b is missing"; exit 1; }
        install -D -m 0755 "$TELEMETRY_BIN/$b" "$STAGE/usr/local/bin/$b"
    done
    install -D -m 0644 "$REPO/share/telemetry/utils.sh" "$STAGE/usr/local/share/telemetry/utils.sh"
    install -D -m 0640 "$REPO/config/telemetryd.conf" "$STAGE/etc/telemetryd/telemetryd.conf"
    make -C "$REPO" --no-print-directory install-systemd DESTDIR="$STAGE" PREFIX=/usr/local >"$WORK/install.log" 2>&1 \
        || { indent <"$WORK/install.log"; log "FAIL: make install-systemd"; exit 1; }
else
    make -C "$REPO" --no-print-directory install DESTDIR="$STAGE" PREFIX=/usr/local >"$WORK/install.log" 2>&1 \
        || { tail -n 30 "$WORK/install.log" | indent; log "FAIL: make install"; exit 1; }
fi
cp -a "$STAGE/etc/telemetryd" "$WORK/etc-telemetryd"
# The receiver of the delivery check (loopback HTTP, inside the container).
mkdir -p "$WORK/receiver"; cp "$REPO/tests/receiver/receiver.py" "$WORK/receiver/"

# ---- boot -------------------------------------------------------------------------------------------------
phase "boot systemd in a container (systemd-nspawn --boot, host /usr, volatile root)"
for mp in $(cgroup_roots); do
    # A cgroup of our own in each hierarchy: nspawn (--keep-unit, no systemd on the host) puts the container
    # below the cgroup it starts in, and removing ours removes everything it created.
    if mkdir "$mp/$MACHINE" 2>/dev/null; then CGROUPS+=("$mp/$MACHINE"); fi
done
[ ${#CGROUPS[@]} -gt 0 ] || skip "cannot create a cgroup under $(cgroup_roots | tr '\n' ' ')"
(
    for d in "${CGROUPS[@]}"; do echo "$BASHPID" >"$d/cgroup.procs" || true; done
    # --register=no --keep-unit: the host's PID 1 is not systemd (no machined, no scope units).
    # --private-network: only "lo" inside. --console=read-only: the boot log goes to console.log.
    exec systemd-nspawn --quiet --machine="$MACHINE" --boot --register=no --keep-unit --private-network \
        --console=read-only --directory=/ --volatile=yes \
        --bind-ro="$STAGE/usr/local:/usr/local" \
        --bind="$WORK/etc-telemetryd:/etc/telemetryd" \
        --bind-ro="$WORK/receiver:/opt/telemetryd-itest" \
        systemd.firstboot=off
) </dev/null >"$WORK/console.log" 2>&1 &
NSPAWN_PID=$!

leader_pid() {  # the container's PID 1: the child of nspawn whose innermost NSpid is 1
    local f
    for f in /proc/[0-9]*/status; do
        awk -v p="$NSPAWN_PID" '$1 == "PPid:" && $2 == p {c = 1} /^NSpid:/ && NF >= 3 && $NF == 1 {n = 1} END {exit !(c && n)}' \
            "$f" 2>/dev/null && { f=${f#/proc/}; echo "${f%/status}"; return 0; }
    done
    return 1
}
# Run a command inside the container as root, with a clean environment and a time limit.
cexec() {
    timeout 60 nsenter --target "$LEADER" --all --root --wd \
        env -i PATH="$CPATH" LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
JOURNAL_DUMPED=no
dump_journal() {
    [ "$JOURNAL_DUMPED" = no ] || return 0
    JOURNAL_DUMPED=yes
    log "---- container journal: telemetryd.service and telemetryd.socket (last 150 lines) ----"
    cexec journalctl --no-pager -o short-monotonic -n 150 -u telemetryd.service -u telemetryd.socket 2>&1 | indent || true
    cexec systemctl status --no-pager -n 0 telemetryd.service telemetryd.socket 2>&1 | indent || true
}
# Run a command inside the container as USER (with its groups).
as_user() {
    local user=$1; shift
    cexec setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
}
# wait_for SECONDS COMMAND...: retry until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

state=""
for _ in $(seq 300); do
    kill -0 "$NSPAWN_PID" 2>/dev/null || { indent <"$WORK/console.log"; log "FAIL: systemd-nspawn exited during boot"; exit 1; }
    [ -n "$LEADER" ] || LEADER=$(leader_pid) || LEADER=""
    if [ -n "$LEADER" ]; then
        state=$(cexec systemctl is-system-running 2>/dev/null) || true
        case $state in running|degraded) break ;; esac
    fi
    sleep 0.2
done
case $state in
    running) pass "container booted: is-system-running=running" ;;
    degraded)
        failed=$(cexec systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')
        log "container booted, degraded by: $failed"
        case " $failed " in
            *telemetryd*|*systemd-sysusers*|*systemd-tmpfiles*|*journal*) fail "boot: units of ours or that we need failed: $failed" ;;
            *) pass "container booted (degraded only by units unrelated to telemetryd: $failed)" ;;
        esac ;;
    *) indent <"$WORK/console.log"; log "FAIL: the container did not finish booting within 60 s (state '$state')"; exit 1 ;;
esac

# Journal checks. journalctl's --after-cursor skips the first entry *matching the filters* as if it were the
# cursor's entry, so entries are selected here, in Python, from everything after the mark.
# jsel.py COND... [-- EXPECT...]: the newest entry meeting every COND must meet every EXPECT; prints it.
# COND and EXPECT: FIELD (present), FIELD=VALUE (equal), FIELD~TEXT (contains).
cat >"$WORK/jsel.py" <<'EOF'
import json, sys
args = sys.argv[1:]
conds, expect = (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args else (args, [])
def value(e, k):
    v = e.get(k)
    return " ".join(map(str, v)) if isinstance(v, list) else v
def name(x):
    return x.split("=", 1)[0].split("~", 1)[0]
def ok(e, x):
    if "=" in x:
        k, v = x.split("=", 1); return value(e, k) == v
    if "~" in x:
        k, v = x.split("~", 1); return v in (value(e, k) or "")
    return bool(value(e, x))
entries = [e for e in (json.loads(l) for l in sys.stdin if l.strip()) if all(ok(e, c) for c in conds)]
if not entries:
    print("no journal entry with " + " ".join(conds)); sys.exit(1)
e = entries[-1]
bad = [f"{name(x)}={value(e, name(x))!r} (want {x})" for x in expect if not ok(e, x)]
print("; ".join(bad) if bad else json.dumps({k: v for k, v in e.items() if not k.startswith("__")}, sort_keys=True))
sys.exit(1 if bad else 0)
EOF
SINCE=""
mark() { SINCE=$(cursor); }   # later journal checks look only at entries after this point
jsel() { cexec journalctl --no-pager -o json ${SINCE:+"--after-cursor=$SINCE"} | python3 "$WORK/jsel.py" "$@"; }
# wait_entry SECONDS COND...: an entry after the mark meets every COND.
wait_entry() {
    local deadline=$((SECONDS + $1)); shift
    until cexec journalctl --sync 2>/dev/null; jsel "$@" >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.3
    done
}
# jcheck DESCRIPTION COND... -- EXPECT...: waits (10 s) for an entry of telemetryd.service after the mark that
# meets every COND, then checks the newest such entry against every EXPECT.
jcheck() {
    local what=$1; shift
    local conds=(_SYSTEMD_UNIT=telemetryd.service) out
    while [ $# -gt 0 ] && [ "$1" != -- ]; do conds+=("$1"); shift; done
    wait_entry 10 "${conds[@]}" || true
    if out=$(jsel "${conds[@]}" "$@"); then
        pass "$what"; printf '%s\n' "$out" | cut -c1-600 | indent
    else
        fail "$what: $out"
    fi
}
cursor() { cexec journalctl --no-pager -q -n 1 -o cat --show-cursor | sed -n 's/^-- cursor: //p'; }
show() { cexec systemctl show -p "$2" --value "$1"; }
main_pid() { show telemetryd.service MainPID; }
has_status_text() { [ -n "$(show telemetryd.service StatusText)" ]; }
is_running() { [ "$(show telemetryd.service SubState)" = running ]; }
restarted_since() { local p; p=$(main_pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$1" ] && is_running; }
uuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }
lines() {  # lines EXEC_ID SCRIPT: one complete execution in protocol v1
    printf '{"v":1,"kind":"start","execution_id":"%s","ts":%s,"script":"%s","version":"1.0.0","environment":"itest","pid":4242}\n' "$1" "$(date +%s)" "$2"
    printf '{"v":1,"kind":"event","execution_id":"%s","ts":%s,"level":"info","operation":"deployment","message":"step"}\n' "$1" "$(date +%s)"
    printf '{"v":1,"kind":"metric","execution_id":"%s","ts":%s,"name":"services_deployed","value":5}\n' "$1" "$(date +%s)"
    printf '{"v":1,"kind":"end","execution_id":"%s","ts":%s,"exit_code":0,"duration_seconds":1.5}\n' "$1" "$(date +%s)"
}
stored() {  # stored EXEC_ID: the document is in the store (read-only, works while the daemon runs)
    [ "$(cexec sqlite3 -readonly /var/lib/telemetryd/telemetry.db \
        "SELECT count(*) FROM documents WHERE execution_id = '$1'" 2>/dev/null)" = 1 ]
}

# ---- what the boot did with the installed files --------------------------------------------------------
phase "installed files applied at boot (sysusers.d, tmpfiles.d, catalog)"
if cexec getent passwd telemetryd >/dev/null && cexec getent group telemetry >/dev/null; then
    pass "systemd-sysusers created user telemetryd and group telemetry from /usr/local/lib/sysusers.d"
else
    fail "user telemetryd or group telemetry missing after boot"
fi
got=$(cexec stat -c '%a %U %G' /var/spool/telemetryd 2>&1 || true)
[ "$got" = "3730 telemetryd telemetry" ] && pass "systemd-tmpfiles created /var/spool/telemetryd: $got" \
    || fail "/var/spool/telemetryd is '$got', expected '3730 telemetryd telemetry'"
cexec journalctl --update-catalog
cexec journalctl --list-catalog 2>/dev/null | grep '^3944deaae2354d7c832a23c431d62065 telemetryd:' >/dev/null \
    && pass "journalctl --update-catalog found the catalog in /usr/local/lib/systemd/catalog" \
    || fail "telemetryd's catalog is not in journalctl --list-catalog"

# ---- test set-up: users, a drop-in, the configuration ------------------------------------------------------
# alice is in group telemetry (may send), bob is not.
cexec systemd-sysusers --inline 'u alice - "itest sender"' 'm alice telemetry' 'u bob - "itest outsider"' 2>/dev/null
cexec mkdir -p /etc/systemd/system/telemetryd.service.d
cexec sh -c "cat >/etc/systemd/system/telemetryd.service.d/50-itest.conf" <<EOF
[Service]
# itest: a short watchdog (the health-check pets are then 1.5 s apart), a fast failure if READY=1 never
# comes, no core dump from the watchdog's SIGABRT, and one journal entry per stored execution.
WatchdogSec=${WATCHDOG_SEC}s
TimeoutStartSec=30s
LimitCORE=0
Environment=TELEMETRY_JOURNAL_EVENTS=true
EOF
# A key set in the file at start reaches the daemon twice (EnvironmentFile= and the file): the reload
# check below changes it, which must still apply.
cexec sh -c 'echo "TELEMETRY_LOG_LEVEL=info" >>/etc/telemetryd/telemetryd.conf'
cexec systemctl daemon-reload
got=$(show telemetryd.service DropInPaths)
[[ $got == *50-itest.conf* ]] || fail "the test's drop-in is not loaded: DropInPaths=$got"

# ---- 1. socket activation -----------------------------------------------------------------------------------
phase "1. socket activation: the first connection starts the daemon, which adopts the socket"
cexec systemctl stop telemetryd.service 2>/dev/null || true
cexec systemctl start telemetryd.socket
[ "$(show telemetryd.socket ActiveState)" = active ] && pass "telemetryd.socket is active" || fail "telemetryd.socket is not active"
got=$(cexec stat -c '%F %a %U %G' /run/telemetryd/telemetryd.sock 2>&1 || true)
[ "$got" = "socket 660 telemetryd telemetry" ] && pass "socket file: $got" || fail "socket file is '$got', expected 'socket 660 telemetryd telemetry'"
inode=$(cexec stat -c %i /run/telemetryd/telemetryd.sock 2>/dev/null || echo none)
st=$(show telemetryd.service ActiveState)
[ "$st" = inactive ] && pass "telemetryd.service inactive before the first connection" || fail "telemetryd.service is '$st' before any connection"
if out=$(as_user alice telemetry status 2>&1); then
    pass "alice (group telemetry): 'telemetry status' answered by the socket-activated daemon"
    printf '%s\n' "$out" | head -n 4 | indent
else
    printf '%s\n' "$out" | indent; fail "'telemetry status' as alice failed"
fi
st=$(show telemetryd.service ActiveState)
[ "$st" = active ] && pass "the connection started telemetryd.service" || fail "telemetryd.service is '$st' after the first connection"
[ "$(cexec stat -c %i /run/telemetryd/telemetryd.sock 2>/dev/null || echo gone)" = "$inode" ] \
    && pass "same socket inode: the daemon adopted the passed socket instead of binding its own" \
    || fail "the socket file was replaced: the daemon bound its own socket"
if out=$(as_user bob telemetry status 2>&1); then
    fail "bob (not in group telemetry) could ask the daemon: $out"
else
    grep -qi 'permission denied' <<<"$out" && pass "bob (not in group telemetry) is refused: permission denied" \
        || { printf '%s\n' "$out" | indent; fail "bob's refusal does not say permission denied"; }
fi

# ---- 2. Type=notify start, STATUS, hardening in effect -----------------------------------------------------
phase "2. systemctl start returns after READY=1; STATUS line; the hardened unit runs"
cexec systemctl stop telemetryd.service
t=$(date +%s%N)
if cexec systemctl start telemetryd.service; then
    ms=$((($(date +%s%N) - t) / 1000000))
    st=$(show telemetryd.service ActiveState)/$(show telemetryd.service SubState)
    # Ready means ready: right after `systemctl start` returns, the daemon answers.
    if [ "$st" = active/running ] && [ "$(show telemetryd.service Type)" = notify ] && cexec telemetry status >/dev/null 2>&1; then
        pass "systemctl start returned after READY=1 (${ms} ms, Type=notify), and the daemon answers at once"
    else
        fail "after systemctl start: $st, Type=$(show telemetryd.service Type), status answered: $(cexec telemetry status >/dev/null 2>&1 && echo yes || echo no)"
    fi
else
    fail "systemctl start telemetryd.service failed (no READY=1 within 30 s?)"
fi
PID=$(main_pid)
START_AT=$SECONDS
got=$(show telemetryd.service WatchdogUSec)
[ "$got" = "${WATCHDOG_SEC}s" ] || fail "WatchdogUSec=$got, not the drop-in's ${WATCHDOG_SEC}s"
status_text=""
wait_for 5 has_status_text || true
status_text=$(show telemetryd.service StatusText)
out=$(cexec systemctl status --no-pager -n 0 telemetryd.service 2>&1 || true)
if [ -n "$status_text" ] && grep -qF "Status: \"$status_text\"" <<<"$out"; then
    pass "systemctl status shows the STATUS line: \"$status_text\""
else
    printf '%s\n' "$out" | indent; fail "no STATUS= line in systemctl status (StatusText='$status_text')"
fi
procstatus=$(cexec cat "/proc/$PID/status" 2>/dev/null || true)
tuid=$(cexec id -u telemetryd); tgid=$(cexec getent group telemetry | cut -d: -f3)
proc_field() { awk -v k="$1:" '$1 == k {$1 = ""; sub(/^ /, ""); print}' <<<"$procstatus"; }
hard_bad=""
[ "$(proc_field Uid | awk '{print $1}')" = "$tuid" ] || hard_bad="$hard_bad uid=$(proc_field Uid)"
[[ " $(proc_field Groups) " == *" $tgid "* ]] || hard_bad="$hard_bad groups=$(proc_field Groups)"
[ "$(proc_field NoNewPrivs)" = 1 ] || hard_bad="$hard_bad NoNewPrivs=$(proc_field NoNewPrivs)"
[ "$(proc_field Seccomp)" = 2 ] || hard_bad="$hard_bad Seccomp=$(proc_field Seccomp)"
[ "$(proc_field CapBnd)" = 0000000000000000 ] || hard_bad="$hard_bad CapBnd=$(proc_field CapBnd)"
[ "$(proc_field CapEff)" = 0000000000000000 ] || hard_bad="$hard_bad CapEff=$(proc_field CapEff)"
[ -z "$hard_bad" ] && pass "daemon runs as telemetryd (+group telemetry), NoNewPrivs, seccomp filter (SystemCallFilter, MemoryDenyWriteExecute), no capabilities" \
    || fail "process $PID is not confined as the unit says:$hard_bad"
[ "$(show telemetryd.service MemoryDenyWriteExecute)" = yes ] || fail "MemoryDenyWriteExecute is not on"
# The metrics listener (TELEMETRY_METRICS_LISTEN, default 127.0.0.1:9469): TCP on loopback, inside the unit.
http_get() {  # the body, whatever the status (python3: curl is not a dependency)
    cexec python3 -c 'import sys, urllib.request as u, urllib.error as e
try: r = u.urlopen(sys.argv[1], timeout=5)
except e.HTTPError as x: r = x
sys.stdout.write(r.read().decode())' "$1"
}
readyz_first=$(http_get http://127.0.0.1:9469/readyz 2>&1 || true)
is_readyz_ready() { [ "$(http_get http://127.0.0.1:9469/readyz 2>/dev/null)" = ready ]; }
if out=$(http_get http://127.0.0.1:9469/metrics 2>&1) && grep '^telemetryd_build_info' <<<"$out" >/dev/null \
   && wait_for 5 is_readyz_ready; then
    pass "metrics listener on 127.0.0.1:9469 serves /metrics and /readyz from the hardened unit"
    [ "$readyz_first" = ready ] && pass "/readyz answers ready as soon as systemctl start returned (READY=1)" \
        || fail "right after READY=1, /readyz answered '${readyz_first//$'\n'/ }'"
else
    printf '%s\n' "$out" | head -n 5 | indent; fail "metrics listener: no telemetryd_build_info on /metrics, or /readyz not ready within 5 s"
fi
# There is no /etc/telemetryd/api-key yet: the unit must start anyway, with SetCredential='s fallback.
cred=$(cexec od -An -c /run/credentials/telemetryd.service/api-key 2>&1 | tr -s ' ' || true)
[ "$cred" = " \n" ] && pass "without /etc/telemetryd/api-key the unit starts; the api-key credential is the empty fallback" \
    || fail "api-key credential without a key file: '$cred' (expected the SetCredential fallback, a lone newline)"

# ---- 3. journal: native entries with structured fields, MESSAGE_IDs, catalog -----------------------------
phase "3. journal: structured fields, MESSAGE_ID, catalog text"
jcheck "started entry (MESSAGE_ID=3944dea…) with its structured fields" \
    MESSAGE_ID=3944deaae2354d7c832a23c431d62065 "_PID=$PID" -- \
    SYSLOG_IDENTIFIER=telemetryd _TRANSPORT=journal PRIORITY CODE_FILE CODE_LINE CODE_FUNC \
    TELEMETRY_SOCKET=/run/telemetryd/telemetryd.sock TELEMETRY_STATE_DIR=/var/lib/telemetryd TELEMETRY_FORWARDING \
    TELEMETRY_SOCKET_ACTIVATED=true
# libdispatch's own "Failed to set thread priority for worker thread: … errno=13" (it may not raise a worker
# thread's priority without CAP_SYS_NICE) is the one line on stderr that is not the daemon's.
stderr_lines=$(cexec journalctl --no-pager -q -o cat "_PID=$PID" _TRANSPORT=stdout | grep -v '^Failed to set thread priority for worker thread' || true)
[ -z "$stderr_lines" ] && pass "the daemon logs native journal entries only (nothing of its own on stderr)" \
    || { printf '%s\n' "$stderr_lines" | tail -n 5 | indent; fail "the daemon wrote log lines to stderr instead of the journal (JOURNAL_STREAM not honoured?)"; }
out=$(cexec journalctl --no-pager -x -q _SYSTEMD_UNIT=telemetryd.service MESSAGE_ID=3944deaae2354d7c832a23c431d62065 2>&1 | tail -n 20)
grep -q 'Subject: telemetryd is ready and accepts telemetry on /run/telemetryd/telemetryd.sock' <<<"$out" \
    && grep -q 'Defined-By: telemetryd' <<<"$out" \
    && pass "journalctl -x explains it with the catalog, @TELEMETRY_SOCKET@ filled in" \
    || { printf '%s\n' "$out" | indent; fail "journalctl -x shows no catalog text for the started entry"; }

# ---- 4. a script execution, and TELEMETRY_JOURNAL_EVENTS=true ------------------------------------------------
phase "4. documents from a member of group telemetry; one journal entry per execution"
E1=$(uuid)
if lines "$E1" systemd-itest | as_user alice telemetry send --wait --strict; then
    stored "$E1" && pass "alice's execution $E1 is in the store" || fail "execution $E1 is not in the store after send --wait"
else
    fail "telemetry send --wait as alice failed"
fi
jcheck "execution entry (MESSAGE_ID=e140fb4…): journalctl TELEMETRY_SCRIPT=systemd-itest finds it" \
    TELEMETRY_SCRIPT=systemd-itest MESSAGE_ID=e140fb4759d6466fa6b763bfb30cf280 -- \
    "TELEMETRY_EXECUTION_ID=$E1" TELEMETRY_EXIT_CODE=0 TELEMETRY_STATUS TELEMETRY_DURATION_SECONDS SYSLOG_IDENTIFIER=telemetryd

# ---- 5. reload -------------------------------------------------------------------------------------------------
phase "5. systemctl reload: SIGHUP, applied live, same PID; an invalid file keeps the old configuration"
mark
cexec sed -i 's/^TELEMETRY_LOG_LEVEL=info$/TELEMETRY_LOG_LEVEL=debug/' /etc/telemetryd/telemetryd.conf
cexec sh -c 'echo TELEMETRY_RETENTION_DAYS=7 >>/etc/telemetryd/telemetryd.conf'
if cexec systemctl reload telemetryd.service; then
    wait_for 10 is_running || true
    [ "$(main_pid)" = "$PID" ] && [ "$(show telemetryd.service SubState)" = running ] \
        && pass "systemctl reload: exit 0, back to running, same PID $PID" \
        || fail "after reload: MainPID $(main_pid) (was $PID), SubState $(show telemetryd.service SubState)"
else
    fail "systemctl reload telemetryd failed"
fi
jcheck "reloaded entry (MESSAGE_ID=2c8f417…): log level applied live, retention needs a restart" \
    MESSAGE_ID=2c8f417b0cc9423cb924dfa1b31edcea "_PID=$PID" -- \
    TELEMETRY_CHANGED~TELEMETRY_LOG_LEVEL TELEMETRY_RESTART_REQUIRED~TELEMETRY_RETENTION_DAYS
wait_entry 5 _PID=1 UNIT=telemetryd.service 'MESSAGE~Reloaded ' \
    && pass "PID 1 logged the reload as complete (RELOADING=1 … READY=1)" || fail "PID 1 did not log 'Reloaded telemetryd.service'"
mark
cexec sh -c 'echo TELEMETRY_BATCH_SIZE=0 >>/etc/telemetryd/telemetryd.conf'
cexec systemctl reload telemetryd.service || fail "systemctl reload (invalid file) failed"
jcheck "reload-rejected entry (MESSAGE_ID=37dcbe6…) for an invalid file, naming the problem" \
    MESSAGE_ID=37dcbe6d785f46c3ad5dcb8edae312a3 "_PID=$PID" -- MESSAGE~TELEMETRY_BATCH_SIZE PRIORITY=3
sleep 1.2   # STATUS= is sent at most once a second
st=$(show telemetryd.service StatusText)
[ "$(main_pid)" = "$PID" ] && [ "$(show telemetryd.service ActiveState)" = active ] \
    && pass "the daemon keeps running (same PID) with the old configuration" || fail "the daemon did not survive an invalid reload"
grep -q 'TELEMETRY_BATCH_SIZE' <<<"$st" && pass "STATUS says why: \"$st\"" || fail "STATUS does not name the invalid key: \"$st\""
cexec sed -i '/^TELEMETRY_BATCH_SIZE=0$/d; /^TELEMETRY_RETENTION_DAYS=7$/d' /etc/telemetryd/telemetryd.conf

# ---- 6. delivery under the hardening (libcurl, AF_INET, seccomp, MemoryDenyWriteExecute) --------------------
phase "6. delivery to an endpoint (loopback receiver): endpoint applied by reload, failures in the journal"
cexec systemd-run --quiet --unit=itest-receiver python3 /opt/telemetryd-itest/receiver.py /run/itest-receiver --http --port 18080 \
    || fail "cannot start the test receiver"
wait_for 15 cexec python3 -c 'import socket; socket.create_connection(("127.0.0.1", 18080), 1)' \
    || { cexec journalctl --no-pager -u itest-receiver | tail -n 20 | indent; fail "the test receiver did not come up"; }
# Forwarding is switched on at a start (a reload can move it, not switch it on): the endpoint, and the API
# key, root-only on disk and handed over by systemd (LoadCredential=) when the service starts.
KEY=itest-key-$RANDOM$RANDOM
cexec sh -c "umask 077; echo $KEY >/etc/telemetryd/api-key"
cexec sh -c 'printf "%s\n" TELEMETRY_ENDPOINT=http://127.0.0.1:18080/first \
    TELEMETRY_API_KEY_FILE=/run/credentials/telemetryd.service/api-key >>/etc/telemetryd/telemetryd.conf'
cexec systemctl restart telemetryd.service || fail "systemctl restart telemetryd"
PID=$(main_pid); START_AT=$SECONDS
[ "$(cexec cat /run/credentials/telemetryd.service/api-key 2>&1)" = "$KEY" ] \
    && pass "LoadCredential= copied /etc/telemetryd/api-key (root 0600) to the daemon's credentials" \
    || fail "the api-key credential does not hold the key from /etc/telemetryd/api-key"
if out=$(cexec telemetry test-connection 2>&1); then
    pass "telemetry test-connection from the hardened daemon (libcurl, AF_INET): $(head -n 1 <<<"$out")"
else
    printf '%s\n' "$out" | indent; fail "telemetry test-connection failed"
fi
mark
cexec sed -i 's|^TELEMETRY_ENDPOINT=.*|TELEMETRY_ENDPOINT=http://127.0.0.1:18080/api/v1/metrics|' /etc/telemetryd/telemetryd.conf
cexec systemctl reload telemetryd.service || fail "systemctl reload (new endpoint)"
jcheck "reload moved delivery to the new endpoint live" MESSAGE_ID=2c8f417b0cc9423cb924dfa1b31edcea "_PID=$PID" -- \
    TELEMETRY_CHANGED~TELEMETRY_ENDPOINT
# One 503 (retried: delivery-failed entry), then accepted.
cexec python3 -c 'import urllib.request as u; u.urlopen(u.Request("http://127.0.0.1:18080/_control", data=b"{\"mode\":\"status\",\"status\":503,\"count\":1}", headers={"Content-Type":"application/json"}), timeout=5).read()' \
    || fail "cannot program the receiver"
E2=$(uuid)
mark
lines "$E2" systemd-itest | as_user alice telemetry send --wait --strict || fail "send E2"
if out=$(cexec telemetry flush --timeout 15 2>&1); then
    pass "telemetry flush: delivered after one 503 ($(head -n 1 <<<"$out" | cut -c1-100))"
else
    printf '%s\n' "$out" | indent; fail "telemetry flush did not deliver"
fi
if cexec python3 -c '
import json, sys
for line in open("/run/itest-receiver/requests.jsonl"):
    r = json.loads(line)
    if sys.argv[1] in (r.get("body") or "") and r["headers"].get("authorization") == "Bearer " + sys.argv[2] \
            and r.get("path") == "/api/v1/metrics":
        sys.exit(0)
sys.exit(1)' "$E2" "$KEY"; then
    pass "the receiver got execution $E2 at the new endpoint, with the credential's key"
else
    cexec tail -c 2000 /run/itest-receiver/requests.jsonl | indent || true
    fail "the receiver did not get execution $E2 at /api/v1/metrics with 'Authorization: Bearer <the credential>'"
fi
jcheck "delivery-failed entry (MESSAGE_ID=281c71b…) for the 503" MESSAGE_ID=281c71bc61dc4142a7f35a3506343f80 -- \
    TELEMETRY_ENDPOINT_HOST=127.0.0.1:18080 "TELEMETRY_REASON~HTTP 503" PRIORITY=4
# A 400: not retryable, the batch becomes a dead letter.
cexec python3 -c 'import urllib.request as u; u.urlopen(u.Request("http://127.0.0.1:18080/_control", data=b"{\"mode\":\"status\",\"status\":400,\"body\":\"bad schema\"}", headers={"Content-Type":"application/json"}), timeout=5).read()' \
    || fail "cannot program the receiver"
E3=$(uuid)
mark
lines "$E3" systemd-itest | as_user alice telemetry send --wait --strict || fail "send E3"
cexec telemetry flush --timeout 10 >/dev/null 2>&1 || true      # exits 1: a batch was refused
jcheck "dead-letter entry (MESSAGE_ID=5fdc2e4…) for the 400" MESSAGE_ID=5fdc2e4fe6e74223ab707fc43cc7298d -- \
    TELEMETRY_HTTP_STATUS=400 TELEMETRY_BATCH_ID
# Back to the local store only; the next start (the watchdog's restart) applies it.
cexec sed -i '/^TELEMETRY_ENDPOINT=/d; /^TELEMETRY_API_KEY_FILE=/d' /etc/telemetryd/telemetryd.conf

# ---- 7. watchdog --------------------------------------------------------------------------------------------------
phase "7. watchdog: a healthy daemon is kept, a wedged one (SIGSTOP) is restarted"
left=$((START_AT + 3 * WATCHDOG_SEC - SECONDS))
[ "$left" -le 0 ] || sleep "$left"
ts1=$(show telemetryd.service WatchdogTimestampMonotonic)
sleep "$WATCHDOG_SEC"
ts2=$(show telemetryd.service WatchdogTimestampMonotonic)
if [ "$(main_pid)" = "$PID" ] && [ "$(show telemetryd.service NRestarts)" = 0 ] && [ "${ts2:-0}" -gt "${ts1:-0}" ]; then
    pass "healthy for $((SECONDS - START_AT)) s with WatchdogSec=${WATCHDOG_SEC}s: same PID, no restart, pets keep coming"
else
    fail "watchdog while healthy: MainPID $(main_pid) (was $PID), NRestarts $(show telemetryd.service NRestarts), last pet $ts1 -> $ts2"
fi
mark
cexec kill -STOP "$PID"
t=$SECONDS
if wait_for 30 restarted_since "$PID"; then
    pass "wedged daemon replaced after $((SECONDS - t)) s: new PID $(main_pid), NRestarts=$(show telemetryd.service NRestarts)"
else
    fail "the wedged daemon was not restarted within 30 s (MainPID $(main_pid), $(show telemetryd.service SubState))"
fi
wait_entry 5 _PID=1 UNIT=telemetryd.service 'MESSAGE~Watchdog timeout' \
    && pass "PID 1 logged 'Watchdog timeout' for telemetryd.service" || fail "no 'Watchdog timeout' from PID 1"
cexec kill -0 "$PID" 2>/dev/null && fail "the wedged process $PID is still alive"
PID=$(main_pid)

# ---- 8. stop drains ---------------------------------------------------------------------------------------------
phase "8. systemctl stop drains: a document sent just before the stop is stored"
E4=$(uuid)
mark
lines "$E4" systemd-itest | as_user alice telemetry send || fail "send E4"
t=$(date +%s%N)
cexec systemctl stop telemetryd.service || fail "systemctl stop failed"
ms=$((($(date +%s%N) - t) / 1000000))
res=$(show telemetryd.service Result); code=$(show telemetryd.service ExecMainStatus)
if [ "$res" = success ] && [ "$code" = 0 ] && [ "$ms" -lt 20000 ]; then
    pass "systemctl stop took ${ms} ms (< TimeoutStopSec=20s), Result=success, exit status 0"
else
    fail "stop: ${ms} ms, Result=$res, exit status $code"
fi
stored "$E4" && pass "execution $E4, sent just before the stop, is in the store" || fail "execution $E4 sent before the stop is not in the store"
jcheck "stopped entry (MESSAGE_ID=f9938a7…)" MESSAGE_ID=f9938a7fe9d545e5bbe9a252271b18d6 -- TELEMETRY_PENDING_DOCUMENTS
[ "$(cexec stat -c %i /run/telemetryd/telemetryd.sock 2>/dev/null || echo gone)" = "$inode" ] \
    && pass "the socket file survived the stop (telemetryd.socket still owns it)" \
    || fail "the socket file is gone or replaced after the stop (was the runtime directory removed?)"
if as_user alice telemetry status >/dev/null 2>&1 && [ "$(show telemetryd.service ActiveState)" = active ]; then
    pass "the next connection activates the daemon again"
else
    fail "no re-activation by the socket after the stop"
fi

# ---- 9. spool ----------------------------------------------------------------------------------------------------
phase "9. spool: while the socket is down, alice's lines go to /var/spool/telemetryd; the daemon takes them in"
cexec systemctl stop telemetryd.socket telemetryd.service
E5=$(uuid)
out=$(lines "$E5" systemd-itest | as_user alice telemetry send 2>&1) || true
f=$(cexec sh -c 'ls /var/spool/telemetryd/*.jsonl 2>/dev/null' | head -n 1)
got=$( [ -n "$f" ] && cexec stat -c '%a %U %G' "$f" 2>/dev/null || echo none)
[ "$got" = "640 alice telemetry" ] && pass "spool file $f: $got (group from the setgid directory)" \
    || { printf '%s\n' "$out" | indent; fail "spool file: '$got', expected '640 alice telemetry'"; }
cexec systemctl start telemetryd.socket telemetryd.service || fail "start after the spool test"
stored "$E5" && pass "the restarted daemon took the spooled execution $E5 in before READY=1" || fail "spooled execution $E5 is not in the store"
[ -z "$(cexec sh -c 'ls /var/spool/telemetryd/' 2>/dev/null)" ] && pass "the spool directory is empty again" \
    || fail "spool files left: $(cexec ls /var/spool/telemetryd | tr '\n' ' ')"

# ---- result ----------------------------------------------------------------------------------------------------
if [ "$FAILS" -ne 0 ]; then
    dump_journal
    log "$FAILS check(s) FAILED"
    exit 1
fi
log "all checks passed"
