/// Puts a text exposition in a stable order: families by name, and within a family the series by their label
/// text (a histogram's lines stay together, buckets first).
///
/// swift-prometheus writes families and series in the order of its dictionaries, which Swift seeds randomly
/// per process. Prometheus does not care, but people reading `curl /metrics`, diffs between scrapes and the
/// golden tests do. The input must come from `PrometheusCollectorRegistry.emit`, where every family starts
/// with its `# HELP` line (every metric here has help text) followed by `# TYPE`.
enum ExpositionOrder {
    static func sorted(_ text: [UInt8]) -> [UInt8] {
        var families: [Family] = []
        var current: Family?
        var start = 0
        while start < text.count {
            let end = text[start...].firstIndex(of: UInt8(ascii: "\n")) ?? text.count
            let line = text[start..<end]
            start = end + 1
            if line.starts(with: helpPrefix) {
                if let current { families.append(current) }
                current = Family(help: Array(line))
            } else if line.starts(with: typePrefix) {
                current?.type = Array(line)
                current?.isHistogram = line.suffix(histogramSuffix.count).elementsEqual(histogramSuffix)
            } else if !line.isEmpty {
                current?.append(sample: line)
            }
        }
        if let current { families.append(current) }

        families.sort { $0.name.lexicographicallyPrecedes($1.name) }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        for family in families {
            out += family.help
            out.append(UInt8(ascii: "\n"))
            out += family.type
            out.append(UInt8(ascii: "\n"))
            for series in family.series.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                out += series
            }
        }
        return out
    }

    private static let helpPrefix = Array("# HELP ".utf8)
    private static let typePrefix = Array("# TYPE ".utf8)
    private static let histogramSuffix = Array(" histogram".utf8)

    private struct Family {
        let help: [UInt8]
        var type: [UInt8] = []
        var isHistogram = false
        /// One element per series: its lines, each with its newline.
        var series: [[UInt8]] = []
        private var open: [UInt8] = []

        init(help: [UInt8]) {
            self.help = help
        }

        /// The family's name: the word after `# HELP `.
        var name: ArraySlice<UInt8> {
            let rest = help[helpPrefix.count...]
            return rest.prefix { $0 != UInt8(ascii: " ") }
        }

        mutating func append(sample line: ArraySlice<UInt8>) {
            open += line
            open.append(UInt8(ascii: "\n"))
            // A histogram series ends with its `_count` line; any other series is one line.
            if isHistogram {
                let metric = line.prefix { $0 != UInt8(ascii: "{") && $0 != UInt8(ascii: " ") }
                guard metric.count >= name.count, metric.dropFirst(name.count).elementsEqual("_count".utf8) else { return }
            }
            series.append(open)
            open = []
        }
    }
}
