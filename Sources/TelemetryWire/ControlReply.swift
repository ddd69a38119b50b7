/// The envelope of every reply to a control line (docs/protocol.md, "Replies"):
/// `{"v":1,"ok":…,"request":"…",<members>}`, with `"error":"…"` when something went wrong. The daemon writes
/// it, and so does `telemetry send` when it answers for an absent daemon: one definition for both.
public enum ControlReply {
    /// The reply as one JSON object without the newline. `request` is nil when the line was refused before
    /// its request could be read.
    public static func encode(request: String?, ok: Bool, error: String? = nil,
                              _ members: (inout JSONWriter) -> Void = { _ in }) -> [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.key("v"); json.integer(Int64(wireProtocolVersion))
        json.key("ok"); json.bool(ok)
        if let request { json.key("request"); json.string(request) }
        members(&json)
        if let error { json.key("error"); json.string(error) }
        json.endObject()
        return json.bytes
    }
}
