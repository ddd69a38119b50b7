import TelemetryWire

/// A bounded memory of execution ids that recently closed, so late lines for them are refused without a
/// store lookup. Older ids fall out in FIFO order; the store remains the authority for those.
struct RecentlyClosed {
    private var members: Set<ExecutionID> = []
    private var order: [ExecutionID] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        order.reserveCapacity(capacity)
    }

    func contains(_ id: ExecutionID) -> Bool { members.contains(id) }

    mutating func insert(_ id: ExecutionID) {
        guard members.insert(id).inserted else { return }
        if order.count < capacity {
            order.append(id)
        } else {
            members.remove(order[head])
            order[head] = id
            head = (head + 1) % capacity
        }
    }
}
