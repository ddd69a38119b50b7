/// MESSAGE_ID values of the daemon's important journal entries. They are stable: operators filter on them
/// (`journalctl MESSAGE_ID=…`) and `systemd/telemetryd.catalog` explains each one (`journalctl -x`).
///
/// A log call carries one as the `message_id` metadata key; the journal handler writes it as MESSAGE_ID.
public enum JournalMessageID {
    /// The metadata key that becomes the journal's MESSAGE_ID field.
    public static let metadataKey = "message_id"

    public static let started = "3944deaae2354d7c832a23c431d62065"
    public static let stopped = "f9938a7fe9d545e5bbe9a252271b18d6"
    public static let deliveryFailed = "281c71bc61dc4142a7f35a3506343f80"
    public static let outageBegan = "e8f7f371240348879c064d7ae5840d15"
    public static let outageEnded = "ccf6ce0cb18c41d1a53fe1dc918225c0"
    public static let batchDeadLettered = "5fdc2e4fe6e74223ab707fc43cc7298d"
    public static let configurationReloaded = "2c8f417b0cc9423cb924dfa1b31edcea"
    public static let reloadRejected = "37dcbe6d785f46c3ad5dcb8edae312a3"
    public static let storeFull = "afb73ad866c3467aa49162944e08cbf9"
    public static let fsyncFailed = "7d3feec7bd824a918b6d409d5f1e3c45"
    public static let commitFailed = "07e3d8923f8e441f81d4c4cac786726a"
    public static let commitsRecovered = "b24bda6935084898b154b75ab9f4ac6c"
    public static let executionCompleted = "e140fb4759d6466fa6b763bfb30cf280"
}
