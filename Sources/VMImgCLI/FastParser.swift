/// A hand-written parser for the short image commands (`check`, `info`, `map`, `compare`) that
/// skips swift-argument-parser, whose start-up reflection costs more than the command itself on a
/// small image (~22M instructions of a 36M-instruction `check`; Formats/performance.md, "Start-up").
///
/// It accepts only what it fully understands: the command name first, then the command's own flag
/// spellings (`-f fmt`, `--output=json` or `--output json`, `-U`, …), values that do not start
/// with `-`, `--` before file names that do, and exactly the command's number of file names. On
/// anything else (`--help`, grouped short flags, an unknown or incomplete option, a missing file
/// name) it returns `nil` and ``VMImgMain`` parses with ArgumentParser, so help, errors and
/// unusual spellings keep their exact text and status. A repeated option keeps its last value,
/// as ArgumentParser does (`FastParserTests` runs both parsers over a table of command lines).
enum FastParser {
    /// A command line this parser accepted.
    enum Command: Equatable {
        case check(CheckArguments)
        case info(InfoArguments)
        case map(MapArguments)
        case compare(CompareArguments)
        /// `vmimg --version` alone.
        case version

        /// Whether the command stops at a safe point on SIGINT/SIGTERM (``CancellableCommand``).
        var isCancellable: Bool {
            switch self {
            case .info, .version: false
            case .check, .map, .compare: true
            }
        }

        func run() throws {
            switch self {
            case .check(let command): try command.run()
            case .info(let command): try command.run()
            case .map(let command): try command.run()
            case .compare(let command): try command.run()
            case .version:
                // What ArgumentParser prints for its version flag.
                Console.current.out((VMImgCommand.configuration.version) + "\n")
            }
        }
    }

    /// The command `arguments` (without the program name) ask for, or `nil` to use ArgumentParser.
    static func parse(_ arguments: [String]) -> Command? {
        guard let name = arguments.first else { return nil }
        let rest = arguments.dropFirst()
        switch name {
        case "check": return check(rest)
        case "info": return info(rest)
        case "map": return map(rest)
        case "compare": return compare(rest)
        case "--version": return rest.isEmpty ? .version : nil
        default: return nil
        }
    }

    // Each command fills its plain arguments value directly (file names last, once counted).

    private static func check(_ arguments: ArraySlice<String>) -> Command? {
        var values = CheckArguments(filename: "")
        let files = scan(arguments) { name, value in
            if values.image.apply(name, value) { return true }
            switch (name, value) {
            case ("--output", let value?): values.output = value
            case ("-q", nil): values.quiet = true
            case ("-r", let value?): values.repair = value
            case ("-T", let value?): values.sourceCache = value
            default: return false
            }
            return true
        }
        guard let files, files.count == 1 else { return nil }
        values.filename = files[0]
        return .check(values)
    }

    private static func info(_ arguments: ArraySlice<String>) -> Command? {
        var values = InfoArguments(filename: "")
        let files = scan(arguments) { name, value in
            if values.image.apply(name, value) { return true }
            switch (name, value) {
            case ("--output", let value?): values.output = value
            case ("--backing-chain", nil): values.backingChain = true
            default: return false
            }
            return true
        }
        guard let files, files.count == 1 else { return nil }
        values.filename = files[0]
        return .info(values)
    }

    private static func map(_ arguments: ArraySlice<String>) -> Command? {
        var values = MapArguments(filename: "")
        let files = scan(arguments) { name, value in
            if values.image.apply(name, value) { return true }
            switch (name, value) {
            case ("--output", let value?): values.output = value
            case ("--start-offset", let value?): values.startOffset = value
            case ("--max-length", let value?): values.maxLength = value
            default: return false
            }
            return true
        }
        guard let files, files.count == 1 else { return nil }
        values.filename = files[0]
        return .map(values)
    }

    private static func compare(_ arguments: ArraySlice<String>) -> Command? {
        var values = CompareArguments(filename1: "", filename2: "")
        let files = scan(arguments) { name, value in
            if values.image.apply(name, value) { return true }
            switch (name, value) {
            case ("-q", nil): values.quiet = true
            case ("-p", nil): values.progress = true
            case ("-F", let value?): values.secondFormat = value
            case ("-T", let value?): values.sourceCache = value
            case ("-s", nil): values.strict = true
            default: return false
            }
            return true
        }
        guard let files, files.count == 2 else { return nil }
        (values.filename1, values.filename2) = (files[0], files[1])
        return .compare(values)
    }

    /// Options that take a value; every other accepted spelling is a flag.
    private static func takesValue(_ name: String) -> Bool {
        switch name {
        case "-f", "-F", "-r", "-T", "--output", "--start-offset", "--max-length": true
        default: false
        }
    }

    /// Walks `arguments`, handing each option (and its value, for ``takesValue(_:)`` names) to
    /// `apply`, which returns false for a spelling its command does not have.
    /// - Returns: the file names, or `nil` when something needs ArgumentParser.
    private static func scan(
        _ arguments: ArraySlice<String>, apply: (String, String?) -> Bool
    ) -> [String]? {
        var files: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                files += arguments[index...]
                break
            }
            guard argument.utf8.first == UInt8(ascii: "-") else {
                files.append(argument)
                continue
            }
            var name = argument
            var value: String?
            if argument.utf8.starts(with: "--".utf8), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
                // ArgumentParser reads `--output=` as `--output` and takes the next argument.
                if value?.isEmpty == true { return nil }
            }
            if takesValue(name) {
                if value == nil {
                    // ArgumentParser refuses a value that looks like an option: leave that to it.
                    guard index < arguments.endIndex, arguments[index].utf8.first != UInt8(ascii: "-")
                    else { return nil }
                    value = arguments[index]
                    index += 1
                }
            } else if value != nil {
                return nil
            }
            guard apply(name, value) else { return nil }
        }
        return files
    }
}

extension ImageArguments {
    /// Takes `-f`, `-U`/`--force-share`, `--allow-data-file` and `--image-opts`.
    fileprivate mutating func apply(_ name: String, _ value: String?) -> Bool {
        switch (name, value) {
        case ("-f", let value?): format = value
        case ("-U", nil), ("--force-share", nil): forceShare = true
        case ("--allow-data-file", nil): allowDataFile = true
        case ("--image-opts", nil): imageOpts = true
        default: return false
        }
        return true
    }
}
