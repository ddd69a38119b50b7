// swift-tools-version:6.0
import PackageDescription

/// Module map (data flows one way; see docs/architecture.md):
///   TelemetryWire   – the client→daemon line protocol: JSON scanning, validation, encoding. No Foundation,
///                     so the `telemetry` client stays fast to start.
///   TelemetryCore   – daemon logic without I/O: aggregation into execution documents, config, anonymization.
///   TelemetryStore  – the durable SQLite store (journal of accepted lines + completed documents).
///   TelemetryDelivery – forwarding to TELEMETRY_ENDPOINT: libcurl session, compression, batching and retry
///                     policy, OTLP mapping.
///   TelemetryMetrics – Prometheus metrics (swift-prometheus): script metrics aggregated over completed executions,
///                     the daemon's self-metrics, label caps, the text exposition. No I/O.
///   TelemetryDaemon – the I/O edge: NIO socket server, ingest writer thread, control requests, sd_notify,
///                     the HTTP listener for /metrics, /healthz and /readyz.
///   TelemetryClient – the client side of the socket, shared by the `telemetry` commands, and their
///                     command-line parsing (built to start fast: see CommandLineOptions.swift).
let package = Package(
    name: "telemetryd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "telemetryd", targets: ["telemetryd"]),
        .executable(name: "telemetry", targets: ["telemetry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        // libcurl is loaded on first use (dlopen), so that a daemon without an endpoint never maps it; the
        // headers come from libcurl4-openssl-dev.
        .target(name: "CCurl", path: "Sources/CCurl", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        // A VFS that gathers the ingest writer's WAL writes into 256 KiB writes (its header says why).
        .target(name: "CWALWriteBuffer", dependencies: ["CSQLite"], path: "Sources/CWALWriteBuffer"),
        .target(name: "TelemetryWire"),
        .target(name: "TelemetryCore", dependencies: ["TelemetryWire"]),
        .target(name: "TelemetryStore", dependencies: ["CSQLite", "CWALWriteBuffer", "TelemetryWire", "TelemetryCore"]),
        .target(name: "TelemetryDelivery", dependencies: [
            "CCurl", "CZlib", "CZstd", "TelemetryWire", "TelemetryCore", "TelemetryStore",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TelemetryMetrics", dependencies: [
            "TelemetryWire", "TelemetryCore", "TelemetryDelivery",
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .target(name: "TelemetryDaemon", dependencies: [
            "TelemetryWire", "TelemetryCore", "TelemetryStore", "TelemetryDelivery", "TelemetryMetrics", "CSystemd",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TelemetryClient", dependencies: ["TelemetryWire"]),
        // The daemon's idle RSS (docs/architecture.md, "Idle memory"): linked with the toolchain's lld, its PIE
        // relocations packed as RELR (glibc >= 2.36) and only the symbols shared libraries need exported, the
        // loader neither reads ~1 MiB of RELA entries nor pages in ~0.8 MiB of symbol tables at start. In
        // release builds, the functions that run at start-up and idle come first in .text
        // (telemetryd.order, made by scripts/telemetryd-order.sh), so that fewer code pages are mapped.
        .executableTarget(name: "telemetryd", dependencies: ["TelemetryDaemon"], exclude: ["telemetryd.order"],
                          linkerSettings: [
                              .unsafeFlags(["-use-ld=lld",
                                            "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                                            "-Xlinker", "--no-export-dynamic"],
                                           .when(platforms: [.linux])),
                              .unsafeFlags(["-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/telemetryd/telemetryd.order",
                                            "-Xlinker", "--no-warn-symbol-ordering"],
                                           .when(platforms: [.linux], configuration: .release)),
                          ]),
        // The client runs once per scripted event: link it fully static (no dynamic loader, no relocations).
        // It uses only the stdlib and Glibc; `make bench` shows the startup this buys.
        .executableTarget(name: "telemetry", dependencies: ["TelemetryClient", "TelemetryWire", "TelemetryCore"],
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),
        .testTarget(name: "TelemetryWireTests", dependencies: ["TelemetryWire"]),
        .testTarget(name: "TelemetryCoreTests", dependencies: ["TelemetryCore"]),
        .testTarget(name: "TelemetryStoreTests", dependencies: ["TelemetryStore"]),
        .testTarget(name: "TelemetryClientTests", dependencies: ["TelemetryClient"]),
        .testTarget(name: "TelemetryDeliveryTests", dependencies: [
            "TelemetryDelivery", "TelemetryWire", "TelemetryCore", "TelemetryStore",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "TelemetryMetricsTests", dependencies: [
            "TelemetryMetrics", "TelemetryCore", "TelemetryDelivery",
        ], exclude: ["Golden"]),
        .testTarget(name: "TelemetryDaemonTests", dependencies: [
            "TelemetryDaemon", "TelemetryStore", "TelemetryCore", "TelemetryWire",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "TelemetryIntegrationTests", dependencies: [
            "TelemetryDaemon", "TelemetryClient",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
    ]
)
