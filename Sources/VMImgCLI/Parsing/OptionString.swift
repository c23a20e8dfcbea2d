/// `-o key=value,…` option strings as QEMU parses them (`qemu_opts_do_parse`, util/qemu-option.c).
public enum OptionString {
    /// Parses `text` into ordered `(key, value)` pairs.
    ///
    /// Values run to the next single comma; `,,` stands for a literal comma. A bare `key` means
    /// `key=on`, and a bare `nokey` means `key=off`. `help` and `?` come back as `help=on` / `?=on`
    /// (see ``wantsHelp(_:)``).
    public static func parse(_ text: String) -> [(key: String, value: String)] {
        var result: [(String, String)] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let nameEnd = rest.firstIndex { $0 == "=" || $0 == "," } ?? rest.endIndex
            let name = String(rest[..<nameEnd])
            if nameEnd < rest.endIndex, rest[nameEnd] == "=" {
                let (value, after) = value(in: rest[rest.index(after: nameEnd)...])
                result.append((name, value))
                rest = after
            } else {
                if name.hasPrefix("no") {
                    result.append((String(name.dropFirst(2)), "off"))
                } else {
                    result.append((name, "on"))
                }
                rest = rest[nameEnd...]
            }
            if rest.first == "," { rest = rest.dropFirst() }
        }
        return result
    }

    /// `get_opt_value`: text up to the first single comma, with `,,` unescaped.
    private static func value(in text: Substring) -> (String, Substring) {
        var value = ""
        var rest = text
        while let comma = rest.firstIndex(of: ",") {
            value += rest[..<comma]
            let next = rest.index(after: comma)
            guard next < rest.endIndex, rest[next] == "," else { return (value, rest[comma...]) }
            value += ","
            rest = rest[rest.index(after: next)...]
        }
        return (value + rest, rest[rest.endIndex...])
    }

    /// Parses into a dictionary; a later value for the same key wins, as in QEMU.
    public static func dictionary(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in parse(text) { result[key] = value }
        return result
    }

    /// Whether the string asks for the option list (`help` or `?` as an option name).
    public static func wantsHelp(_ text: String) -> Bool {
        parse(text).contains { ($0.key == "help" || $0.key == "?") && $0.value == "on" }
    }

    /// Joins repeated `-o` arguments the way qemu-img does (`a,b`).
    public static func accumulate(_ options: [String]) -> String? {
        options.isEmpty ? nil : options.joined(separator: ",")
    }
}
