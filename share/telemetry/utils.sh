# shellcheck shell=bash
#
# telemetry/utils.sh: instrument a bash script for telemetryd.
#
#   source "$(dirname "$0")/telemetry/utils.sh"
#   telemetry_init "deploy-service" "v1.0.0"
#   telemetry_start_timer "deployment"
#   ...
#   telemetry_track_success "deployment"
#
# Reference, including what every measurement means: docs/bash-library.md.
#
# Rules this file keeps:
# - Every telemetry_* function returns 0, and telemetry never changes the script's exit status,
#   standard output or standard error (apart from the documented warnings for invalid metrics).
# - An event call (telemetry_track_*, telemetry_record_metric, telemetry_add_tag) is one builtin
#   printf to a private pipe: no fork, no subshell, no external command.
# - Opt-out (TELEMETRY_ENABLED=false|0|no|off, DO_NOT_TRACK=1) makes every function a no-op that
#   starts no process.
# - Every global name is telemetry_* or _telemetry_*.
# - Every function body runs with its stderr on /dev/null (`{ ...; } 2>/dev/null`), so `set -x`
#   traces of the library's internals never reach the script's stderr, and the calls look the same
#   in a trace whether telemetry is on or off. The few messages meant for the script's stderr (invalid
#   metrics, TELEMETRY_DEBUG's report) are printed by a second step that runs only when there is a
#   message, through fd 3, a copy of the caller's stderr made for that step only.

# Sourced a second time: keep the state of the first.
if [[ -n ${_telemetry_loaded-} ]]; then
    # shellcheck disable=SC2317
    return 0 2>/dev/null || true
fi

# ---- bash older than 4.4: every function is a no-op ---------------------------------------------------

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    _telemetry_loaded=old-bash
    telemetry_init() { return 0; }
    telemetry_start_timer() { return 0; }
    telemetry_track_success() { return 0; }
    telemetry_track_error() { return 0; }
    telemetry_track_warning() { return 0; }
    telemetry_track_info() { return 0; }
    telemetry_track_debug() { return 0; }
    telemetry_record_metric() { return 0; }
    telemetry_add_tag() { return 0; }
    telemetry_flush() { return 0; }
    telemetry_finish() { return 0; }
    telemetry_trap_exit() { trap -- "${1-}" EXIT; return 0; }
    telemetry_get_duration() { echo 0; return 0; }
    telemetry_get_memory_usage() { echo 0; return 0; }
    telemetry_get_cpu_usage() { echo 0; return 0; }
    telemetry_get_disk_usage() { echo 0; return 0; }
    telemetry_get_network_usage() { echo 0; return 0; }
    telemetry_status() { echo "telemetry: off (bash $BASH_VERSION is older than 4.4)"; return 0; }
    telemetry_test_connection() { telemetry_status; }
    telemetry_logs() { return 0; }
    telemetry_reset() { return 0; }
    # shellcheck disable=SC2317
    return 0 2>/dev/null || true
fi

_telemetry_loaded=1

# Global state, set up in a function so that a `set -x` trace of the `source` line is one line.
_telemetry_setup() {

    # ---- state ------------------------------------------------------------------------------------------

    # '' before telemetry_init, off (opted out), on (initialized), ended (the execution has ended).
    _telemetry_state=''
    _telemetry_why=''            # why telemetry is off, or why there is no channel
    _telemetry_id=''
    _telemetry_script=''
    _telemetry_version=''
    _telemetry_env=''
    _telemetry_t0=0              # telemetry_init, microseconds since the epoch
    _telemetry_us=0              # scratch: microseconds since the epoch (_telemetry_now)
    _telemetry_owner=''          # $BASHPID of the shell that ran telemetry_init
    _telemetry_client=''
    _telemetry_wfd=''            # our end of the client's stdin; empty: no channel (events are no-ops)
    _telemetry_rfd=''            # the client's replies
    _telemetry_timeout_us=2000000
    _telemetry_hooked=''         # 1 while the library's EXIT trap is installed
    _telemetry_user_exit=''      # the script's own EXIT trap code, run after the library's
    _telemetry_prefix='{ _telemetry_on_exit; } 2>/dev/null && { :; } 2>/dev/null'
    _telemetry_last_error=''
    _telemetry_w=''              # a message for the script's stderr, printed by _telemetry_warned
    _telemetry_f=''              # scratch: an escaped JSON string (no quotes), or a formatted number
    _telemetry_fl=0              # scratch: its length in bytes
    _telemetry_kb=0              # scratch: a size (KiB or bytes)
    _telemetry_s_ticks=0         # scratch: CPU clock ticks of the shell and its waited-for children
    _telemetry_s_cflt=0          # scratch: page faults of the waited-for children
    _telemetry_ticks0=0          # baselines at telemetry_init
    _telemetry_io0=0
    _telemetry_net0=0
    _telemetry_cflt=0            # children's page faults at the last sample
    _telemetry_cpeak_kb=0        # largest growth of the children's faulted memory between two samples
    # Lines not written (no channel, or it closed), flushes confirmed and not, time of the last
    # confirmed flush (microseconds since the epoch, 0: none).
    declare -gi _telemetry_pending=0 _telemetry_dropped=0 _telemetry_flush_ok=0 _telemetry_flush_failed=0
    declare -gi _telemetry_confirmed_us=0
    declare -gA _telemetry_timers=() _telemetry_metric_seen=()
    declare -ga _telemetry_log=()

    # Printable ASCII other than '"' and '\': text that goes into a JSON string as it is.
    _telemetry_pat_unsafe='*[!]-~ !#-[]*'
    _telemetry_pat_nonascii=$'*[\x80-\xff]*'
    _telemetry_bs=\\
    _telemetry_q='"'
    # Control characters without a short JSON escape, and their \u00XX escapes.
    _telemetry_cc=(
        $'\x01' $'\x02' $'\x03' $'\x04' $'\x05' $'\x06' $'\x07' $'\x08' $'\x0b' $'\x0c' $'\x0e' $'\x0f' $'\x10' $'\x11'
        $'\x12' $'\x13' $'\x14' $'\x15' $'\x16' $'\x17' $'\x18' $'\x19' $'\x1a' $'\x1b' $'\x1c' $'\x1d' $'\x1e' $'\x1f'
    )
    _telemetry_ce=(
        '\u0001' '\u0002' '\u0003' '\u0004' '\u0005' '\u0006' '\u0007'
        '\u0008' '\u000b' '\u000c' '\u000e' '\u000f' '\u0010' '\u0011'
        '\u0012' '\u0013' '\u0014' '\u0015' '\u0016' '\u0017' '\u0018'
        '\u0019' '\u001a' '\u001b' '\u001c' '\u001d' '\u001e' '\u001f'
    )
    # Well-formed UTF-8 (RFC 3629), matched byte by byte under LC_ALL=C.
    _telemetry_re_char=$'[\x01-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf][\x80-\xbf]|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf][\x80-\xbf]|[\xf1-\xf3][\x80-\xbf][\x80-\xbf][\x80-\xbf]|\xf4[\x80-\x8f][\x80-\xbf][\x80-\xbf]'
    _telemetry_re_valid="^($_telemetry_re_char)*\$"
    _telemetry_re_prefix="^($_telemetry_re_char)*"
    _telemetry_re_tail=$'([\xc0-\xff])([\x80-\xbf]*)$'
    _telemetry_re_number='^([+-]?)([0-9]*)(\.([0-9]*))?([eE]([+-]?)([0-9]+))?$'
    _telemetry_re_metric='^[A-Za-z_][A-Za-z0-9_.:-]*$'
    return 0
} 2>/dev/null
_telemetry_setup

# ---- small helpers ----------------------------------------------------------------------------------

# _telemetry_note TEXT: one line in the library's own log (telemetry_logs); the last 100-200 are kept.
# The time is kept as seconds since the epoch and formatted by telemetry_logs.
_telemetry_note() {
    _telemetry_log+=("${EPOCHREALTIME%%[.,]*} $1")
    if ((${#_telemetry_log[@]} > 200)); then
        _telemetry_log=("${_telemetry_log[@]:100}")
    fi
    return 0
}

# _telemetry_now: microseconds since the epoch in _telemetry_us.
_telemetry_now() {
    if [[ -n ${EPOCHREALTIME-} ]]; then
        _telemetry_us=${EPOCHREALTIME/[.,]/}
        _telemetry_us=$((10#$_telemetry_us))
    else
        printf -v _telemetry_us '%(%s)T' -1
        _telemetry_us=$((_telemetry_us * 1000000))
    fi
    return 0
}

# _telemetry_secs MICROSECONDS: "S.UUUUUU" in _telemetry_f.
_telemetry_secs() {
    local us=$1
    if ((us < 0)); then us=0; fi
    printf -v _telemetry_f '%d.%06d' "$((us / 1000000))" "$((us % 1000000))"
    return 0
}

# _telemetry_field VALUE MAX_BYTES MAX_ESCAPED_BYTES
# VALUE as the inside of a JSON string in _telemetry_f, its length in bytes in _telemetry_fl. Invalid
# UTF-8 bytes become U+FFFD; the text is cut (never inside a character or an escape) so that it holds
# at most MAX_BYTES bytes unescaped and MAX_ESCAPED_BYTES escaped.
_telemetry_field() {
    local v=$1 max=$2 emax=$3 out c i n tries=0
    # shellcheck disable=SC2053  # a pattern on purpose
    if [[ $v != $_telemetry_pat_unsafe ]]; then
        if ((${#v} > max)); then v=${v:0:max}; fi
        if ((${#v} > emax)); then v=${v:0:emax}; fi
        _telemetry_f=$v
        _telemetry_fl=${#v}
        return 0
    fi
    local LC_ALL=C
    while :; do
        if ((${#v} > max)); then
            v=${v:0:max}
            # Do not leave half a character at the end.
            if [[ $v =~ $_telemetry_re_tail ]]; then
                c=${BASH_REMATCH[1]}
                n=${#BASH_REMATCH[2]}
                if [[ $c < $'\xe0' ]]; then i=1; elif [[ $c < $'\xf0' ]]; then i=2; else i=3; fi
                if ((n < i)); then v=${v:0:${#v}-n-1}; fi
            fi
        fi
        # shellcheck disable=SC2053
        if [[ $v == $_telemetry_pat_nonascii ]] && ! [[ $v =~ $_telemetry_re_valid ]]; then
            out=''
            while [[ -n $v ]]; do
                [[ $v =~ $_telemetry_re_prefix ]]
                c=${BASH_REMATCH[0]}
                out+=$c
                v=${v:${#c}}
                if [[ -n $v ]]; then
                    out+=$'\xef\xbf\xbd'
                    v=${v:1}
                fi
            done
            v=$out
            if ((${#v} > max)); then continue; fi
        fi
        out=${v//"$_telemetry_bs"/"$_telemetry_bs$_telemetry_bs"}
        out=${out//"$_telemetry_q"/"$_telemetry_bs$_telemetry_q"}
        if [[ $out == *[$'\x01'-$'\x1f']* ]]; then
            out=${out//$'\n'/"${_telemetry_bs}n"}
            out=${out//$'\t'/"${_telemetry_bs}t"}
            out=${out//$'\r'/"${_telemetry_bs}r"}
            if [[ $out == *[$'\x01'-$'\x1f']* ]]; then
                for i in "${!_telemetry_cc[@]}"; do
                    c=${_telemetry_cc[i]}
                    if [[ $out == *"$c"* ]]; then out=${out//"$c"/"${_telemetry_ce[i]}"}; fi
                done
            fi
        fi
        if ((${#out} <= emax)); then break; fi
        tries=$((tries + 1))
        if ((tries > 8)); then out=''; break; fi
        # Each byte dropped from the text shortens the escaped form by at least one byte.
        max=$((${#v} - (${#out} - emax)))
        if ((max < 0)); then max=0; fi
    done
    _telemetry_f=$out
    _telemetry_fl=${#out}
    return 0
}

# _telemetry_number TEXT: TEXT as a finite JSON number in _telemetry_f, or status 1.
# Accepts what people write (+5, 007, .5, 5., 1E3, surrounding blanks) and normalizes it.
_telemetry_number() {
    local v=$1 sign int frac exp esign edigits mag lead
    v=${v#"${v%%[![:space:]]*}"}
    v=${v%"${v##*[![:space:]]}"}
    [[ $v =~ $_telemetry_re_number ]] || return 1
    sign=${BASH_REMATCH[1]}
    int=${BASH_REMATCH[2]}
    frac=${BASH_REMATCH[4]}
    exp=${BASH_REMATCH[5]}
    esign=${BASH_REMATCH[6]}
    edigits=${BASH_REMATCH[7]}
    [[ -n $int$frac ]] || return 1
    [[ $sign == - ]] || sign=''
    int=${int#"${int%%[!0]*}"}
    lead=${frac%%[!0]*}
    # Order of magnitude, to refuse what would overflow a double (1e999).
    if [[ -n $int ]]; then
        mag=$((${#int} - 1))
    elif [[ $frac == *[1-9]* ]]; then
        mag=$((-${#lead} - 1))
    else
        mag=0
    fi
    if [[ -n $exp ]]; then
        edigits=${edigits#"${edigits%%[!0]*}"}
        if ((${#edigits} > 6)); then
            [[ $esign == - ]] || return 1
            _telemetry_f=0
            return 0
        fi
        if [[ $esign == - ]]; then mag=$((mag - 10#0$edigits)); else mag=$((mag + 10#0$edigits)); fi
    fi
    if ((mag > 307)); then return 1; fi
    _telemetry_f=$sign${int:-0}
    if [[ -n $frac ]]; then _telemetry_f+=.$frac; fi
    if [[ -n $exp ]]; then _telemetry_f+=e$esign${edigits:-0}; fi
    return 0
}

# ---- the channel ------------------------------------------------------------------------------------
#
# A coprocess that is the "holder": it runs `telemetry send` in the background with our pipe as its stdin
# and the reply pipe as its stdout, waits for it, and, should the client ever exit before the pipe is
# closed, says so on the reply pipe and keeps draining the pipe. Once its descriptors are duplicated, the
# coprocess is disowned and bash's copies of its descriptors are closed. So:
# - a write never meets a pipe without a reader (no SIGPIPE in the script), unless both the holder
#   and the client are killed;
# - `wait` without arguments does not wait for the holder (disowned) nor the client (the holder's child),
#   and a later `coproc` of the script's own does not warn (bash's coprocess descriptors are closed);
# - our descriptors are private copies (close-on-exec like the coproc's): programs the script runs
#   do not inherit them, and subshells keep them, so events from subshells and pipelines arrive;
# - two processes are started (the holder and the client), not more: telemetry_init stays cheap.

_telemetry_open() {
    local client=$1
    # shellcheck disable=SC2034  # _telemetry_channel is the coproc's array
    coproc _telemetry_channel {
        trap - ERR DEBUG RETURN
        set +eEuTx +o pipefail
        IFS= read -r _telemetry_go || exit 0
        [[ $_telemetry_go == go ]] || exit 0
        if [[ -n ${!TELEMETRY_@} ]]; then
            # shellcheck disable=SC2163
            export "${!TELEMETRY_@}"
        fi
        "$client" send --quiet <&0 &
        wait "$!"
        printf '{"v":1,"ok":false,"request":"flush","error":"the telemetry client exited with status %d","channel_closed":true}\n' "$?"
        # Until every writer is gone, drain the pipe so that no write of the script blocks.
        if IFS= read -r -n 1 _telemetry_go; then
            if type -P cat >/dev/null; then exec cat >/dev/null; fi
            while IFS= read -r _telemetry_go; do :; done
        fi
    } 2>/dev/null
    if [[ -z ${_telemetry_channel[1]-} || -z ${_telemetry_channel[0]-} ]]; then
        _telemetry_why="could not start the coprocess"
        return 1
    fi
    if ! exec {_telemetry_wfd}>&"${_telemetry_channel[1]}" {_telemetry_rfd}<&"${_telemetry_channel[0]}" ||
        [[ -z $_telemetry_wfd || -z $_telemetry_rfd ]]; then
        _telemetry_close
        printf 'stop\n' >&"${_telemetry_channel[1]}"
        _telemetry_why="could not duplicate the coprocess's descriptors"
        return 1
    fi
    # bash's own copies: closing them marks the coprocess as gone for bash (no warning at a later coproc).
    eval "exec ${_telemetry_channel[1]}>&- ${_telemetry_channel[0]}<&-"
    disown "${_telemetry_channel_PID-}" 2>/dev/null || :
    if ! printf 'go\n' >&"$_telemetry_wfd"; then
        _telemetry_close
        _telemetry_why="the coprocess did not start"
        return 1
    fi
    return 0
}

_telemetry_close() {
    if [[ -n $_telemetry_wfd ]]; then exec {_telemetry_wfd}>&-; fi
    if [[ -n $_telemetry_rfd ]]; then exec {_telemetry_rfd}<&-; fi
    _telemetry_wfd=''
    _telemetry_rfd=''
    return 0
}

# A write to the channel failed (someone closed our descriptor): stop writing.
_telemetry_dead_write() {
    _telemetry_dropped+=1
    _telemetry_dead "cannot write to the telemetry client"
    return 0
}

# _telemetry_dead REASON: the channel is gone; every later event is a no-op.
_telemetry_dead() {
    _telemetry_last_error=$1
    _telemetry_note "channel closed: $1"
    _telemetry_close
    return 0
}

# _telemetry_roundtrip TIMEOUT_US [REQUEST [LINES]]: send LINES and a flush (or sync: durable only, no delivery) and wait
# for its reply. Status 0 when the daemon (or the client's spool) confirmed the lines durable.
# Replies come in order, one per control line; replies to earlier flushes that timed out are read
# and discarded first.
_telemetry_roundtrip() {
    local timeout=$1 request=${2:-flush} lines=${3-} deadline left line rest='' ok=1
    [[ -n $_telemetry_wfd ]] || return 1
    # LINES (the exit path's metrics and end) leave in the same write as the request: one read for the
    # client and the daemon, one commit. (printf with a single %s writes once; with the request in the
    # format too, bash wrote LINES and the request in separate writes.)
    local all=$lines'{"v":1,"kind":"control","request":"'$request$'"}\n'
    if ! printf '%s' "$all" >&"$_telemetry_wfd"; then
        if [[ -n $lines ]]; then
            lines=${lines//[!$'\n']/}
            _telemetry_dropped+=${#lines}
        fi
        _telemetry_dead "cannot write to the telemetry client"
        return 1
    fi
    _telemetry_pending+=1
    _telemetry_now
    deadline=$((_telemetry_us + timeout))
    while ((_telemetry_pending > 0)); do
        _telemetry_now
        left=$((deadline - _telemetry_us))
        if ((left <= 0)); then
            _telemetry_last_error="no reply within $((timeout / 1000)) ms (TELEMETRY_FLUSH_TIMEOUT)"
            break
        fi
        _telemetry_secs "$left"
        # bash reads a pipe a byte at a time, and with -t it waits (pselect) before every byte: wait with
        # the timeout for the first byte only; the client writes each reply line whole, in one write.
        if IFS= read -r -t "$_telemetry_f" -n 1 -u "$_telemetry_rfd" line; then
            if [[ -n $line ]]; then
                rest=''
                IFS= read -r -u "$_telemetry_rfd" rest || :
                line+=$rest
            fi
            if [[ $line == *'"channel_closed":true'* ]]; then
                _telemetry_pending=0
                _telemetry_dead "the telemetry client exited"
                break
            fi
            _telemetry_pending=$((_telemetry_pending - 1))
            if ((_telemetry_pending == 0)); then
                if [[ $line == *'"durable":true'* ]]; then
                    # Durable (delivery, when an endpoint is set, is reported but not waited on here).
                    ok=0
                else
                    line=${line#*\"error\":\"}
                    _telemetry_last_error=${line%%\"*}
                fi
            fi
        elif (($? > 128)); then
            _telemetry_last_error="no reply within $((timeout / 1000)) ms (TELEMETRY_FLUSH_TIMEOUT)"
            break
        else
            _telemetry_pending=0
            _telemetry_dead "the telemetry client closed its replies"
            break
        fi
    done
    if ((ok == 0)); then
        _telemetry_flush_ok+=1
        _telemetry_confirmed_us=$_telemetry_us
    else
        _telemetry_flush_failed+=1
        _telemetry_note "flush not confirmed: $_telemetry_last_error"
    fi
    return "$ok"
}

# ---- measurements (docs/bash-library.md, "Measurements") --------------------------------------------

# Each /proc file is read whole with one `read -d ''` (bash reads it in blocks; reading it line by
# line would make the kernel format it again for every line), then taken apart with expansions.

# CPU ticks of the shell and its waited-for children, and the children's page faults.
_telemetry_read_stat() {
    local - line='' IFS=$' \t\n' i=1
    local -a f
    set -f
    _telemetry_s_ticks=0
    _telemetry_s_cflt=0
    read -r -d '' line <"/proc/$$/stat" || :
    # "PID (COMM) STATE PPID ...": COMM may hold blanks. Find the word that ends it by scanning forward
    # (cheap: COMM is one word almost always), and take the slow way when what follows is not a state
    # letter and a number (a COMM with ") " inside).
    # shellcheck disable=SC2206
    f=($line)
    while [[ ${f[i]-} != *')' ]]; do
        ((++i < ${#f[@]})) || return 1
    done
    if [[ ${f[i + 1]-} != [A-Za-z] || ${f[i + 2]-} == *[!0-9]* ]]; then
        line=${line##*) }
        # shellcheck disable=SC2206
        f=(x $line)
        i=0
    fi
    ((${#f[@]} > i + 15)) || return 1
    # Fields 11 and 13 (cminflt, cmajflt), 14 to 17 (utime, stime, cutime, cstime): field k is f[i + k - 2].
    _telemetry_s_ticks=$((f[i + 12] + f[i + 13] + f[i + 14] + f[i + 15]))
    _telemetry_s_cflt=$((f[i + 9] + f[i + 11]))
    return 0
}

# A sample point for the children's memory estimate.
_telemetry_sample() {
    local grown
    _telemetry_read_stat || return 0
    grown=$(((_telemetry_s_cflt - _telemetry_cflt) * 4))
    if ((grown > _telemetry_cpeak_kb)); then _telemetry_cpeak_kb=$grown; fi
    _telemetry_cflt=$_telemetry_s_cflt
    return 0
}

# Memory in KiB: the larger of the shell's peak RSS and the children's estimate. With an argument,
# the /proc/PID/stat figures read just before are used instead of reading the file again.
_telemetry_memory_kb() {
    local text='' peak=0 grown
    read -r -d '' text <"/proc/$$/status" || :
    # A regular expression: matching the pattern *VmHWM: against 1.4 KiB costs twice as much.
    if [[ $text =~ VmHWM:[[:blank:]]*([0-9]+) ]]; then peak=${BASH_REMATCH[1]}; fi
    peak=$((10#0$peak))
    if [[ -n ${1-} ]] || _telemetry_read_stat; then
        grown=$(((_telemetry_s_cflt - _telemetry_cflt) * 4))
        if ((grown > peak)); then peak=$grown; fi
    fi
    if ((_telemetry_cpeak_kb > peak)); then peak=$_telemetry_cpeak_kb; fi
    _telemetry_kb=$peak
    return 0
}

# Bytes read from and written to storage by the shell and its waited-for children.
_telemetry_io_bytes() {
    local - text='' r=0 w=0 c=0 IFS=$' \t\n'
    local -a f
    set -f
    read -r -d '' text <"/proc/$$/io" || :
    # "rchar: N wchar: N syscr: N syscw: N read_bytes: N write_bytes: N cancelled_write_bytes: N", split once.
    # shellcheck disable=SC2206
    f=($text)
    if [[ ${f[8]-} == read_bytes: && ${f[10]-} == write_bytes: && ${f[12]-} == cancelled_write_bytes: ]]; then
        r=${f[9]} w=${f[11]} c=${f[13]}
    elif [[ $text == *write_bytes:* ]]; then
        r=${text#*$'\n'read_bytes: }
        r=${r%%$'\n'*}
        w=${text#*$'\n'write_bytes: }
        w=${w%%$'\n'*}
        c=${text#*cancelled_write_bytes: }
        c=${c%%$'\n'*}
    fi
    _telemetry_kb=$((10#0${r//[!0-9]/} + 10#0${w//[!0-9]/} - 10#0${c//[!0-9]/}))
    return 0
}

# Bytes received and sent on the network namespace's interfaces other than lo.
_telemetry_net_bytes() {
    local - text='' line name sum=0
    local -a f
    set -f
    local IFS=$' \t\n'
    read -r -d '' text <"/proc/$$/net/dev" || :
    # Fast path: two header lines of 4 and 16 words, then per interface its name and 16 counters
    # ("eth0:" may touch its first counter, hence ':' becomes a blank).
    # shellcheck disable=SC2206
    f=(${text//:/ })
    if ((${#f[@]} >= 20 && (${#f[@]} - 20) % 17 == 0)) && [[ ${f[0]} == Inter-* && ${f[4]} == face ]]; then
        for ((name = 20; name < ${#f[@]}; name += 17)); do
            [[ ${f[name]} != lo ]] || continue
            sum=$((sum + f[name + 1] + f[name + 9]))
        done
        _telemetry_kb=$sum
        return 0
    fi
    while [[ $text == *$'\n'* ]]; do
        line=${text%%$'\n'*}
        text=${text#*$'\n'}
        [[ $line == *:* ]] || continue
        name=${line%%:*}
        name=${name//[[:space:]]/}
        [[ $name != lo ]] || continue
        # shellcheck disable=SC2206
        f=(${line#*:})
        if ((${#f[@]} > 8)); then sum=$((sum + f[0] + f[8])); fi
    done
    _telemetry_kb=$sum
    return 0
}

# _telemetry_tenths N D: N/D with one decimal in _telemetry_f.
_telemetry_tenths() {
    local t=0
    if (($2 > 0)); then t=$(($1 * 10 / $2)); fi
    printf -v _telemetry_f '%d.%d' "$((t / 10))" "$((t % 10))"
    return 0
}

# ---- public functions -------------------------------------------------------------------------------

# The output of `trap -p EXIT` in _telemetry_f, without a fork where bash allows: bash 5.1 and later
# make a small here-string a pipe, and /dev/fd gives a second writer on it. (An EXIT trap longer
# than a pipe's 64 KiB would block here; bash 5.0 and older take the fork.)
_telemetry_exit_trap_text() {
    local r='' w=''
    _telemetry_f=''
    if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) &&
        exec {r}<<<''; then
        if [[ -p /dev/fd/$r ]] && exec {w}>"/dev/fd/$r"; then
            IFS= read -r -u "$r" _telemetry_f
            { trap -p EXIT; printf '\0'; } >&"$w"
            exec {w}>&-
            IFS= read -r -d '' -u "$r" _telemetry_f || :
            exec {r}<&-
            return 0
        fi
        exec {r}<&-
    fi
    _telemetry_f=$(trap -p EXIT)
    return 0
}

# telemetry_init NAME VERSION: start the execution, open the channel, install the EXIT trap.
telemetry_init() {
    local - name=${1-} version=${2-} client='' v t dir
    set +eu
    if [[ -n $_telemetry_state && $_telemetry_state != ended ]]; then return 0; fi
    _telemetry_reset_state
    _telemetry_owner=$BASHPID
    _telemetry_now
    _telemetry_t0=$_telemetry_us
    # Opt-out: nothing is sent and no process is started.
    v=${TELEMETRY_ENABLED-}
    case ${v,,} in
    false | 0 | no | off)
        _telemetry_state=off
        _telemetry_why="TELEMETRY_ENABLED=$v"
        return 0
        ;;
    esac
    v=${DO_NOT_TRACK-}
    case ${v,,} in
    1 | true | yes | on)
        _telemetry_state=off
        _telemetry_why="DO_NOT_TRACK=$v"
        return 0
        ;;
    esac
    _telemetry_state=on
    # EPOCHREALTIME follows the locale's decimal point: with a comma, every event takes the slow path.
    if [[ ${EPOCHREALTIME-,} == *,* ]]; then _telemetry_pat_unsafe='*'; else _telemetry_pat_unsafe='*[!]-~ !#-[]*'; fi
    [[ -n $name ]] || name=${0##*/}
    [[ -n $name ]] || name=bash
    _telemetry_script=$name
    _telemetry_version=$version
    _telemetry_env=${TELEMETRY_ENVIRONMENT-}
    # Flush timeout: TELEMETRY_FLUSH_TIMEOUT seconds (default 2).
    v=${TELEMETRY_FLUSH_TIMEOUT-}
    if [[ -n $v && $v =~ ^([0-9]{1,4})(\.([0-9]{1,6}))?$ ]]; then
        t=${BASH_REMATCH[3]}000000
        _telemetry_timeout_us=$((10#${BASH_REMATCH[1]} * 1000000 + 10#${t:0:6}))
        if ((_telemetry_timeout_us <= 0)); then _telemetry_timeout_us=2000000; fi
    fi
    # Execution id: a random (version 4) UUID.
    _telemetry_id=''
    if [[ -r /proc/sys/kernel/random/uuid ]]; then
        read -r _telemetry_id </proc/sys/kernel/random/uuid || _telemetry_id=''
    fi
    if [[ $_telemetry_id != ????????-????-????-????-???????????? || $_telemetry_id == *[!0-9a-f-]* ]]; then
        printf -v _telemetry_id '%04x%04x-%04x-4%03x-%04x-%04x%04x%04x' \
            "$((${SRANDOM:-$RANDOM} & 0xffff))" "$((${SRANDOM:-$RANDOM} & 0xffff))" \
            "$((${SRANDOM:-$RANDOM} & 0xffff))" "$((${SRANDOM:-$RANDOM} & 0xfff))" \
            "$(((${SRANDOM:-$RANDOM} & 0x3fff) | 0x8000))" "$((${SRANDOM:-$RANDOM} & 0xffff))" \
            "$((${SRANDOM:-$RANDOM} & 0xffff))" "$((${SRANDOM:-$RANDOM} & 0xffff))"
    fi
    # Baselines of the measurements.
    _telemetry_read_stat || :
    _telemetry_ticks0=$_telemetry_s_ticks
    _telemetry_cflt=$_telemetry_s_cflt
    _telemetry_io_bytes
    _telemetry_io0=$_telemetry_kb
    _telemetry_net_bytes
    _telemetry_net0=$_telemetry_kb
    # The client: TELEMETRY_CLIENT (a path), else `telemetry` on PATH (searched here: no fork).
    client=${TELEMETRY_CLIENT-}
    if [[ -z $client ]]; then
        local IFS=:
        for dir in $PATH; do
            if [[ -f ${dir:-.}/telemetry && -x ${dir:-.}/telemetry ]]; then
                client=${dir:-.}/telemetry
                break
            fi
        done
        IFS=$' \t\n'
    fi
    _telemetry_client=$client
    # The script's EXIT trap so far, to run after ours.
    if [[ -z $_telemetry_hooked ]]; then
        _telemetry_exit_trap_text
        if [[ -n $_telemetry_f ]]; then
            eval "set -- ${_telemetry_f#trap -- }"
            _telemetry_user_exit=${1-}
        fi
    fi
    _telemetry_hook
    if [[ -z $client || ! -f $client || ! -x $client ]]; then
        _telemetry_why="no telemetry client (${client:-TELEMETRY_CLIENT unset and no telemetry on PATH})"
        _telemetry_note "$_telemetry_why; running without telemetry"
        return 0
    fi
    if ! _telemetry_open "$client"; then
        _telemetry_note "$_telemetry_why; running without telemetry"
        return 0
    fi
    _telemetry_field "$name" 256 1536
    name=$_telemetry_f
    _telemetry_field "$version" 128 768
    version=$_telemetry_f
    _telemetry_field "$_telemetry_env" 128 768
    v=${EPOCHREALTIME/,/.}
    [[ -n $v ]] || printf -v v '%(%s)T' -1
    printf '{"v":1,"kind":"start","execution_id":"%s","ts":%s,"script":"%s","version":"%s","environment":"%s","pid":%d}\n' \
        "$_telemetry_id" "$v" "$name" "$version" "$_telemetry_f" "$$" >&"$_telemetry_wfd" || _telemetry_dead_write
    _telemetry_note "execution $_telemetry_id of $_telemetry_script $_telemetry_version started (client $client)"
    return 0
} 2>/dev/null

# Install the library's EXIT trap: ours first, then the script's own code.
_telemetry_hook() {
    _telemetry_hooked=1
    if [[ -n ${TELEMETRY_DEBUG-} ]]; then
        _telemetry_prefix='{ _telemetry_on_exit; } 3>&2 2>/dev/null && { :; } 2>/dev/null'
    else
        _telemetry_prefix='{ _telemetry_on_exit; } 2>/dev/null && { :; } 2>/dev/null'
    fi
    if [[ -n $_telemetry_user_exit ]]; then
        trap -- "$_telemetry_prefix"$'\n'"$_telemetry_user_exit" EXIT
    else
        trap -- "$_telemetry_prefix" EXIT
    fi
    return 0
}

_telemetry_reset_state() {
    _telemetry_close
    _telemetry_state=''
    _telemetry_why=''
    _telemetry_id=''
    _telemetry_script=''
    _telemetry_version=''
    _telemetry_env=''
    _telemetry_client=''
    _telemetry_last_error=''
    _telemetry_pending=0
    _telemetry_dropped=0
    _telemetry_flush_ok=0
    _telemetry_flush_failed=0
    _telemetry_confirmed_us=0
    _telemetry_cpeak_kb=0
    _telemetry_timeout_us=2000000
    _telemetry_timers=()
    _telemetry_metric_seen=()
    return 0
}

# telemetry_start_timer OP: later events of OP carry the time since now (duration_seconds).
telemetry_start_timer() {
    local -
    set +eu
    [[ $_telemetry_state == on ]] || return 0
    local op=${1:--}
    _telemetry_now
    _telemetry_timers[$op]=$_telemetry_us
    if [[ $BASHPID == "$_telemetry_owner" ]]; then _telemetry_sample; fi
    return 0
} 2>/dev/null

# telemetry_track_<level> OP MESSAGE: the event path. The usual case (OP and MESSAGE plain
# printable ASCII without '"' or '\', not too long, no timer on OP) is one builtin printf to the
# channel: no fork, no subshell, no external command, no other function call, no local variable.
# The rest goes through _telemetry_event. The five functions are made from one template (LEVEL is
# replaced); their body runs with stderr closed (`2>&-`, cheaper than /dev/null), which keeps the
# `set -x` trace of the body away from the script's stderr.
# shellcheck disable=SC2016  # expanded when the functions run
_telemetry_template='() {
    [[ -n $_telemetry_wfd && -n ${1-} && $# -gt 1 && $1$2 != $_telemetry_pat_unsafe &&
        -z ${_telemetry_timers[$1]-} && ${#1} -le 256 && ${#2} -le 3600 ]] || { _telemetry_event LEVEL "$@"; return 0; }
    echo "{\"v\":1,\"kind\":\"event\",\"execution_id\":\"$_telemetry_id\",\"ts\":$EPOCHREALTIME,\"level\":\"LEVEL\",\"operation\":\"$1\",\"message\":\"$2\"}" >&"$_telemetry_wfd" || _telemetry_dead_write
} 2>&-'
eval "telemetry_track_success${_telemetry_template//LEVEL/success}"
eval "telemetry_track_error${_telemetry_template//LEVEL/error}"
eval "telemetry_track_warning${_telemetry_template//LEVEL/warning}"
eval "telemetry_track_info${_telemetry_template//LEVEL/info}"
eval "telemetry_track_debug${_telemetry_template//LEVEL/debug}"
unset _telemetry_template

# _telemetry_event LEVEL OP MESSAGE: an event that needs escaping, cutting or a duration.
_telemetry_event() {
    local -
    set +eu
    if [[ -z $_telemetry_wfd ]]; then
        if [[ $_telemetry_state == on ]]; then _telemetry_dropped+=1; fi
        return 0
    fi
    local op=${2:--} msg=${3-} d='' t ts=${EPOCHREALTIME/,/.}
    [[ -n $ts ]] || printf -v ts '%(%s)T.000000' -1
    t=${_telemetry_timers[$op]-}
    if [[ -n $t ]]; then
        d=${ts/./}
        t=$((10#$d - t))
        if ((t < 0)); then t=0; fi
        printf -v d ',"duration_seconds":%d.%06d' "$((t / 1000000))" "$((t % 1000000))"
    fi
    _telemetry_field "$op" 256 1536
    op=$_telemetry_f
    t=$((3900 - _telemetry_fl - ${#d}))
    _telemetry_field "$msg" "$t" "$t"
    if printf '{"v":1,"kind":"event","execution_id":"%s","ts":%s,"level":"%s","operation":"%s","message":"%s"%s}\n' \
        "$_telemetry_id" "$ts" "$1" "$op" "$_telemetry_f" "$d" >&"$_telemetry_wfd"; then
        :
    else
        _telemetry_dead_write
    fi
    return 0
}

# telemetry_record_metric NAME VALUE: VALUE must be a finite number (else a warning, nothing sent).
telemetry_record_metric() {
    { _telemetry_metric "$@"; } 2>/dev/null || { _telemetry_warned; } 3>&2 2>/dev/null || :
}

# Status 1 when there is a warning for the script (in _telemetry_w).
_telemetry_metric() {
    local -
    set +eu
    [[ $_telemetry_state == on ]] || return 0
    local name=${1-} value=${2-}
    if ! [[ $name =~ $_telemetry_re_metric ]] || ((${#name} > 128)); then
        _telemetry_w="warning: telemetry_record_metric: invalid metric name \"${name:0:80}\" (want [A-Za-z_][A-Za-z0-9_.:-]*, at most 128 bytes); not recorded"
        return 1
    fi
    if ((${#value} > 128)) || ! _telemetry_number "$value"; then
        _telemetry_w="warning: telemetry_record_metric: $name: \"${value:0:80}\" is not a finite number; not recorded"
        return 1
    fi
    _telemetry_metric_seen[$name]=1
    [[ -n $_telemetry_wfd ]] || { _telemetry_dropped+=1; return 0; }
    if printf '{"v":1,"kind":"metric","execution_id":"%s","ts":%s,"name":"%s","value":%s}\n' \
        "$_telemetry_id" "${EPOCHREALTIME/,/.}" "$name" "$_telemetry_f" >&"$_telemetry_wfd"; then
        :
    else
        _telemetry_dead_write
    fi
    return 0
}

# The pending warning, on fd 3 (the caller's stderr).
_telemetry_warned() {
    [[ -n $_telemetry_w ]] || return 0
    printf 'telemetry: %s\n' "$_telemetry_w" >&3
    _telemetry_note "$_telemetry_w"
    _telemetry_w=''
    return 0
}
_telemetry_w=''

# telemetry_add_tag KEY VALUE: a label on the execution (KEY 1-128 bytes, VALUE at most 1024 bytes).
telemetry_add_tag() {
    { _telemetry_tag "$@"; } 2>/dev/null || { _telemetry_warned; } 3>&2 2>/dev/null || :
}

_telemetry_tag() {
    local -
    set +eu
    [[ $_telemetry_state == on ]] || return 0
    local key=${1-} value
    if [[ -z $key ]]; then
        _telemetry_w="warning: telemetry_add_tag: empty key; not recorded"
        return 1
    fi
    [[ -n $_telemetry_wfd ]] || { _telemetry_dropped+=1; return 0; }
    _telemetry_field "$key" 128 768
    key=$_telemetry_f
    _telemetry_field "${2-}" 1024 3000
    value=$_telemetry_f
    if printf '{"v":1,"kind":"tag","execution_id":"%s","ts":%s,"key":"%s","value":"%s"}\n' \
        "$_telemetry_id" "${EPOCHREALTIME/,/.}" "$key" "$value" >&"$_telemetry_wfd"; then
        :
    else
        _telemetry_dead_write
    fi
    return 0
}

# telemetry_flush: make everything recorded so far durable; waits at most TELEMETRY_FLUSH_TIMEOUT.
# In a subshell it returns at once (the replies belong to the main shell).
telemetry_flush() {
    [[ -n $_telemetry_wfd && $BASHPID == "$_telemetry_owner" ]] || return 0
    local -
    set +eu
    _telemetry_sample
    _telemetry_roundtrip "$_telemetry_timeout_us"
    return 0
} 2>/dev/null

# _telemetry_end STATUS: record the resource metrics and the end, wait until it is durable, close.
_telemetry_end() {
    local status=$1 d n value lines durable=''
    [[ $_telemetry_state == on && $BASHPID == "$_telemetry_owner" ]] || return 0
    _telemetry_state=ended
    if [[ -n $_telemetry_wfd ]]; then
        _telemetry_sample
        _telemetry_now
        _telemetry_secs "$((_telemetry_us - _telemetry_t0))"
        d=$_telemetry_f
        # The resource metrics, unless the script recorded a metric of that name itself.
        # The resource metrics, the end and the sync leave in one write (the /proc/PID/stat figures of
        # _telemetry_sample serve memory and CPU): one wake-up of the client, one read and one commit by
        # the daemon.
        lines=''
        for n in execution_time memory_usage cpu_usage disk_usage network_usage; do
            [[ -z ${_telemetry_metric_seen[$n]-} ]] || continue
            case $n in
            execution_time) value=$d ;;
            memory_usage) _telemetry_get memory cached; value=$_telemetry_f ;;
            cpu_usage) _telemetry_get cpu cached; value=$_telemetry_f ;;
            disk_usage) _telemetry_get disk; value=$_telemetry_f ;;
            network_usage) _telemetry_get network; value=$_telemetry_f ;;
            esac
            printf -v value '{"v":1,"kind":"metric","execution_id":"%s","ts":%s,"name":"%s","value":%s}\n' \
                "$_telemetry_id" "${EPOCHREALTIME/,/.}" "$n" "$value"
            lines+=$value
        done
        printf -v value '{"v":1,"kind":"end","execution_id":"%s","ts":%s,"exit_code":%d,"duration_seconds":%s}\n' \
            "$_telemetry_id" "${EPOCHREALTIME/,/.}" "$((status & 255))" "$d"
        lines+=$value
        if _telemetry_roundtrip "$_telemetry_timeout_us" sync "$lines"; then durable=1; fi
        _telemetry_close
    else
        _telemetry_dropped+=1
        [[ -n $_telemetry_last_error ]] || _telemetry_last_error=$_telemetry_why
    fi
    if [[ -n $durable ]]; then
        _telemetry_note "execution $_telemetry_id ended with exit status $status; durable"
    else
        _telemetry_note "execution $_telemetry_id ended with exit status $status; not confirmed durable"
    fi
    if [[ -n ${TELEMETRY_DEBUG-} && ( -z $durable || $_telemetry_dropped -gt 0 ) ]]; then
        if [[ -n $durable ]]; then
            n="durable"
        elif ((_telemetry_confirmed_us > 0)); then
            printf -v n 'NOT confirmed durable after %(%H:%M:%S)T (the last confirmed flush)' \
                "$((_telemetry_confirmed_us / 1000000))"
        else
            n="NOT confirmed durable"
        fi
        printf -v _telemetry_w 'execution %s (exit status %d): %s; %d lines not written%s' \
            "$_telemetry_id" "$status" "$n" "$_telemetry_dropped" \
            "${_telemetry_last_error:+ (last problem: $_telemetry_last_error)}"
        return 1
    fi
    return 0
}

# The EXIT trap. Returns the exit status so that the script's own trap code, which follows in the
# same trap, sees it in $?. Under TELEMETRY_DEBUG the trap gives it the script's stderr as fd 3.
_telemetry_on_exit() {
    local status=$? -
    set +eu
    if ! _telemetry_end "$status" && [[ -n ${TELEMETRY_DEBUG-} ]]; then
        { printf 'telemetry: %s\n' "$_telemetry_w" >&3; } 2>/dev/null
    fi
    return "$status"
}

# telemetry_finish [STATUS]: end the execution now (exit status STATUS, default $?). For a script
# that sets its own EXIT trap after telemetry_init: trap 'rc=$?; telemetry_finish "$rc"; ...' EXIT
telemetry_finish() {
    { _telemetry_finish "$?" "$@"; } 2>/dev/null || { _telemetry_warned; } 3>&2 2>/dev/null || :
}

_telemetry_finish() {
    local status=$1 -
    set +eu
    if [[ ${2-} =~ ^[0-9]+$ ]]; then status=$((10#$2 & 255)); fi
    _telemetry_end "$status"
}

# telemetry_trap_exit CODE: the script's EXIT trap, kept behind the library's (ours runs first).
telemetry_trap_exit() {
    local -
    set +eu
    _telemetry_user_exit=${1-}
    if [[ -n $_telemetry_hooked ]]; then
        _telemetry_hook
    elif [[ -n $_telemetry_user_exit ]]; then
        trap -- "$_telemetry_user_exit" EXIT
    else
        trap - EXIT
    fi
    return 0
} 2>/dev/null

# ---- getters ----------------------------------------------------------------------------------------

# _telemetry_get WHAT: one measurement in _telemetry_f.
_telemetry_get() {
    local now elapsed
    case $1 in
    memory)
        _telemetry_memory_kb "${2-}"
        _telemetry_tenths "$_telemetry_kb" 1024
        ;;
    cpu)
        _telemetry_now
        elapsed=$((_telemetry_us - _telemetry_t0))
        [[ -n ${2-} ]] || _telemetry_read_stat
        # ticks are 1/100 s (USER_HZ); percent = ticks/100 / (elapsed/1e6) * 100
        _telemetry_tenths "$(((_telemetry_s_ticks - _telemetry_ticks0) * 1000000))" "$elapsed"
        ;;
    disk)
        _telemetry_io_bytes
        now=$((_telemetry_kb - _telemetry_io0))
        _telemetry_tenths "$now" 1048576
        ;;
    network)
        _telemetry_net_bytes
        now=$((_telemetry_kb - _telemetry_net0))
        if ((now < 0)); then now=0; fi
        printf -v _telemetry_f '%d.%03d' "$((now / 1048576))" "$((now % 1048576 * 1000 / 1048576))"
        ;;
    esac
    return 0
}

# telemetry_get_duration [OP]: seconds since telemetry_init, or since telemetry_start_timer OP.
# shellcheck disable=SC2120  # OP is optional
telemetry_get_duration() {
    local -
    set +eu
    local start=$_telemetry_t0
    if [[ $_telemetry_state != on && $_telemetry_state != ended ]]; then echo 0; return 0; fi
    if [[ $# -gt 0 ]]; then start=${_telemetry_timers[${1:--}]-}; fi
    if [[ -z $start ]]; then echo 0; return 0; fi
    _telemetry_now
    _telemetry_secs "$((_telemetry_us - start))"
    echo "$_telemetry_f"
    return 0
} 2>/dev/null

telemetry_get_memory_usage() {
    local -
    set +eu
    if [[ $_telemetry_state != on && $_telemetry_state != ended ]]; then echo 0; return 0; fi
    _telemetry_get memory
    echo "$_telemetry_f"
    return 0
} 2>/dev/null

telemetry_get_cpu_usage() {
    local -
    set +eu
    if [[ $_telemetry_state != on && $_telemetry_state != ended ]]; then echo 0; return 0; fi
    _telemetry_get cpu
    echo "$_telemetry_f"
    return 0
} 2>/dev/null

telemetry_get_disk_usage() {
    local -
    set +eu
    if [[ $_telemetry_state != on && $_telemetry_state != ended ]]; then echo 0; return 0; fi
    _telemetry_get disk
    echo "$_telemetry_f"
    return 0
} 2>/dev/null

telemetry_get_network_usage() {
    local -
    set +eu
    if [[ $_telemetry_state != on && $_telemetry_state != ended ]]; then echo 0; return 0; fi
    _telemetry_get network
    echo "$_telemetry_f"
    return 0
} 2>/dev/null

# ---- debug commands ---------------------------------------------------------------------------------

# telemetry_status: what the library is doing, and what the daemon says (runs `telemetry status`).
telemetry_status() {
    local - line
    set +eu
    case $_telemetry_state in
    '') echo "telemetry: not initialized (call telemetry_init NAME VERSION)" ;;
    off) echo "telemetry: off ($_telemetry_why): nothing is recorded or sent" ;;
    *)
        echo "telemetry: execution $_telemetry_id ($_telemetry_state)"
        echo "  script:       $_telemetry_script $_telemetry_version (environment: ${_telemetry_env:-none})"
        echo "  client:       ${_telemetry_client:-none}"
        echo "  socket:       ${TELEMETRY_SOCKET:-default of the client}"
        if [[ -n $_telemetry_wfd ]]; then
            echo "  channel:      open (fds $_telemetry_wfd/$_telemetry_rfd)"
        else
            echo "  channel:      closed${_telemetry_why:+ ($_telemetry_why)}"
        fi
        if ((_telemetry_confirmed_us > 0)); then
            printf '  durable:      everything up to %(%H:%M:%S)T (last confirmed flush)\n' "$((_telemetry_confirmed_us / 1000000))"
        else
            echo "  durable:      no flush confirmed yet"
        fi
        echo "  not written:  $_telemetry_dropped lines"
        echo "  flushes:      $_telemetry_flush_ok confirmed, $_telemetry_flush_failed not confirmed"
        if [[ -n $_telemetry_last_error ]]; then echo "  last problem: $_telemetry_last_error"; fi
        # shellcheck disable=SC2119
        echo "  duration:     $(telemetry_get_duration) s, memory $(telemetry_get_memory_usage) MB, cpu $(telemetry_get_cpu_usage) %"
        ;;
    esac
    if [[ $_telemetry_state != off && -n $_telemetry_client && -x $_telemetry_client ]]; then
        echo "daemon:"
        while IFS= read -r line; do echo "  $line"; done < <("$_telemetry_client" status 2>&1)
    fi
    return 0
} 2>/dev/null

# telemetry_test_connection: a flush round trip through the channel (or `telemetry status` without one).
telemetry_test_connection() {
    local - t0 line
    set +eu
    if [[ $_telemetry_state == off ]]; then
        echo "telemetry: off ($_telemetry_why): no connection is made"
        return 0
    fi
    if [[ -n $_telemetry_wfd && $BASHPID == "$_telemetry_owner" ]]; then
        _telemetry_now
        t0=$_telemetry_us
        if _telemetry_roundtrip "$_telemetry_timeout_us"; then
            _telemetry_now
            _telemetry_secs "$((_telemetry_us - t0))"
            echo "telemetry: connection ok: everything sent so far is durable (round trip ${_telemetry_f} s)"
        else
            echo "telemetry: connection problem: $_telemetry_last_error"
        fi
        return 0
    fi
    if [[ -z $_telemetry_client ]]; then
        line=${TELEMETRY_CLIENT-}
        [[ -n $line ]] || line=$(type -P telemetry 2>/dev/null)
    else
        line=$_telemetry_client
    fi
    if [[ -z $line || ! -x $line ]]; then
        echo "telemetry: no telemetry client (set TELEMETRY_CLIENT or put telemetry on PATH)"
        return 0
    fi
    if "$line" status >/dev/null 2>&1; then
        echo "telemetry: telemetryd answers (checked with $line status)"
    else
        echo "telemetry: connection problem: $("$line" status 2>&1 | head -n 1)"
    fi
    return 0
} 2>/dev/null

# telemetry_logs [N]: the library's own log (start, flushes not confirmed, warnings, end), last N lines.
telemetry_logs() {
    local -
    set +eu
    local n=${#_telemetry_log[@]} from=0 line
    if [[ ${1-} =~ ^[0-9]+$ ]] && ((10#$1 < n)); then from=$((n - 10#$1)); fi
    for line in "${_telemetry_log[@]:from}"; do
        printf '%(%Y-%m-%dT%H:%M:%S)T %s\n' "$((10#0${line%% *}))" "${line#* }"
    done
    return 0
} 2>/dev/null

# telemetry_reset: forget everything (the execution in progress is abandoned: the daemon stores it as
# incomplete after TELEMETRY_EXECUTION_TIMEOUT), give the EXIT trap back to the script, and return to
# the state before telemetry_init.
telemetry_reset() {
    local -
    set +eu
    if [[ -n $_telemetry_owner && $BASHPID != "$_telemetry_owner" ]]; then return 0; fi
    if [[ -n $_telemetry_hooked ]]; then
        if [[ -n $_telemetry_user_exit ]]; then trap -- "$_telemetry_user_exit" EXIT; else trap - EXIT; fi
    fi
    _telemetry_hooked=''
    _telemetry_user_exit=''
    _telemetry_reset_state
    _telemetry_log=()
    _telemetry_owner=''
    return 0
} 2>/dev/null
