/// Where the daemon's configuration comes from: its flags, its environment and a file. Loading again (on
/// SIGHUP) re-reads the file; flags and environment are fixed for the life of the process.
///
/// systemd's `EnvironmentFile=` copies the file into the environment when the service starts and does not
/// copy it again on reload. So on reload, an environment variable whose value is what the file said at the
/// previous load is taken as that old copy of the file, not as an override: the file's new value wins.
public struct ConfigurationSource: Sendable {
    public var flags: [String: String]
    public var environment: [String: String]
    public var filePath: String
    /// A path given with --config must exist; the default path may be absent.
    public var filePathIsExplicit: Bool

    public init(flags: [String: String], environment: [String: String], filePath: String, filePathIsExplicit: Bool) {
        self.flags = flags
        self.environment = environment
        self.filePath = filePath
        self.filePathIsExplicit = filePathIsExplicit
    }

    /// One load: the merged configuration with every problem, and the file as read (nil when absent).
    /// `previous` is the file of the load before this one, for the EnvironmentFile= rule above.
    public func load(previous: ConfigurationFile? = nil) -> (result: ConfigurationResult, file: ConfigurationFile?) {
        var problems: [ConfigurationProblem] = []
        var file: ConfigurationFile?
        switch ConfigurationLoader.readFile(at: filePath) {
        case .success(let contents):
            file = contents
        case .failure(let problem):
            if !(problem.isFileNotFound && !filePathIsExplicit) { problems.append(problem) }
        }
        var environment = self.environment
        if let previous {
            let staleCopies = EnvironmentFileParser.parse(previous.contents).entries
            for entry in staleCopies where environment[entry.key] == entry.value {
                environment[entry.key] = nil
            }
        }
        var result = ConfigurationLoader.load(flags: flags, environment: environment, file: file)
        result.problems.insert(contentsOf: problems, at: 0)
        return (result, file)
    }
}
