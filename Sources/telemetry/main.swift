import TelemetryClient

#if canImport(Glibc)
import Glibc
#endif

// `telemetry` is on the hot path of every instrumented script, so it parses its few options by hand and
// links neither Foundation nor swift-argument-parser (see docs/architecture.md for the measurement). It
// reads `argv` directly instead of `CommandLine.arguments`: see `ArgumentList` for why.
exit(Telemetry.main(.processArguments))
