/// Help texts, written like a man page's synopsis and description.
enum Help {
    static let overview = """
    telemetry — send script telemetry to telemetryd and inspect it

    USAGE
      telemetry send [--wait] [--strict] [--quiet] [--socket PATH] [--timeout SECONDS]
      telemetry status [--json]
      telemetry flush [--timeout SECONDS] [--json]
      telemetry executions [--limit N] [--script NAME] [--json]
      telemetry show EXECUTION_ID [--json]
      telemetry test-connection [--json]
      telemetry deadletter list|replay BATCH_ID|--all|purge BATCH_ID|--all
      telemetry help [COMMAND]
      telemetry --version

    COMMANDS
      send        Read line-delimited JSON events (protocol v1) on standard input and pass them to the daemon.
      status      Show whether the daemon runs, its store and its counters.
      flush       Make everything the daemon received durable now (and delivered, with an endpoint), and wait.
      executions  List the execution documents in the local store, newest first.
      show        Print one execution's document.
      test-connection  Have the daemon send a probe to TELEMETRY_ENDPOINT and say what happened.
      deadletter  List, replay or purge batches the endpoint refused for good.

    ENVIRONMENT
      TELEMETRY_SOCKET         daemon socket (default /run/telemetryd/telemetryd.sock)
      TELEMETRY_ENABLED=false  send: opt out (also 0, no, off; or DO_NOT_TRACK=1): read and discard, send nothing
      TELEMETRY_QUIET=1        send: do not report problems on stderr
      TELEMETRY_SPOOL_DIR      send: where lines wait while the daemon is unreachable (default /var/spool/telemetryd)
      TELEMETRY_FLUSH_TIMEOUT  seconds to wait for the daemon (default 2)

    EXIT STATUS
      0 success (send: always, unless --strict), 1 failure, 2 usage error, 3 the daemon is not running.

    The protocol is described in docs/protocol.md; `telemetry help COMMAND` explains one command.
    """

    static let commands: [String: String] = [
        "send": """
        telemetry send — pass events from standard input to telemetryd

        USAGE
          <producer> | telemetry send [--wait] [--strict] [--quiet] [--socket PATH] [--timeout SECONDS]

        Each input line is one JSON object of protocol v1 (docs/protocol.md). Every line is validated before it
        is sent; an invalid line is reported on stderr with its line number, what is wrong and an excerpt, and
        is not sent. The other lines are unaffected. Replies to control lines ({"kind":"control",...}) are
        written to standard output, one line each, so a coprocess can use send as a two-way channel.

        Telemetry never fails or stalls the script it observes: send exits 0 even when lines are invalid or the
        daemon is unreachable, unless --strict is given. When the daemon is unreachable, or stops reading, the
        lines go to a private file in the spool directory ($TELEMETRY_SPOOL_DIR, default /var/spool/telemetryd)
        that the daemon takes in when it is back; control lines are then answered by send itself
        ({"ok":true,"durable":true,"spooled":true} once the spool is on disk).

        OPTIONS
          --wait             after the input ends, wait until the daemon holds every line durably
          --strict           exit 1 when any line was invalid, unsent, or not confirmed with --wait
          --quiet, -q        report nothing on stderr (also TELEMETRY_QUIET=1)
          --socket PATH      daemon socket (default $TELEMETRY_SOCKET or /run/telemetryd/telemetryd.sock)
          --timeout SECONDS  bound on every wait for the daemon (default $TELEMETRY_FLUSH_TIMEOUT or 2)
          --max-line-bytes N longest accepted line (default 65536; match the daemon's TELEMETRY_MAX_LINE_BYTES)

        EXAMPLE
          echo '{"v":1,"kind":"metric","execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b","ts":1732870000,"name":"services_deployed","value":5}' | telemetry send
        """,
        "status": """
        telemetry status — is the daemon up, and what is in its store

        USAGE
          telemetry status [--json] [--socket PATH] [--timeout SECONDS]

        Prints the daemon's version, uptime, socket, store size, open executions, and lines accepted and
        rejected by reason. With --json, prints the daemon's reply as one JSON object.

        EXIT STATUS
          0 the daemon answered, 1 it answered with an error or could not be asked, 3 it is not running.
        """,
        "flush": """
        telemetry flush — make everything received so far durable

        USAGE
          telemetry flush [--timeout SECONDS] [--json] [--quiet] [--socket PATH]

        Asks the daemon to commit every line it has received to its store and waits (default 2 s, or
        $TELEMETRY_FLUSH_TIMEOUT) for the confirmation. Exits 0 once confirmed, 1 on failure or timeout,
        3 when the daemon is not running.
        """,
        "executions": """
        telemetry executions — list stored execution documents

        USAGE
          telemetry executions [--limit N] [--script NAME] [--json] [--socket PATH]

        Lists the newest N (default 20) completed executions in the daemon's local store, optionally only
        those of one script. An execution appears once it ends, or once TELEMETRY_EXECUTION_TIMEOUT passed
        without a line (status "incomplete").
        """,
        "test-connection": """
        telemetry test-connection — check the path to TELEMETRY_ENDPOINT

        USAGE
          telemetry test-connection [--json] [--socket PATH] [--timeout SECONDS]

        The daemon sends an empty batch to the endpoint with its real TLS, proxy and authentication settings
        and reports: name resolution, connect, TLS verification (and why it failed), the HTTP status with an
        excerpt of the answer, and the time each step took. The API key is never shown.

        EXIT STATUS
          0 the endpoint answered 2xx, 1 anything else, 3 the daemon is not running.
        """,
        "deadletter": """
        telemetry deadletter — batches the endpoint refused for good

        USAGE
          telemetry deadletter list [--json]
          telemetry deadletter replay BATCH_ID | --all
          telemetry deadletter purge BATCH_ID | --all

        A batch answered with a 4xx other than 408 and 429 is not retried: its documents are kept aside
        with the answer. After fixing the cause (often the receiver), replay puts them back in the queue;
        purge deletes them.
        """,
        "show": """
        telemetry show — print one execution's document

        USAGE
          telemetry show EXECUTION_ID [--json] [--socket PATH]

        Prints a readable summary of the stored document; with --json, exactly the document that is
        forwarded to TELEMETRY_ENDPOINT.
        """,
    ]
}
