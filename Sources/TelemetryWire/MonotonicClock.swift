#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CLOCK_MONOTONIC in microseconds: for intervals, deadlines and heartbeats, which a wall-clock step (NTP, an
/// operator's `date -s`) must not stretch or shrink. Wall-clock times are `Timestamp.now()`.
public func monotonicMicroseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
}

/// CLOCK_MONOTONIC in seconds.
public func monotonicSeconds() -> Double {
    Double(monotonicMicroseconds()) / 1_000_000
}
