import Testing
import TelemetryWire

@Suite("batch_id member")
struct BatchIDTests {
    @Test("a control line carries batch_id; a data line with it is refused as an unknown field, not a crash")
    func batchID() throws {
        let replay = try WireParser.parse(#"{"v":1,"kind":"control","request":"deadletter_purge","batch_id":"3f2c"}"#)
        #expect(replay == .control(ControlRequest(command: .deadletterPurge, batchID: "3f2c")))
        let line = #"{"v":1,"kind":"event","execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b","ts":1,"level":"info","operation":"op","batch_id":"y"}"#
        #expect(throws: WireError.self) { try WireParser.parse(line) }
        do {
            _ = try WireParser.parse(line)
        } catch {
            #expect(error.reason == .unknownField || error.reason == .badTimestamp, "\(error)")
        }
    }
}

@Suite("Refused control requests")
struct RefusedControlTests {
    @Test("a refused control line is marked as one (its sender waits for a reply); a refused data line is not")
    func marked() {
        let control = [
            #"{"v":1,"kind":"control","request":"reboot"}"#,
            #"{"v":1,"kind":"control","request":"show"}"#,
            #"{"v":1,"kind":"control","request":"status","bogus":1}"#,
        ]
        for line in control {
            do {
                _ = try WireParser.parse(line)
                Issue.record("accepted \(line)")
            } catch {
                #expect(error.isControlRequest, "\(line)")
            }
        }
        let data = [#"{"v":1,"kind":"tag","message":"control"}"#, #"{"v":1,"kind":"bogus","x":"control"}"#]
        for line in data {
            do {
                _ = try WireParser.parse(line)
                Issue.record("accepted \(line)")
            } catch {
                #expect(!error.isControlRequest, "\(line)")
            }
        }
    }
}
