/// The version of telemetryd and telemetry, printed by `--version` and sent as `User-Agent`.
public let telemetrydVersion = "0.1.0"
