#if canImport(Glibc)
import Glibc
#endif

// The `telemetry` command line, parsed without the Swift collections a parser would usually reach for.
//
// Why: `telemetry send` starts once per event in a one-shot pipeline, so its start-up is the cost scripts
// pay. `CommandLine.arguments` (a `[String]`), a `Set<String>` of known flags and a `[String: String]` of
// option values are each the first use of a generic type in the process: the Swift runtime then builds
// that type's metadata by demangling its name, and for `Set` and `Dictionary` also looks up
// `String: Hashable` among every conformance record of the binary. A profile of the one-shot `send` put
// that at about a tenth of the client's CPU time. Here the arguments are read from the C `argv` one at a
// time, known options are an enum matched by `switch`, flags a bit set and values stored fields: none of
// it needs metadata at run time. Only positionals use a `[String]`, and no command that a script runs
// once per event takes any.

/// A usage mistake on the command line; `telemetry` prints it with a pointer to the command's help and
/// exits 2.
public struct UsageError: Error, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
}

/// The arguments of one invocation, read from the C `argv` as the parser asks for them (see the top of
/// this file for why not `CommandLine.arguments`).
public struct ArgumentList {
    private let base: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    /// How many arguments there are, from `base` on.
    public let count: Int

    /// `count` C strings starting at `base`, which must stay valid while the list is used (`argv` does).
    public init(base: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, count: Int) {
        self.base = base
        self.count = max(count, 0)
    }

    /// This process's arguments, without the program name.
    public static var processArguments: ArgumentList {
        ArgumentList(base: CommandLine.unsafeArgv + 1, count: Int(CommandLine.argc) - 1)
    }

    public var isEmpty: Bool { count == 0 }

    /// The argument at `index` (0 is the first after whatever was dropped). A null pointer, which `argv`
    /// never holds before its end, reads as an empty argument.
    public subscript(index: Int) -> String {
        precondition(index >= 0 && index < count, "argument index out of range")
        return base[index].map { String(cString: $0) } ?? ""
    }

    public var first: String? { isEmpty ? nil : self[0] }

    /// The arguments after the first (the subcommand's own, once the subcommand is read).
    public func dropFirst() -> ArgumentList {
        isEmpty ? self : ArgumentList(base: base + 1, count: count - 1)
    }
}

/// Every flag and option of the `telemetry` subcommands, by its long name. Each subcommand says which
/// it accepts (`CommandOptionSet`); `--help` is accepted by all.
public enum CommandOption: Sendable, CaseIterable {
    case help, quiet, strict, wait, json, all
    case socket, timeout, maxLineBytes, limit, script

    /// The option as it is written, e.g. `--max-line-bytes`.
    public var name: String {
        switch self {
        case .help: "--help"
        case .quiet: "--quiet"
        case .strict: "--strict"
        case .wait: "--wait"
        case .json: "--json"
        case .all: "--all"
        case .socket: "--socket"
        case .timeout: "--timeout"
        case .maxLineBytes: "--max-line-bytes"
        case .limit: "--limit"
        case .script: "--script"
        }
    }

    /// The option written as `name` (a long name, or `-h`/`-q` for `--help`/`--quiet`), if there is one.
    /// A `switch`, not a `String` raw value: the synthesized `init(rawValue:)` searches an array.
    public init?(name: String) {
        switch name {
        case "--help", "-h": self = .help
        case "--quiet", "-q": self = .quiet
        case "--strict": self = .strict
        case "--wait": self = .wait
        case "--json": self = .json
        case "--all": self = .all
        case "--socket": self = .socket
        case "--timeout": self = .timeout
        case "--max-line-bytes": self = .maxLineBytes
        case "--limit": self = .limit
        case "--script": self = .script
        default: return nil
        }
    }

    @usableFromInline var bit: UInt16 {
        switch self {
        case .help: 1 << 0
        case .quiet: 1 << 1
        case .strict: 1 << 2
        case .wait: 1 << 3
        case .json: 1 << 4
        case .all: 1 << 5
        case .socket: 1 << 6
        case .timeout: 1 << 7
        case .maxLineBytes: 1 << 8
        case .limit: 1 << 9
        case .script: 1 << 10
        }
    }
}

/// A set of `CommandOption`s as bits: the flags a subcommand accepts, or those given.
///
/// The array literal initializer is inlinable so that, in a release build, the optimizer folds a literal
/// like `[.strict, .quiet]` into its bits; otherwise the caller builds a `[CommandOption]` first, and that
/// array type's metadata is instantiated at run time (the cost this file exists to avoid).
public struct CommandOptionSet: Equatable, Sendable, ExpressibleByArrayLiteral {
    @usableFromInline var bits: UInt16 = 0

    public init() {}

    @inlinable
    public init(arrayLiteral options: CommandOption...) {
        for option in options { insert(option) }
    }

    @inlinable
    public func contains(_ option: CommandOption) -> Bool { bits & option.bit != 0 }

    @inlinable
    public mutating func insert(_ option: CommandOption) { bits |= option.bit }
}

/// The parsed options of one subcommand: flags given, option values (the last one given counts), and
/// positionals.
public struct ParsedOptions {
    public private(set) var flags = CommandOptionSet()
    public private(set) var positionals: [String] = []
    private var socket: String?
    private var timeout: String?
    private var maxLineBytes: String?
    private var limit: String?
    private var script: String?

    public init() {}

    /// Parses `arguments` for a subcommand that accepts the flags `flags` (and always `--help`) and the
    /// options `options`, each given as `--name VALUE` or `--name=VALUE`. Everything that does not start
    /// with `-` (and `-` itself, and all after `--`) is a positional.
    public static func parse(_ arguments: ArgumentList, flags known: CommandOptionSet,
                             options: CommandOptionSet) throws(UsageError) -> ParsedOptions {
        var parsed = ParsedOptions()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                while index < arguments.count {
                    parsed.positionals.append(arguments[index])
                    index += 1
                }
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else {
                parsed.positionals.append(argument)
                continue
            }
            var name = argument
            var inlineValue: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            guard let option = CommandOption(name: name) else {
                throw UsageError(message: "unknown option \(name)")
            }
            // Errors name the option as the parser understood it: `-q` is reported as `--quiet`.
            if known.contains(option) || option == .help {
                guard inlineValue == nil else { throw UsageError(message: "\(option.name) takes no value") }
                parsed.flags.insert(option)
            } else if options.contains(option) {
                if let inlineValue {
                    parsed.setValue(inlineValue, for: option)
                } else {
                    guard index < arguments.count else { throw UsageError(message: "\(option.name) needs a value") }
                    parsed.setValue(arguments[index], for: option)
                    index += 1
                }
            } else {
                throw UsageError(message: "unknown option \(option.name)")
            }
        }
        return parsed
    }

    public func has(_ flag: CommandOption) -> Bool { flags.contains(flag) }

    /// The value given for `option`, if any.
    public func value(_ option: CommandOption) -> String? {
        switch option {
        case .socket: socket
        case .timeout: timeout
        case .maxLineBytes: maxLineBytes
        case .limit: limit
        case .script: script
        case .help, .quiet, .strict, .wait, .json, .all: nil
        }
    }

    private mutating func setValue(_ value: String, for option: CommandOption) {
        switch option {
        case .socket: socket = value
        case .timeout: timeout = value
        case .maxLineBytes: maxLineBytes = value
        case .limit: limit = value
        case .script: script = value
        case .help, .quiet, .strict, .wait, .json, .all: break
        }
    }

    /// The whole number given for `option`, which must lie in `range`; nil when the option is absent.
    public func integer(_ option: CommandOption, in range: ClosedRange<Int>) throws(UsageError) -> Int? {
        guard let text = value(option) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError(message: "\(option.name) must be a whole number between \(range.lowerBound) and \(range.upperBound) (got \"\(text)\")")
        }
        return value
    }

    /// The number of seconds given for `option`, more than 0 and at most an hour; nil when absent.
    public func seconds(_ option: CommandOption) throws(UsageError) -> Double? {
        guard let text = value(option) else { return nil }
        guard let value = Double(text), value > 0, value <= 3_600 else {
            throw UsageError(message: "\(option.name) must be a number of seconds between 0 and 3600 (got \"\(text)\")")
        }
        return value
    }
}
