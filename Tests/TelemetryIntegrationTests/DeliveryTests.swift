// Delivery end to end: the real `telemetryd` (debug build) forwarding to tests/receiver/receiver.py over HTTPS on
// 127.0.0.1, driven through the real `telemetry` client. The contract under test is docs/delivery.md.
//
// Every test has its own receiver and daemon; intervals and timeouts are short (TELEMETRY_RETRY_MAX_BACKOFF=1,
// TELEMETRY_REQUEST_TIMEOUT=2, ...) so that the whole suite stays well under 90 s. Waits are polls with a
// deadline; the only fixed waits are the random pauses of the crash test and the short "nothing more arrives"
// checks, which cannot be polls.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Helpers

/// The settings every delivery test starts from: the receiver's endpoint and CA, short timeouts, and no
/// interval trigger (TELEMETRY_FLUSH_INTERVAL=3600) unless a test sets one.
private func deliveryEnvironment(_ receiver: ReceiverProcess, endpoint: String? = nil,
                                 _ extra: [String: String] = [:]) -> [String: String] {
    [
        "TELEMETRY_ENDPOINT": endpoint ?? receiver.url(),
        "TELEMETRY_CA_FILE": receiver.caFile,
        "TELEMETRY_FLUSH_INTERVAL": "3600",
        "TELEMETRY_RETRY_MAX_BACKOFF": "1",
        "TELEMETRY_REQUEST_TIMEOUT": "2",
        "TELEMETRY_CONNECT_TIMEOUT": "2",
        "TELEMETRY_SHUTDOWN_TIMEOUT": "2",
        // The receiver is on loopback: a proxy from the test's own environment must not get in the way.
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    ].merging(extra) { $1 }
}

/// Complete executions (start, events, metric, tag, end) sent on one connection, then a `sync` on it: when this
/// returns, every document is committed (closed in the order given).
private func storeExecutions(_ daemon: DaemonProcess, _ executions: [(id: String, script: String)]) async throws {
    let client = try daemon.connect()
    defer { client.close() }
    var lines: [String] = []
    for (index, execution) in executions.enumerated() {
        lines += Wire.execution(execution.id, script: execution.script, index: index)
    }
    try client.sendLines(lines)
    let reply = try await client.request(Wire.control("sync"), timeout: 15)
    guard reply.bool("ok") == true else { throw HarnessError("sync refused: \(reply)\n\(daemon.stderr)") }
}

private func storeExecutions(_ daemon: DaemonProcess, _ ids: [String], script: String) async throws {
    try await storeExecutions(daemon, ids.map { ($0, script) })
}

/// `telemetry flush --json`: the process result and its parsed reply (nil when stdout is not JSON).
private func flushJSON(_ daemon: DaemonProcess, timeout: Int = 20) async throws -> (result: ProcessResult, reply: [String: Any]?) {
    let result = try await daemon.cli(["flush", "--json", "--timeout", String(timeout)])
    return (result, try? parseJSONObject(result.stdout))
}

/// Flushes until the daemon reports everything delivered (a flush during a backoff answers at once with
/// `delivered:false`), or throws after `timeout` seconds.
private func flushUntilDelivered(_ daemon: DaemonProcess, timeout: Double = 15) async throws {
    var last: (result: ProcessResult, reply: [String: Any]?)?
    let deadline = monotonicSeconds() + timeout
    while monotonicSeconds() < deadline {
        let attempt = try await flushJSON(daemon)
        last = attempt
        if attempt.result.status == 0, attempt.reply?.bool("delivered") == true { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw HarnessError("telemetry flush never reported delivered:true within \(timeout)s; last: \(last.map { "\($0.result)" } ?? "none")\n\(daemon.stderr.suffix(3_000))")
}

/// `telemetry status --json`, parsed; and its `delivery` object.
private func statusReply(_ daemon: DaemonProcess) async throws -> [String: Any] {
    let result = try await daemon.cli(["status", "--json"])
    guard result.status == 0 else { throw HarnessError("telemetry status --json failed: \(result)") }
    return try parseJSONObject(result.stdout)
}

private func deliveryStatus(_ daemon: DaemonProcess) async throws -> [String: Any] {
    let reply = try await statusReply(daemon)
    guard let delivery = reply.object("delivery") else { throw HarnessError("status has no delivery object: \(reply)") }
    return delivery
}

/// Waits until the delivery status satisfies `condition`; returns it.
@discardableResult
private func waitForDeliveryStatus(_ daemon: DaemonProcess, timeout: Double = 10, _ what: String,
                                   _ condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
    var last: [String: Any] = [:]
    let held = try await waitUntil(timeout: timeout, interval: .milliseconds(50)) {
        last = try await deliveryStatus(daemon)
        return condition(last)
    }
    guard held else { throw HarnessError("delivery status never showed \(what) within \(timeout)s; last: \(last)\n\(daemon.stderr.suffix(3_000))") }
    return last
}

/// Each execution id's first arrival, in arrival order (requests by seq, documents in body order).
private func arrivalOrder(_ requests: [ReceiverRecord]) throws -> [String] {
    var seen = Set<String>()
    var order: [String] = []
    for request in requests.sorted(by: { $0.seq < $1.seq }) where request.decodeError == nil && !request.body.isEmpty {
        for id in try request.executionIDs() where seen.insert(id).inserted { order.append(id) }
    }
    return order
}

private func isUUIDv4(_ text: String) -> Bool {
    text.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/) != nil
}

private func parseRFC3339(_ text: String) -> Double? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text)?.timeIntervalSince1970
}

private func freshIDs(_ count: Int) -> [String] { (0..<count).map { _ in newExecutionID() } }

// MARK: - Tests

@Suite("Delivery")
struct DeliveryTests {
    // 1
    @Test("send --wait + flush: one gzip POST with Bearer key, UUID Idempotency-Key and User-Agent; the body is what `show --json` prints; the key leaks nowhere")
    func deliversDocumentsWithHeaders() async throws {
        let receiver = try await ReceiverProcess()
        let apiKey = "tk_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let environment = deliveryEnvironment(receiver, ["TELEMETRY_API_KEY": apiKey, "TELEMETRY_COMPRESSION": "gzip",
                                                         "TELEMETRY_LOG_LEVEL": "trace"])
        try await withDaemon(environment: environment, tag: "dl-hdr") { daemon in
            let sent = freshIDs(3)
            for (index, id) in sent.enumerated() {
                let send = try await daemon.cli(["send", "--wait", "--strict"],
                                                stdin: Wire.execution(id, script: "deliver.sh", index: index).joined(separator: "\n") + "\n")
                #expect(send.status == 0, "\(send)")
            }
            #expect(try receiver.dataRequests().isEmpty, "nothing is due before the flush (no size or interval trigger)")

            let (result, reply) = try await flushJSON(daemon)
            #expect(result.status == 0, "\(result)\n\(daemon.stderr)")
            #expect(reply?.bool("ok") == true, "\(result)")
            #expect(reply?.bool("delivered") == true, "\(result)")
            #expect(reply?.int("pending_documents") == 0, "\(result)")

            let requests = try receiver.dataRequests()
            try #require(requests.count == 1, "\(requests.map(\.bodyText))")
            let request = requests[0]
            #expect(request.path == "/v1/executions")
            #expect(request.decodeError == nil, "\(request.decodeError ?? "")")
            #expect(request.contentEncoding == "gzip")
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.headers["authorization"] == "Bearer \(apiKey)")
            let key = request.idempotencyKey ?? ""
            #expect(isUUIDv4(key), "Idempotency-Key \(key)")
            let agent = request.headers["user-agent"] ?? ""
            #expect(agent.hasPrefix("telemetryd/") && agent.count > "telemetryd/".count, "User-Agent \(agent)")
            #expect(request.rawSize > 0 && request.rawSize < request.body.count, "gzip: \(request.rawSize) bytes on the wire for \(request.body.count)")

            // The decoded body is a JSON array of exactly the documents `telemetry show ID --json` prints, in order.
            let elements = try splitJSONArray(request.body)
            #expect(elements.count == sent.count)
            #expect(try request.executionIDs() == sent)
            for (id, element) in zip(sent, elements) {
                let show = try await daemon.cli(["show", id, "--json"])
                try #require(show.status == 0, "\(show)")
                var printed = Array(show.stdout.utf8)
                if printed.last == UInt8(ascii: "\n") { printed.removeLast() }
                #expect(printed == element, """
                    show --json and the delivered document differ for \(id):
                    shown:     \(String(decoding: printed, as: UTF8.self))
                    delivered: \(String(decoding: element, as: UTF8.self))
                    """)
            }

            // The API key is never shown or logged (trace level, status, test-connection).
            let status = try await daemon.cli(["status", "--json"])
            #expect(status.status == 0, "\(status)")
            #expect(!status.stdout.contains(apiKey) && !status.stderr.contains(apiKey), "status shows the API key")
            let human = try await daemon.cli(["status"])
            #expect(!human.stdout.contains(apiKey) && !human.stderr.contains(apiKey), "status shows the API key")
            let probe = try await daemon.cli(["test-connection", "--json"])
            #expect(probe.status == 0, "\(probe)")
            #expect(!probe.stdout.contains(apiKey) && !probe.stderr.contains(apiKey), "test-connection shows the API key")
            // The probe is an empty batch with the real settings and a fresh key.
            let probes = try receiver.dataRequests().dropFirst()
            #expect(probes.count == 1 && probes.first?.bodyText == "[]", "\(probes.map(\.bodyText))")
            #expect(probes.first?.headers["authorization"] == "Bearer \(apiKey)")
            #expect(probes.first.flatMap(\.idempotencyKey).map { isUUIDv4($0) && $0 != key } == true)
            let cmdline = (try? String(contentsOfFile: "/proc/\(daemon.pid)/cmdline", encoding: .utf8)) ?? ""
            #expect(!cmdline.contains(apiKey))
            try await daemon.terminate(timeout: 10)
            #expect(!daemon.allStderr.contains(apiKey), "the daemon logged the API key:\n\(daemon.allStderr)")
        }
    }

    // 2a
    @Test("TELEMETRY_BATCH_SIZE=3: 7 executions go as batches of 3 and 3 at once; the 7th waits for a flush")
    func sizeTrigger() async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver, ["TELEMETRY_BATCH_SIZE": "3"]), tag: "dl-size") { daemon in
            let sent = freshIDs(7)
            // One at a time, as scripts end: a batch may be in flight while the next documents arrive.
            for id in sent { try await storeExecutions(daemon, [id], script: "size.sh") }
            let requests = try await receiver.waitForRequests(timeout: 10, "two batches") { $0.count >= 2 }
            #expect(requests.count == 2)
            #expect(try requests[0].executionIDs() == Array(sent[0..<3]))
            #expect(try requests[1].executionIDs() == Array(sent[3..<6]))
            #expect(requests[0].idempotencyKey != requests[1].idempotencyKey)

            // The seventh is not due (1 < 3, interval 3600 s): nothing more arrives.
            let more = try await waitUntil(timeout: 0.8, interval: .milliseconds(50)) { try receiver.dataRequests().count > 2 }
            #expect(!more, "a partial batch went out without a trigger")
            #expect(try await deliveryStatus(daemon).int("pending_documents") == 1)

            try await flushUntilDelivered(daemon)
            let all = try receiver.dataRequests()
            #expect(all.count == 3)
            if all.count == 3 { #expect(try all[2].executionIDs() == [sent[6]]) }
        }
    }

    // 2b
    @Test("TELEMETRY_FLUSH_INTERVAL=1: a lone execution arrives 1–3 s after it closed, without any flush")
    func intervalTrigger() async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver, ["TELEMETRY_FLUSH_INTERVAL": "1"]), tag: "dl-int") { daemon in
            let id = newExecutionID()
            try await storeExecutions(daemon, [id], script: "interval.sh")
            let requests = try await receiver.waitForRequests(timeout: 6, "the interval batch") { !$0.isEmpty }
            #expect(requests.count == 1)
            let documents = try requests[0].documents()
            #expect(documents.map { $0.string("execution_id") } == [id])
            let closedAt = try #require(documents.first?.string("closed_at").flatMap(parseRFC3339), "\(documents)")
            let lag = requests[0].time - closedAt
            #expect(lag >= 0.9 && lag <= 3.5, "arrived \(lag) s after the execution closed")
        }
    }

    // 3a
    @Test("503 twice, then 200: one batch, three requests with the same Idempotency-Key; counted as retries")
    func retryThenSuccess() async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver), tag: "dl-retry") { daemon in
            try await receiver.control(["mode": "status", "status": 503, "count": 2])
            let id = newExecutionID()
            try await storeExecutions(daemon, [id], script: "retry.sh")
            // A flush answers within 1.5 s, "still in progress" while the batch is retried: flush until delivered.
            try await flushUntilDelivered(daemon)

            let requests = try receiver.dataRequests()
            let actions = requests.map { $0.action ?? "-" }
            #expect(actions == ["status", "status", "normal"], "\(requests.map { $0.action ?? "-" })")
            let keys = Set(requests.compactMap(\.idempotencyKey))
            #expect(keys.count == 1 && requests.allSatisfy { $0.idempotencyKey != nil }, "keys \(keys)")
            let bodies = try requests.map { try $0.executionIDs() }
            #expect(bodies.allSatisfy { $0 == [id] }, "\(bodies)")

            let delivery = try await deliveryStatus(daemon)
            #expect(delivery.int("retries") == 2, "\(delivery)")
            #expect(delivery.object("failed_attempts")?.int("http_503") == 2, "\(delivery)")
            #expect(delivery.int("batches_delivered") == 1, "\(delivery)")
            #expect(delivery.int("pending_documents") == 0, "\(delivery)")
        }
    }

    // 3b
    @Test("429 with Retry-After: 2 → the retry comes at least 2 s later (above TELEMETRY_RETRY_MAX_BACKOFF=1), same key")
    func retryAfterIsHonoured() async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver), tag: "dl-429") { daemon in
            try await receiver.control(["mode": "status", "status": 429, "count": 1, "retry_after": "2"])
            let id = newExecutionID()
            try await storeExecutions(daemon, [id], script: "throttled.sh")
            // Flushes (polled) during the wait must not make the retry come sooner.
            try await flushUntilDelivered(daemon)

            let requests = try receiver.dataRequests()
            try #require(requests.count == 2, "\(requests.map { $0.action ?? "-" })")
            #expect(requests[0].action == "status" && requests[1].action == "normal")
            #expect(requests[0].idempotencyKey == requests[1].idempotencyKey)
            let gap = requests[1].time - requests[0].time
            #expect(gap >= 2.0, "the retry came \(gap) s after a Retry-After: 2")
            #expect(gap < 6, "the retry came \(gap) s after a Retry-After: 2")

            // Retry-After as an HTTP date, about 3 s ahead: the retry comes no sooner than that date.
            let notBefore = (Date().timeIntervalSince1970 + 3).rounded(.down)
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
            let httpDate = formatter.string(from: Date(timeIntervalSince1970: notBefore))
            try await receiver.control(["mode": "status", "status": 503, "count": 1, "retry_after": httpDate])
            let second = newExecutionID()
            try await storeExecutions(daemon, [second], script: "throttled.sh")
            try await flushUntilDelivered(daemon)
            let more = Array(try receiver.dataRequests().dropFirst(2))
            try #require(more.count == 2, "\(more.map { $0.action ?? "-" })")
            #expect(more[0].idempotencyKey == more[1].idempotencyKey)
            #expect(more[1].time >= notBefore - 0.05, "retried \(notBefore - more[1].time) s before Retry-After: \(httpDate)")
        }
    }

    // 4
    @Test("400 → dead letter: listed with the answer's excerpt, counted in status; replay --all delivers it under a new key")
    func deadLetterAndReplay() async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver), tag: "dl-dead") { daemon in
            try await receiver.control(["mode": "status", "status": 400, "count": 1,
                                        "body": "bad schema: field tags.owner is not allowed"])
            let id = newExecutionID()
            try await storeExecutions(daemon, [id], script: "refused.sh")
            let (result, reply) = try await flushJSON(daemon)
            let requests = try receiver.dataRequests()
            try #require(requests.count == 1, "a refused batch is not retried: \(requests.map { $0.action ?? "-" })")
            let deadKey = try #require(requests[0].idempotencyKey)
            // The flush must not report a refused batch as delivered (FlushOutcome.delivered: "everything stored
            // when the flush was asked for has been delivered").
            #expect(reply?.bool("delivered") != true, "flush reports a dead-lettered batch as delivered: \(result)")
            #expect(result.status != 0 && result.stderr.contains("deadletter list"), "\(result)")

            let list = try await daemon.cli(["deadletter", "list"])
            #expect(list.status == 0, "\(list)")
            #expect(list.stdout.contains(deadKey), "\(list)")
            #expect(list.stdout.contains("400"), "\(list)")
            #expect(list.stdout.contains("bad schema"), "\(list)")
            let listed = try await daemon.cli(["deadletter", "list", "--json"])
            let letters = try parseJSONObject(listed.stdout).array("dead_letters") ?? []
            #expect(letters.count == 1, "\(listed)")
            #expect(letters.first?.string("batch_id") == deadKey)
            #expect(letters.first?.int("status") == 400)
            #expect(letters.first?.int("documents") == 1)
            #expect(letters.first?.string("response")?.contains("bad schema: field tags.owner is not allowed") == true, "\(letters)")

            let delivery = try await deliveryStatus(daemon)
            #expect(delivery.int("batches_dead_lettered") == 1, "\(delivery)")
            #expect(delivery.int("dead_letter_batches") == 1, "\(delivery)")
            #expect(delivery.object("failed_attempts")?.int("http_400") == 1, "\(delivery)")
            #expect(delivery.int("pending_documents") == 0, "\(delivery)")
            // docs/delivery.md: a dead letter is "shown in `telemetry status`" (the human form too).
            let human = try await daemon.cli(["status"])
            #expect(human.stdout.lowercased().contains("dead"), "telemetry status does not show the dead letter:\n\(human.stdout)")
            #expect(daemon.stderr.contains("bad schema"), "the dead letter is logged with the answer's excerpt")

            let replay = try await daemon.cli(["deadletter", "replay", "--all"])
            #expect(replay.status == 0, "\(replay)")
            #expect(replay.stdout.contains("1 document"), "\(replay)")
            try await flushUntilDelivered(daemon)
            let after = try receiver.dataRequests()
            try #require(after.count == 2, "\(after.map { $0.action ?? "-" })")
            #expect(after[1].action == "normal")
            #expect(try after[1].executionIDs() == [id])
            let newKey = after[1].idempotencyKey ?? ""
            #expect(isUUIDv4(newKey) && newKey != deadKey, "replayed under key \(newKey), dead key \(deadKey)")
            let cleared = try await deliveryStatus(daemon)
            #expect(cleared.int("dead_letter_batches") == 0, "\(cleared)")
            let empty = try await daemon.cli(["deadletter", "list"])
            #expect(empty.stdout.contains("no dead letters"), "\(empty)")
        }
    }

    // 4b
    @Test("422 → dead letter; `deadletter purge BATCH_ID` deletes its documents and nothing more is sent")
    func deadLetterPurge() async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver), tag: "dl-purge") { daemon in
            try await receiver.control(["mode": "status", "status": 422, "count": 1, "body": "unprocessable"])
            let refused = newExecutionID()
            try await storeExecutions(daemon, [refused], script: "refused.sh")
            _ = try await flushJSON(daemon)
            let key = try #require(try receiver.dataRequests().last?.idempotencyKey)
            let purge = try await daemon.cli(["deadletter", "purge", key])
            #expect(purge.status == 0 && purge.stdout.contains("1 document"), "\(purge)")
            try #require(daemon.isRunning, "telemetryd died on `telemetry deadletter purge \(key)`:\n\(daemon.stderr.prefix(1_500))")
            #expect(try await daemon.cli(["deadletter", "list"]).stdout.contains("no dead letters"))
            #expect(try await daemon.cli(["show", refused, "--json"]).status != 0, "a purged document is still stored")
            #expect(try await deliveryStatus(daemon).int("dead_letter_batches") == 0)
            try await flushUntilDelivered(daemon)
            #expect(try receiver.dataRequests().count == 1, "a purged document was sent")
        }
    }

    // 5
    @Test("endpoint down (nothing listens, then 503s): status shows the outage, nothing is lost; once back, every document arrives in closing order")
    func outageThenRecovery() async throws {
        let receiver = try await ReceiverProcess()
        let port = try unusedLoopbackPort()
        let forwarder = try TCPForwarder(listenPort: port, targetPort: receiver.port)
        let environment = deliveryEnvironment(receiver, endpoint: "https://127.0.0.1:\(port)/v1/executions",
                                              ["TELEMETRY_BATCH_SIZE": "4", "TELEMETRY_FLUSH_INTERVAL": "1",
                                               "TELEMETRY_RETRY_ATTEMPTS": "1"])
        try await withDaemon(environment: environment, tag: "dl-out") { daemon in
            let scripts = ["alpha.sh", "beta.sh", "gamma.sh"]
            var sent: [(id: String, script: String)] = []
            func send(_ count: Int) async throws {
                let batch = (0..<count).map { index in (id: newExecutionID(), script: scripts[(sent.count + index) % scripts.count]) }
                try await storeExecutions(daemon, batch)
                sent += batch
            }

            // Phase 1: nothing listens on the endpoint's port.
            try await send(5)
            let outage = try await waitForDeliveryStatus(daemon, "an outage with connect failures") {
                $0.string("state") == "outage" && ($0.object("failed_attempts")?.int("connect") ?? 0) > 0
            }
            #expect(outage.string("outage_since") != nil && outage.string("next_attempt_at") != nil, "\(outage)")
            #expect(outage.string("last_error")?.contains("could not connect") == true, "\(outage)")
            try await send(4)
            try await waitForDeliveryStatus(daemon, "9 pending documents") { $0.int("pending_documents") == 9 }
            let (failed, failedReply) = try await flushJSON(daemon)
            #expect(failed.status != 0, "flush during an outage must not succeed: \(failed)")
            #expect(failedReply?.bool("delivered") == false, "\(failed)")
            #expect(failedReply?.int("pending_documents") == 9, "\(failed)")
            #expect(failed.stderr.contains("durable in the local store, but"), "\(failed)")
            let human = try await daemon.cli(["status"])
            #expect(human.stdout.lowercased().contains("outage"), "telemetry status does not show the outage:\n\(human.stdout)")
            #expect(try receiver.dataRequests().isEmpty)

            // The endpoint comes back on the same port, same certificate: everything arrives.
            try await forwarder.start()
            try await flushUntilDelivered(daemon)
            var order = try arrivalOrder(receiver.dataRequests())
            #expect(order == sent.map(\.id), "every document, in the order the executions closed")
            let resumed = try await deliveryStatus(daemon)
            // "delivering" (the last attempt succeeded) or "idle" (nothing waits): no longer an outage.
            #expect(resumed.string("state") != "outage" && resumed.isNull("outage_since"), "\(resumed)")
            #expect(resumed.int("pending_documents") == 0 && resumed.int("documents_delivered") == 9, "\(resumed)")
            #expect(daemon.stderr.contains("delivery resumed after an outage"))

            // Phase 2: the endpoint answers 503 for a while.
            try await receiver.control(["mode": "status", "status": 503, "count": -1])
            let before = try receiver.dataRequests().count
            try await send(6)
            try await waitForDeliveryStatus(daemon, "an outage with 503s") {
                $0.string("state") == "outage" && ($0.object("failed_attempts")?.int("http_503") ?? 0) > 0
                    && $0.int("pending_documents") == 6
            }
            #expect(try receiver.dataRequests().count > before)
            try await receiver.control(["mode": "normal"])
            try await flushUntilDelivered(daemon)
            order = try arrivalOrder(receiver.dataRequests().filter { $0.action == "normal" })
            #expect(order == sent.map(\.id), "every document, in the order the executions closed")
            for script in scripts {
                let expected = sent.filter { $0.script == script }.map(\.id)
                #expect(order.filter { expected.contains($0) } == expected, "order of \(script)")
            }
            #expect(try receiver.receivedExecutionIDs().keys.count == sent.count)
        }
        forwarder.stop()
    }

    // 6
    @Test("kill -9 at random points while sending, 12 times: every execution arrives; duplicates only as whole batches with the same key")
    func crashWhileSending() async throws {
        let receiver = try await ReceiverProcess()
        try await receiver.control(["mode": "slow", "seconds": 0.3, "count": -1])
        let environment = deliveryEnvironment(receiver, ["TELEMETRY_BATCH_SIZE": "2", "TELEMETRY_FLUSH_INTERVAL": "1"])
        try await withDaemon(environment: environment, tag: "dl-kill") { daemon in
            var sent: [String] = []
            var killsInFlight = 0
            for round in 0..<12 {
                if !daemon.isRunning { try await daemon.restart() }
                let batch = freshIDs(3)
                try await storeExecutions(daemon, batch, script: "crash-\(round % 3).sh")
                sent += batch
                // A random point: often while a (slow) request is in flight, sometimes between requests.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...600)))
                let requestsBefore = try receiver.requests().count
                try await daemon.kill9()
                // Only an estimate of in-flight kills: the last recorded request started less than 0.3 s ago.
                if let last = try receiver.requests().last, requestsBefore > 0, Date().timeIntervalSince1970 - last.time < 0.3 {
                    killsInFlight += 1
                }
            }
            try await daemon.restart()
            try await receiver.control(["mode": "normal"])
            try await flushUntilDelivered(daemon, timeout: 20)

            let requests = try receiver.dataRequests().filter { $0.decodeError == nil && !$0.body.isEmpty }
            var bodiesByKey: [String: [[String]]] = [:]
            for request in requests {
                let key = try #require(request.idempotencyKey, "a request without Idempotency-Key")
                bodiesByKey[key, default: []].append(try request.executionIDs())
            }
            var batchOf: [String: String] = [:]
            for (key, bodies) in bodiesByKey {
                #expect(bodies.allSatisfy { $0 == bodies[0] }, "batch \(key) was sent with different contents: \(bodies)")
                for id in bodies[0] {
                    if let other = batchOf[id], other != key {
                        Issue.record("execution \(id) arrived in two batches, \(other) and \(key)")
                    }
                    batchOf[id] = key
                }
            }
            let missing = sent.filter { batchOf[$0] == nil }
            #expect(missing.isEmpty, "\(missing.count) of \(sent.count) executions never arrived: \(missing)\n\(daemon.allStderr.suffix(4_000))")
            #expect(Set(batchOf.keys) == Set(sent), "the receiver got executions that were never sent")
            // Crashes do not reorder: first arrivals follow the order in which the executions closed.
            #expect(try arrivalOrder(requests) == sent, "arrival order differs from closing order")
            let repeated = bodiesByKey.values.filter { $0.count > 1 }.count
            print("crashWhileSending: \(sent.count) executions, \(bodiesByKey.count) batches, \(repeated) resent after a crash, ~\(killsInFlight) kills with a request in flight")
        }
    }

    // 7
    @Test("untrusted certificate: without TELEMETRY_CA_FILE nothing is delivered and test-connection names the TLS verification failure; with it, HTTP 200")
    func untrustedCertificate() async throws {
        let receiver = try await ReceiverProcess()
        var environment = deliveryEnvironment(receiver)
        environment["TELEMETRY_CA_FILE"] = nil
        try await withDaemon(environment: environment, tag: "dl-tls") { daemon in
            let probe = try await daemon.cli(["test-connection"])
            #expect(probe.status == 1, "\(probe)")
            let said = (probe.stdout + probe.stderr).lowercased()
            #expect(said.contains("not trusted") || said.contains("verif"), "\(probe)")
            #expect(said.contains("tls_verification"), "\(probe)")
            #expect(said.contains("telemetry_ca_file"), "the message tells what to do: \(probe)")
            let probeJSON = try parseJSONObject(try await daemon.cli(["test-connection", "--json"]).stdout)
            #expect(probeJSON.string("failure") == "tls_verification", "\(probeJSON)")

            let id = newExecutionID()
            try await storeExecutions(daemon, [id], script: "tls.sh")
            let (result, reply) = try await flushJSON(daemon)
            #expect(result.status != 0 && reply?.bool("delivered") == false, "\(result)")
            #expect(try receiver.dataRequests().isEmpty, "a request got through an untrusted certificate")
            let delivery = try await deliveryStatus(daemon)
            #expect((delivery.object("failed_attempts")?.int("tls_verification") ?? 0) > 0, "\(delivery)")
            #expect(delivery.int("pending_documents") == 1, "\(delivery)")

            // With the CA: the same store is delivered after a restart.
            try await daemon.kill9()
            daemon.environment["TELEMETRY_CA_FILE"] = receiver.caFile
            try await daemon.restart()
            let good = try await daemon.cli(["test-connection"])
            #expect(good.status == 0, "\(good)")
            #expect(good.stdout.contains("HTTP 200"), "\(good)")
            try await flushUntilDelivered(daemon)
            #expect(try receiver.receivedExecutionIDs()[id] == 1)
        }
    }

    // 8
    @Test("mTLS: with TELEMETRY_CLIENT_CERT/KEY delivery works; without them test-connection fails and says a client certificate is needed")
    func mutualTLS() async throws {
        let receiver = try await ReceiverProcess(.requireClientCert)
        let withCertificate = deliveryEnvironment(receiver, ["TELEMETRY_CLIENT_CERT": receiver.clientCertificate,
                                                             "TELEMETRY_CLIENT_KEY": receiver.clientKey])
        try await withDaemon(environment: withCertificate, tag: "dl-mtls") { daemon in
            let probe = try await daemon.cli(["test-connection"])
            #expect(probe.status == 0, "\(probe)")
            #expect(probe.stdout.contains("HTTP 200"), "\(probe)")
            let id = newExecutionID()
            try await storeExecutions(daemon, [id], script: "mtls.sh")
            try await flushUntilDelivered(daemon)
            let requests = try receiver.dataRequests()
            let delivered = requests.filter { (try? $0.executionIDs()) == [id] }
            #expect(delivered.count == 1, "\(requests.map(\.bodyText))")
            #expect(delivered.first?.clientCertSubject?.contains("telemetryd test client") == true,
                    "\(delivered.first?.clientCertSubject ?? "no client certificate")")
        }
        try await withDaemon(environment: deliveryEnvironment(receiver), tag: "dl-nocrt") { daemon in
            let probe = try await daemon.cli(["test-connection"])
            #expect(probe.status == 1, "\(probe)")
            let said = probe.stdout + probe.stderr
            #expect(said.contains("client certificate"), "\(probe)")
            #expect(said.contains("TELEMETRY_CLIENT_CERT"), "\(probe)")
            let id = newExecutionID()
            try await storeExecutions(daemon, [id], script: "nocert.sh")
            let (result, reply) = try await flushJSON(daemon)
            #expect(result.status != 0 && reply?.bool("delivered") == false, "\(result)")
            #expect(try receiver.receivedExecutionIDs()[id] == nil)
        }
    }

    // 9
    @Test("TELEMETRY_FORMAT=otlp: POSTs to /v1/logs and /v1/metrics with one key; both validate against the OTLP protobuf definitions")
    func otlp() async throws {
        let receiver = try await ReceiverProcess()
        let environment = deliveryEnvironment(receiver, endpoint: receiver.url(""), ["TELEMETRY_FORMAT": "otlp"])
        try await withDaemon(environment: environment, tag: "dl-otlp") { daemon in
            let sent = freshIDs(2)
            try await storeExecutions(daemon, [(sent[0], "otlp-a.sh"), (sent[1], "otlp-b.sh")])
            let failing = newExecutionID()
            let client = try daemon.connect()
            try client.sendLines([Wire.start(failing, script: "otlp-c.sh"),
                                  Wire.event(failing, "warning", "disk", "92% full"),
                                  Wire.event(failing, "error", "upload", "refused", duration: 0.5),
                                  Wire.metric(failing, "bytes", 1_048_576),
                                  Wire.end(failing, exitCode: 2)])
            _ = try await client.request(Wire.control("sync"))
            client.close()
            try await flushUntilDelivered(daemon)

            let requests = try receiver.dataRequests()
            let logs = requests.filter { $0.path == "/v1/logs" }
            let metrics = requests.filter { $0.path == "/v1/metrics" }
            try #require(logs.count == 1 && metrics.count == 1, "\(requests.map(\.path))")
            #expect(logs[0].idempotencyKey != nil && logs[0].idempotencyKey == metrics[0].idempotencyKey)
            #expect(logs[0].headers["content-type"] == "application/json")
            #expect(logs[0].contentEncoding == "gzip" && logs[0].decodeError == nil)
            for id in sent + [failing] {
                #expect(logs[0].bodyText.contains(id), "the logs request lacks execution \(id)")
            }
            let dir = try TempDir("otlp")
            defer { dir.remove() }
            for (kind, request) in [("logs", logs[0]), ("metrics", metrics[0])] {
                let file = dir.file("\(kind).json")
                try Data(request.body).write(to: URL(fileURLWithPath: file))
                let script = URL(fileURLWithPath: ReceiverProcess.script).deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent("otlp/validate.py").path
                let validated = try await runProcess("/usr/bin/env", ["python3", script, kind, file], timeout: 60)
                #expect(validated.status == 0, "validate.py \(kind):\n\(validated)\nbody: \(request.bodyText.prefix(2_000))")
            }
            // test-connection speaks OTLP too: an empty logs request to /v1/logs.
            let probe = try await daemon.cli(["test-connection"])
            #expect(probe.status == 0 && probe.stdout.contains("HTTP 200"), "\(probe)")
            let probes = Array(try receiver.dataRequests().dropFirst(requests.count))
            #expect(probes.map(\.path) == ["/v1/logs"], "\(probes.map(\.path))")
        }
    }

    // 10
    @Test("SIGTERM: pending documents are delivered before exit (exit 0 in time); with the receiver hanging the daemon still exits in time and delivers after a restart")
    func lastDeliveryAtShutdown() async throws {
        let receiver = try await ReceiverProcess()
        let shutdownTimeout = 3.0
        let environment = deliveryEnvironment(receiver, ["TELEMETRY_SHUTDOWN_TIMEOUT": String(Int(shutdownTimeout))])
        try await withDaemon(environment: environment, tag: "dl-term") { daemon in
            // Receiver up.
            let first = freshIDs(2)
            try await storeExecutions(daemon, first, script: "term.sh")
            #expect(try receiver.dataRequests().isEmpty, "nothing is due before the shutdown")
            let stopped = try await daemon.terminate(timeout: shutdownTimeout + 10)
            #expect(stopped.status == 0 && !stopped.signaled, "exit \(stopped)\n\(daemon.stderr)")
            #expect(stopped.seconds <= shutdownTimeout + 3, "took \(stopped.seconds) s")
            #expect(try arrivalOrder(receiver.dataRequests()) == first, "\(daemon.stderr)")

            // Receiver hanging: the daemon still exits within the bound; the documents wait in the store.
            try await receiver.control(["mode": "hang", "seconds": 30, "count": -1])
            try await daemon.restart()
            let second = freshIDs(2)
            try await storeExecutions(daemon, second, script: "term.sh")
            let hung = try await daemon.terminate(timeout: shutdownTimeout + 10)
            #expect(hung.status == 0 && !hung.signaled, "exit \(hung)\n\(daemon.stderr)")
            #expect(hung.seconds <= shutdownTimeout + 3, "took \(hung.seconds) s with a hanging receiver")
            #expect(try receiver.dataRequests().contains { $0.action == "hang" }, "the last delivery was not even tried")
            let answeredWhileHanging = try receiver.dataRequests().filter { $0.action == "normal" }
            #expect(try arrivalOrder(answeredWhileHanging) == first, "no 200 for the second pair before the restart")

            try await receiver.control(["mode": "normal"])
            try await daemon.restart()
            try await flushUntilDelivered(daemon)
            let answered = try receiver.dataRequests().filter { $0.action == "normal" }
            #expect(try arrivalOrder(answered) == first + second)
        }
    }

    // Extras around 1
    @Test("zstd and no compression: Content-Encoding says so and the body decodes to the documents", arguments: ["zstd", "none"])
    func otherCompressions(_ compression: String) async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver, ["TELEMETRY_COMPRESSION": compression]), tag: "dl-cmp") { daemon in
            let sent = freshIDs(2)
            try await storeExecutions(daemon, sent, script: "compress.sh")
            try await flushUntilDelivered(daemon)
            let requests = try receiver.dataRequests()
            try #require(requests.count == 1)
            #expect(requests[0].contentEncoding == (compression == "none" ? nil : compression))
            #expect(requests[0].decodeError == nil, "\(requests[0].decodeError ?? "")")
            #expect(try requests[0].executionIDs() == sent)
            if compression == "none" { #expect(requests[0].rawSize == requests[0].body.count) }
        }
    }

    @Test("TELEMETRY_API_KEY_FILE (with a trailing newline) and a token in the endpoint's query: sent as configured, shown and logged nowhere")
    func secretsFromFileAndURL() async throws {
        let receiver = try await ReceiverProcess()
        let dir = try TempDir("dl-key")
        defer { dir.remove() }
        let apiKey = "kf_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let keyFile = try dir.write("api-key", apiKey + "\n", mode: 0o600)
        let token = "qt" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let environment = deliveryEnvironment(receiver, endpoint: receiver.url("/v1/executions?token=\(token)"),
                                              ["TELEMETRY_API_KEY_FILE": keyFile, "TELEMETRY_LOG_LEVEL": "trace"])
        try await withDaemon(environment: environment, tag: "dl-sec") { daemon in
            let id = newExecutionID()
            try await storeExecutions(daemon, [id], script: "secret.sh")
            try await flushUntilDelivered(daemon)
            let requests = try receiver.dataRequests()
            try #require(requests.count == 1)
            #expect(requests[0].path == "/v1/executions?token=\(token)", "the endpoint is used exactly as configured")
            #expect(requests[0].headers["authorization"] == "Bearer \(apiKey)", "\(requests[0].headers["authorization"] ?? "no Authorization")")

            var shown = ""
            for arguments in [["status", "--json"], ["status"], ["test-connection"], ["test-connection", "--json"]] {
                let result = try await daemon.cli(arguments)
                shown += result.stdout + result.stderr
            }
            // Make it fail once, so that the failure path's messages are checked too.
            try await receiver.control(["mode": "status", "status": 401, "count": 1])
            shown += (try await daemon.cli(["test-connection"])).stderr
            try await daemon.terminate(timeout: 10)
            for (secret, name) in [(apiKey, "the API key"), (token, "the endpoint's query token")] {
                #expect(!shown.contains(secret), "\(name) is shown:\n\(shown)")
                #expect(!daemon.allStderr.contains(secret), "\(name) is logged:\n\(daemon.allStderr)")
            }
        }
    }

    // Extra around 2
    @Test("TELEMETRY_BATCH_MAX_BYTES=1024: batches stay under it, a larger document goes alone, all in order")
    func batchByteLimit() async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver, ["TELEMETRY_BATCH_MAX_BYTES": "1024"]), tag: "dl-bytes") { daemon in
            let small = freshIDs(4)
            let large = newExecutionID()
            let client = try daemon.connect()
            var lines: [String] = []
            for id in small[0..<2] { lines += [Wire.start(id, script: "b.sh"), Wire.end(id, exitCode: 0)] }
            // Tag values are at most 1024 bytes: three of them make a document of about 3.5 KB.
            lines += [Wire.start(large, script: "b.sh")]
                + (1...3).map { Wire.tag(large, "blob\($0)", String(repeating: "x", count: 1_000)) }
                + [Wire.end(large, exitCode: 0)]
            for id in small[2..<4] { lines += [Wire.start(id, script: "b.sh"), Wire.end(id, exitCode: 0)] }
            try client.sendLines(lines)
            _ = try await client.request(Wire.control("sync"))
            client.close()
            try await flushUntilDelivered(daemon)

            let requests = try receiver.dataRequests()
            #expect(try arrivalOrder(requests) == Array(small[0..<2]) + [large] + Array(small[2..<4]))
            for request in requests {
                let elements = try splitJSONArray(request.body)
                let bytes = elements.reduce(0) { $0 + $1.count }
                #expect(elements.count == 1 || bytes <= 1024, "a batch of \(elements.count) documents, \(bytes) bytes: \(elements.map(\.count))")
                if try request.executionIDs().contains(large) {
                    #expect(elements.count == 1, "the large document is sent alone: \(elements.map(\.count)) bytes")
                }
            }
        }
    }

    // Extras around 3 and 4
    @Test("408, 500, 502 and 504 are retried with the same key; 401, 403, 404 and 413 become dead letters at once")
    func statusClasses() async throws {
        let receiver = try await ReceiverProcess()
        try await withDaemon(environment: deliveryEnvironment(receiver), tag: "dl-codes") { daemon in
            for status in [408, 500, 502, 504] {
                let before = try receiver.dataRequests().count
                try await receiver.control(["mode": "status", "status": status, "count": 1])
                let id = newExecutionID()
                try await storeExecutions(daemon, [id], script: "codes.sh")
                try await flushUntilDelivered(daemon)
                let new = Array(try receiver.dataRequests().dropFirst(before))
                #expect(new.count == 2 && new.first?.idempotencyKey == new.last?.idempotencyKey
                        && new.allSatisfy { (try? $0.executionIDs()) == [id] },
                        "HTTP \(status) is retried once with the same batch: \(new.map { "\($0.action ?? "-") \($0.idempotencyKey ?? "-")" })")
            }
            var refused: [String] = []
            for status in [401, 403, 404, 413] {
                let before = try receiver.dataRequests().count
                try await receiver.control(["mode": "status", "status": status, "count": 1])
                let id = newExecutionID()
                try await storeExecutions(daemon, [id], script: "codes.sh")
                _ = try await flushJSON(daemon)
                let new = Array(try receiver.dataRequests().dropFirst(before))
                #expect(new.count == 1, "HTTP \(status) is not retried: \(new.map { $0.action ?? "-" })")
                refused += new.compactMap(\.idempotencyKey)
            }
            let listed = try await daemon.cli(["deadletter", "list", "--json"])
            let letters = try parseJSONObject(listed.stdout).array("dead_letters") ?? []
            #expect(Set(letters.compactMap { $0.string("batch_id") }) == Set(refused), "\(listed)")
            #expect(letters.compactMap { $0.int("status") }.sorted() == [401, 403, 404, 413], "\(listed)")
            let delivery = try await deliveryStatus(daemon)
            #expect(delivery.int("dead_letter_batches") == 4 && delivery.int("batches_dead_lettered") == 4, "\(delivery)")
            #expect(delivery.int("pending_documents") == 0, "\(delivery)")
        }
    }

    // Extra around 10
    @Test("SIGTERM during an outage with a long backoff (TELEMETRY_RETRY_MAX_BACKOFF=300): the daemon exits within TELEMETRY_SHUTDOWN_TIMEOUT, nothing is lost")
    func shutdownDuringOutage() async throws {
        let receiver = try await ReceiverProcess()
        let environment = deliveryEnvironment(receiver, ["TELEMETRY_RETRY_MAX_BACKOFF": "300", "TELEMETRY_FLUSH_INTERVAL": "1"])
        try await withDaemon(environment: environment, tag: "dl-outst") { daemon in
            try await receiver.control(["mode": "status", "status": 503, "count": -1])
            let sent = freshIDs(3)
            try await storeExecutions(daemon, sent, script: "outage.sh")
            try await waitForDeliveryStatus(daemon, "an outage") { $0.string("state") == "outage" }
            let stopped = try await daemon.terminate(timeout: 15)
            #expect(stopped.status == 0 && !stopped.signaled, "\(stopped)")
            #expect(stopped.seconds <= 2 + 3, "took \(stopped.seconds) s to stop during an outage")

            try await receiver.control(["mode": "normal"])
            try await daemon.restart()
            try await flushUntilDelivered(daemon)
            #expect(try arrivalOrder(receiver.dataRequests().filter { $0.action == "normal" }) == sent)
        }
    }

    @Test("SIGHUP with a new endpoint and API key: the next batch goes to the new receiver with the new key, at once, with no restart and nothing lost")
    func reloadSwitchesEndpoint() async throws {
        let first = try await ReceiverProcess()
        let second = try await ReceiverProcess()
        defer {
            first.stop()
            second.stop()
        }
        let dir = try TempDir("dl-rel")
        let notify = try NotifySocket(path: dir.file("notify.sock"))
        // The endpoint lives in the file (reloadable); the rest stays in the environment.
        var environment = deliveryEnvironment(first)
        environment["TELEMETRY_ENDPOINT"] = nil
        environment["TELEMETRY_CA_FILE"] = nil
        environment["NOTIFY_SOCKET"] = notify.path
        let daemon = try DaemonProcess(dir: dir, environment: environment)
        defer {
            daemon.forceStop()
            dir.remove()
        }
        _ = try dir.write("telemetryd.conf", "TELEMETRY_ENDPOINT=\(first.url())\nTELEMETRY_CA_FILE=\(first.caFile)\nTELEMETRY_API_KEY=old-key\n", mode: 0o640)
        try await daemon.start()
        let before = freshIDs(2)
        try await storeExecutions(daemon, before, script: "reload.sh")
        try await flushUntilDelivered(daemon)
        #expect(try first.dataRequests().flatMap { try $0.executionIDs() }.sorted() == before.sorted())

        _ = try dir.write("telemetryd.conf", "TELEMETRY_ENDPOINT=\(second.url())\nTELEMETRY_CA_FILE=\(second.caFile)\nTELEMETRY_API_KEY=new-key\n", mode: 0o640)
        daemon.signal(SIGHUP)
        // The READY=1 that ends the reload, not the one of the start: it comes after RELOADING=1.
        let reloaded = await notify.waitFor(timeout: 10) { message in
            guard message.contains("READY=1"), let reloading = notify.messages.firstIndex(where: { $0.contains("RELOADING=1") }),
                  let ready = notify.messages.lastIndex(of: message) else { return false }
            return ready > reloading
        }
        #expect(reloaded != nil, "\(notify.messages)\n\(daemon.stderr)")
        #expect(daemon.stderr.contains("applied TELEMETRY_ENDPOINT, TELEMETRY_API_KEY, TELEMETRY_CA_FILE"), "\(daemon.stderr)")

        let after = freshIDs(2)
        try await storeExecutions(daemon, after, script: "reload.sh")
        try await flushUntilDelivered(daemon)
        let moved = try second.dataRequests()
        #expect(try moved.flatMap { try $0.executionIDs() }.sorted() == after.sorted(), "\(moved.map(\.bodyText))")
        #expect(moved.allSatisfy { $0.headers["authorization"] == "Bearer new-key" })
        #expect(try first.dataRequests().count == 1, "nothing more went to the old endpoint")
        #expect(daemon.pid > 0 && daemon.starts == 1, "no restart")
    }
}
