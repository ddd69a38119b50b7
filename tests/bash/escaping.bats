#!/usr/bin/env bats
# JSON escaping of arbitrary text: what telemetryd stores (telemetry show ID --json, read with
# python3's json) is what the script passed, with invalid UTF-8 bytes as U+FFFD.

load helpers

# run_escape OP MESSAGE TAGKEY TAGVALUE: records them through the library; prints the document.
run_escape() {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init "$SCRIPT_NAME" "$SCRIPT_VERSION"
echo "id=$_telemetry_id"
telemetry_start_timer "$OP"
telemetry_track_info "$OP" "$MSG"
telemetry_track_error "$OP" "$MSG"
telemetry_add_tag "$TAGKEY" "$TAGVALUE"
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    id=$(execution_id_of <(echo "$output"))
    document "$id" >"$WORK/doc.json"
}

# The nasty strings, as Python literals of the expected stored text.
check() {
    python3 - "$WORK/doc.json" "$1" "$2" "$3" "$4" "$5" <<'PY'
import json, sys, ast
d = json.load(open(sys.argv[1]))
op, msg, key, value, name = (eval(a) for a in sys.argv[2:7])
events = d["events"] + d["errors"]
assert len(events) == 2, events
for e in events:
    assert e["operation"] == op, (e["operation"], op)
    assert e["message"] == msg, (e["message"], msg)
    assert "duration_seconds" in e
assert d["tags"] == {key: value}, (d["tags"], key, value)
assert d["script_name"] == name, (d["script_name"], name)
PY
}

@test "quotes, backslashes, JSON look-alikes and shell metacharacters" {
    export SCRIPT_NAME='dep"loy\svc' SCRIPT_VERSION='v"1\' OP='op "quoted" \ back\\slash' \
        MSG='{"v":1,"kind":"end"} \" \\" \u0041 $(echo no) `echo no` ${HOME} %s %n \n literally' \
        TAGKEY='k"e\y' TAGVALUE='v\"al'
    run_escape
    check "'op \"quoted\" \\\\ back\\\\\\\\slash'" \
        "'{\"v\":1,\"kind\":\"end\"} \\\\\" \\\\\\\\\" \\\\u0041 \$(echo no) \`echo no\` \${HOME} %s %n \\\\n literally'" \
        "'k\"e\\\\y'" "'v\\\\\"al'" "'dep\"loy\\\\svc'"
}

@test "control characters: newlines, tabs, carriage returns, every byte from 0x01 to 0x1f, DEL" {
    all=$(printf '%b' "$(printf '\\x%02x' {1..31})")
    export SCRIPT_NAME=$'multi\nline' SCRIPT_VERSION=$'\t' OP=$'op\twith\ttabs' \
        MSG="line1"$'\n'"line2"$'\r\n'"all:$all:del:"$'\x7f' TAGKEY=$'k\x01' TAGVALUE=$'v\x1b[31mred\x1b[0m'
    run_escape
    check "'op\\twith\\ttabs'" "'line1\\nline2\\r\\nall:' + ''.join(chr(i) for i in range(1, 32)) + ':del:\\x7f'" \
        "'k\\x01'" "'v\\x1b[31mred\\x1b[0m'" "'multi\\nline'"
}

@test "non-ASCII text is kept; invalid UTF-8 bytes become U+FFFD" {
    export SCRIPT_NAME='déploiement-サービス' SCRIPT_VERSION='v1 ✓' OP='opé 🚀' \
        MSG=$'Ünïcödé ✓ 日本語 emoji 😀 | bad: \xff\xfe | lone continuation \x80 | truncated \xe2\x82 | overlong \xc0\xaf | surrogate \xed\xa0\x80 end' \
        TAGKEY='région' TAGVALUE=$'\xc3'
    run_escape
    check "'opé 🚀'" \
        "'Ünïcödé ✓ 日本語 emoji 😀 | bad: \\ufffd\\ufffd | lone continuation \\ufffd | truncated \\ufffd\\ufffd | overlong \\ufffd\\ufffd | surrogate \\ufffd\\ufffd\\ufffd end'" \
        "'région'" "'\\ufffd'" "'déploiement-サービス'"
}

@test "the same strings in a UTF-8 locale and in the C locale" {
    for locale in C C.UTF-8; do
        export LC_ALL=$locale SCRIPT_NAME=s SCRIPT_VERSION=1 OP='ünï' MSG=$'é\xff"\\\t' TAGKEY=k TAGVALUE='ö'
        run_escape
        check "'ünï'" "'é\\ufffd\"\\\\\\t'" "'k'" "'ö'" "'s'"
    done
}

@test "long values are cut below the protocol limits and each line stays under 4096 bytes" {
    export SCRIPT_NAME=$(printf 'n%.0s' {1..300}) SCRIPT_VERSION=1 OP=$(printf 'o%.0s' {1..300}) \
        MSG=$(printf 'é"%.0s' {1..3000}) TAGKEY=k TAGVALUE=$(printf '\\%.0s' {1..2000})
    run_escape
    python3 - "$WORK/doc.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["script_name"] == "n" * 256, len(d["script_name"])
for e in d["events"] + d["errors"]:
    assert e["operation"] == "o" * 256
    m = e["message"]
    assert 1000 < len(m.encode()) < 4000 and set(m) <= {"é", '"'}, len(m)
    # cut between characters, never inside "é"
    assert m.encode().decode("utf-8") == m
assert set(d["tags"]["k"]) == {"\\"} and 100 < len(d["tags"]["k"]) <= 1024, len(d["tags"]["k"])
PY
}

@test "a message of every byte value round-trips (valid UTF-8 part intact)" {
    export SCRIPT_NAME=s SCRIPT_VERSION=1 OP=o TAGKEY=k TAGVALUE=v
    MSG=$(printf '%b' "$(printf '\\x%02x' {1..127})")
    export MSG
    run_escape
    check "'o'" "''.join(chr(i) for i in range(1, 128))" "'k'" "'v'" "'s'"
}
