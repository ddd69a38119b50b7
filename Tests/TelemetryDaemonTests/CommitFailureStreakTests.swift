import Testing
@testable import TelemetryDaemon

@Suite("Commit failure streak")
struct CommitFailureStreakTests {
    @Test("the first failure is reported, then one reminder a minute, and the success that ends the streak")
    func reports() {
        var streak = CommitFailureStreak()
        #expect(streak.succeeded(at: 0) == nil, "no streak, nothing ended")
        #expect(streak.failed(at: 1_000_000) == .first)
        #expect(streak.failed(at: 2_000_000) == .quiet)
        #expect(streak.failed(at: 60_999_999) == .quiet)
        #expect(streak.failed(at: 61_000_000) == .reminder)
        #expect(streak.failed(at: 62_000_000) == .quiet)
        #expect(streak.failed(at: 121_000_000) == .reminder)
        #expect(streak.failures == 6)
        let ended = streak.succeeded(at: 125_500_000)
        #expect(ended?.failures == 6 && ended?.seconds == 124)
        #expect(streak.succeeded(at: 126_000_000) == nil, "reported once")
        #expect(streak.failed(at: 200_000_000) == .first, "a new streak starts over")
    }
}
