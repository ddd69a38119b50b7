import Testing
import TelemetryClient

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` with `strings` as an `ArgumentList` over C strings laid out like `argv` (null-terminated).
private func withArguments<Result, Failure: Error>(
    _ strings: [String], _ body: (ArgumentList) throws(Failure) -> Result
) throws(Failure) -> Result {
    let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
    for (index, string) in strings.enumerated() { argv[index] = strdup(string) }
    argv[strings.count] = nil
    defer {
        for index in 0..<strings.count { free(argv[index]) }
        argv.deallocate()
    }
    return try body(ArgumentList(base: argv, count: strings.count))
}

/// Parses `strings` for `send` (flags --strict, --quiet, --wait; options --socket, --timeout,
/// --max-line-bytes).
private func parseSend(_ strings: [String]) throws(UsageError) -> ParsedOptions {
    try withArguments(strings) { arguments throws(UsageError) in
        try ParsedOptions.parse(arguments, flags: [.strict, .quiet, .wait], options: [.socket, .timeout, .maxLineBytes])
    }
}

/// The usage error parsing `strings` raises (by default for `send`'s options), or nil when they parse.
private func usageMessage(_ strings: [String], flags: CommandOptionSet = [.strict, .quiet, .wait],
                          options: CommandOptionSet = [.socket, .timeout, .maxLineBytes]) -> String? {
    withArguments(strings) { arguments -> String? in
        do throws(UsageError) {
            _ = try ParsedOptions.parse(arguments, flags: flags, options: options)
            return nil
        } catch {
            return error.message
        }
    }
}

@Suite("ArgumentList")
struct ArgumentListTests {
    @Test func readsEachArgumentAndDropsTheFirst() {
        withArguments(["send", "--socket", "/tmp/s.sock", "ünïcode"]) { arguments in
            #expect(arguments.count == 4)
            #expect(!arguments.isEmpty)
            #expect(arguments.first == "send")
            #expect(arguments[3] == "ünïcode")
            let rest = arguments.dropFirst()
            #expect(rest.count == 3)
            #expect(rest.first == "--socket")
            #expect(rest[1] == "/tmp/s.sock")
            #expect(rest.dropFirst().dropFirst().dropFirst().isEmpty)
        }
    }

    @Test func emptyListHasNoFirstAndStaysEmpty() {
        withArguments([]) { arguments in
            #expect(arguments.isEmpty)
            #expect(arguments.first == nil)
            #expect(arguments.dropFirst().isEmpty)
        }
    }

    @Test func processArgumentsMatchCommandLineArguments() {
        let arguments = ArgumentList.processArguments
        let expected = Array(CommandLine.arguments.dropFirst())
        #expect(arguments.count == expected.count)
        for index in 0..<arguments.count {
            #expect(arguments[index] == expected[index])
        }
    }
}

@Suite("ParsedOptions")
struct ParsedOptionsTests {
    @Test func everyOptionIsFoundByItsOwnName() {
        for option in CommandOption.allCases {
            #expect(CommandOption(name: option.name) == option)
        }
        #expect(CommandOption(name: "-h") == .help)
        #expect(CommandOption(name: "-q") == .quiet)
        #expect(CommandOption(name: "--Help") == nil)
        #expect(CommandOption(name: "-") == nil)
    }

    @Test func optionSetLiteralHoldsItsMembersOnly() {
        let set: CommandOptionSet = [.json, .socket]
        #expect(set.contains(.json))
        #expect(set.contains(.socket))
        #expect(!set.contains(.help))
        #expect(!CommandOptionSet().contains(.json))
    }

    @Test func flagsAndValuesInBothForms() throws {
        let parsed = try parseSend(["--strict", "--socket", "/a.sock", "--timeout=1.5", "-q", "--max-line-bytes", "4096"])
        #expect(parsed.has(.strict))
        #expect(parsed.has(.quiet))
        #expect(!parsed.has(.wait))
        #expect(!parsed.has(.help))
        #expect(parsed.value(.socket) == "/a.sock")
        #expect(try parsed.seconds(.timeout) == 1.5)
        #expect(try parsed.integer(.maxLineBytes, in: 256...1_048_576) == 4096)
        #expect(parsed.positionals.isEmpty)
    }

    @Test func noArgumentsParseToNothing() throws {
        let parsed = try parseSend([])
        #expect(parsed.flags == CommandOptionSet())
        #expect(parsed.value(.socket) == nil)
        #expect(try parsed.seconds(.timeout) == nil)
        #expect(try parsed.integer(.maxLineBytes, in: 256...1_048_576) == nil)
    }

    @Test func theLastValueCountsAndAValueMayContainEqualsOrStartWithADash() throws {
        let parsed = try parseSend(["--socket=/first", "--socket", "/second=x", "--timeout", "-1"])
        #expect(parsed.value(.socket) == "/second=x")
        #expect(parsed.value(.timeout) == "-1")
        #expect(try parsed.integer(.maxLineBytes, in: 1...2) == nil)
        let inline = try parseSend(["--socket=a=b", "--socket="])
        #expect(inline.value(.socket) == "")
    }

    @Test func helpIsAcceptedByEveryCommand() throws {
        #expect(try parseSend(["-h"]).has(.help))
        #expect(try parseSend(["--help"]).has(.help))
        let status = try withArguments(["--help"]) { arguments throws(UsageError) in
            try ParsedOptions.parse(arguments, flags: [.json], options: [.socket, .timeout])
        }
        #expect(status.has(.help))
    }

    @Test func positionalsIncludeADashAndEverythingAfterTheDoubleDash() throws {
        let parsed = try withArguments(["list", "-", "--json", "--", "--all", "x"]) { arguments throws(UsageError) in
            try ParsedOptions.parse(arguments, flags: [.json, .all], options: [.socket, .timeout])
        }
        #expect(parsed.positionals == ["list", "-", "--all", "x"])
        #expect(parsed.has(.json))
        #expect(!parsed.has(.all))
    }

    @Test func usageErrorsSayWhatWasWrong() {
        #expect(usageMessage(["--foo"]) == "unknown option --foo")
        #expect(usageMessage(["--foo=bar"]) == "unknown option --foo")
        #expect(usageMessage(["-x"]) == "unknown option -x")
        #expect(usageMessage(["--json"]) == "unknown option --json")
        #expect(usageMessage(["--strict=yes"]) == "--strict takes no value")
        #expect(usageMessage(["-q=1"]) == "--quiet takes no value")
        #expect(usageMessage(["-h=1"]) == "--help takes no value")
        #expect(usageMessage(["--socket"]) == "--socket needs a value")
        #expect(usageMessage(["--wait", "--timeout"]) == "--timeout needs a value")
    }

    @Test func anAliasOfAnOptionTheCommandLacksIsReportedByItsLongName() {
        let message = usageMessage(["-q"], flags: [.json], options: [.socket, .timeout])
        #expect(message == "unknown option --quiet")
    }

    @Test func numbersAreCheckedAgainstTheirRange() throws {
        #expect(throws: UsageError(message: "--timeout must be a number of seconds between 0 and 3600 (got \"0\")")) {
            try parseSend(["--timeout", "0"]).seconds(.timeout)
        }
        #expect(throws: UsageError(message: "--timeout must be a number of seconds between 0 and 3600 (got \"3601\")")) {
            try parseSend(["--timeout=3601"]).seconds(.timeout)
        }
        #expect(throws: UsageError(message: "--timeout must be a number of seconds between 0 and 3600 (got \"soon\")")) {
            try parseSend(["--timeout=soon"]).seconds(.timeout)
        }
        #expect(try parseSend(["--timeout=3600"]).seconds(.timeout) == 3600)
        #expect(throws: UsageError(message: "--max-line-bytes must be a whole number between 256 and 1048576 (got \"255\")")) {
            try parseSend(["--max-line-bytes", "255"]).integer(.maxLineBytes, in: 256...1_048_576)
        }
        #expect(throws: UsageError(message: "--max-line-bytes must be a whole number between 256 and 1048576 (got \"1e3\")")) {
            try parseSend(["--max-line-bytes", "1e3"]).integer(.maxLineBytes, in: 256...1_048_576)
        }
        #expect(try parseSend(["--max-line-bytes", "1048576"]).integer(.maxLineBytes, in: 256...1_048_576) == 1_048_576)
    }
}

@Suite("ClientEnvironment switches")
struct ClientEnvironmentSwitchTests {
    @Test func trueAndFalseWordsIgnoreCase() {
        for word in ["1", "true", "TRUE", "Yes", "on"] { #expect(ClientEnvironment.isTrue(word)) }
        for word in ["0", "false", "No", "OFF"] { #expect(ClientEnvironment.isFalse(word)) }
        for word in ["", "2", "enabled", " true"] {
            #expect(!ClientEnvironment.isTrue(word))
            #expect(!ClientEnvironment.isFalse(word))
        }
        #expect(!ClientEnvironment.isTrue(nil))
        #expect(!ClientEnvironment.isFalse(nil))
    }
}
