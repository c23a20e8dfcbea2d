/// A JSON value, for comparing qemu-img's `--output=json` with vmimg's key by key.
///
/// Integers stay exact (`virtual-size` can exceed 2^53), so numbers without a fraction or exponent
/// parse as ``integer(_:)``; others as ``double(_:)``.
public enum JSON: Equatable, Sendable, CustomStringConvertible {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number written without fraction or exponent that fits in `Int64`.
    case integer(Int64)
    /// Any other number.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSON])
    /// An object; key order is not kept (qemu-img's order is not part of its interface).
    case object([String: JSON])

    /// The member `key` of an object, or nil (also for non-objects).
    public subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// Element `index` of an array, or nil when out of range or not an array.
    public subscript(index: Int) -> JSON? {
        if case .array(let elements) = self, elements.indices.contains(index) { return elements[index] }
        return nil
    }

    /// The string value, or nil.
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    /// The integer value, or nil.
    public var int: Int64? { if case .integer(let i) = self { i } else { nil } }
    /// The boolean value, or nil.
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    /// The elements, or nil.
    public var array: [JSON]? { if case .array(let a) = self { a } else { nil } }
    /// The members, or nil.
    public var object: [String: JSON]? { if case .object(let o) = self { o } else { nil } }

    /// Compact JSON text with sorted keys, stable for messages and goldens.
    public var description: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .integer(let i): String(i)
        case .double(let d): String(d)
        case .string(let s): JSON.quote(s)
        case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let o):
            "{"
                + o.keys.sorted().map { "\(JSON.quote($0)): \(o[$0]?.description ?? "null")" }
                .joined(separator: ", ") + "}"
        }
    }

    /// Lists where `self` and `other` differ, one line each, as `path: self-value != other-value`
    /// (`path` like `format-specific.data.refcount-bits`, `snapshots[1].name`; a missing side shows
    /// as `(missing)`).
    /// - Parameters:
    ///   - other: the value to compare with, e.g. qemu-img's output when `self` is vmimg's.
    ///   - ignoring: member names skipped at every depth (e.g. `actual-size`, `date-sec`).
    ///   - path: the prefix for reported paths.
    /// - Returns: the differences; empty when equal (apart from ignored keys).
    public func differences(from other: JSON, ignoring: Set<String> = [], path: String = "") -> [String] {
        switch (self, other) {
        case (.object(let a), .object(let b)):
            return Set(a.keys).union(b.keys).subtracting(ignoring).sorted().flatMap { key -> [String] in
                let sub = path.isEmpty ? key : path + "." + key
                switch (a[key], b[key]) {
                case (let x?, let y?): return x.differences(from: y, ignoring: ignoring, path: sub)
                case (let x?, nil): return ["\(sub): \(x) != (missing)"]
                case (nil, let y?): return ["\(sub): (missing) != \(y)"]
                case (nil, nil): return []
                }
            }
        case (.array(let a), .array(let b)):
            var lines = zip(a, b).enumerated().flatMap { i, pair in
                pair.0.differences(from: pair.1, ignoring: ignoring, path: "\(path)[\(i)]")
            }
            if a.count != b.count { lines.append("\(path): \(a.count) elements != \(b.count) elements") }
            return lines
        default:
            return self == other ? [] : ["\(path.isEmpty ? "(root)" : path): \(self) != \(other)"]
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Why JSON text could not be parsed.
public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    /// The byte offset of the problem in the UTF-8 input.
    public let offset: Int
    /// What was expected.
    public let reason: String
    /// `"JSON: <reason> at byte <offset>"`.
    public var description: String { "JSON: \(reason) at byte \(offset)" }
}

extension JSON {
    /// Parses JSON text (RFC 8259; whitespace around the value allowed, nothing after it).
    /// - Parameter text: the JSON document.
    /// - Throws: ``JSONParseError`` with the offset of the first problem.
    public init(parsing text: String) throws {
        var parser = JSONParser(bytes: Array(text.utf8))
        self = try parser.document()
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var index = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws -> JSON {
        let value = try parseValue()
        skipSpace()
        guard index == bytes.count else { throw fail("trailing characters") }
        return value
    }

    func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: index, reason: reason) }

    mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func expect(_ literal: String) throws {
        for byte in literal.utf8 {
            guard index < bytes.count, bytes[index] == byte else { throw fail("expected \(literal)") }
            index += 1
        }
    }

    mutating func parseValue() throws -> JSON {
        skipSpace()
        guard index < bytes.count else { throw fail("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try nested { try $0.parseObject() }
        case UInt8(ascii: "["): return try nested { try $0.parseArray() }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        default: return try parseNumber()
        }
    }

    mutating func nested(_ body: (inout JSONParser) throws -> JSON) throws -> JSON {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 512 else { throw fail("nesting deeper than 512") }
        return try body(&self)
    }

    mutating func parseObject() throws -> JSON {
        index += 1
        var members: [String: JSON] = [:]
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected key") }
            let key = try parseString()
            skipSpace()
            try expect(":")
            members[key] = try parseValue()
            skipSpace()
            guard index < bytes.count else { throw fail("unterminated object") }
            index += 1
            if bytes[index - 1] == UInt8(ascii: "}") { return .object(members) }
            guard bytes[index - 1] == UInt8(ascii: ",") else {
                index -= 1
                throw fail("expected , or }")
            }
        }
    }

    mutating func parseArray() throws -> JSON {
        index += 1
        var elements: [JSON] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipSpace()
            guard index < bytes.count else { throw fail("unterminated array") }
            index += 1
            if bytes[index - 1] == UInt8(ascii: "]") { return .array(elements) }
            guard bytes[index - 1] == UInt8(ascii: ",") else {
                index -= 1
                throw fail("expected , or ]")
            }
        }
    }

    mutating func parseString() throws -> String {
        index += 1
        var scalars = String.UnicodeScalarView()
        var run: [UInt8] = []  // plain UTF-8 bytes between escapes
        func flush() {
            scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
            run.removeAll()
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                flush()
                return String(scalars)
            case UInt8(ascii: "\\"):
                flush()
                scalars.append(try parseEscape())
            case 0..<0x20: throw fail("control character in string")
            default: run.append(byte)
            }
        }
        throw fail("unterminated string")
    }

    mutating func parseEscape() throws -> Unicode.Scalar {
        guard index < bytes.count else { throw fail("unterminated escape") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try hex4()
            if (0xD800..<0xDC00).contains(high) {
                try expect("\\u")
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw fail("bad surrogate pair") }
                let value = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                return Unicode.Scalar(value) ?? "\u{FFFD}"
            }
            return Unicode.Scalar(high) ?? "\u{FFFD}"
        default: throw fail("bad escape")
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count,
            let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
        else { throw fail("bad \\u escape") }
        index += 4
        return value
    }

    mutating func parseNumber() throws -> JSON {
        let start = index
        var isInteger = true
        while index < bytes.count {
            let byte = bytes[index]
            if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") {
                index += 1
            } else if [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+")].contains(byte) {
                isInteger = false
                index += 1
            } else {
                break
            }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger, let value = Int64(text) { return .integer(value) }
        guard !text.isEmpty, let value = Double(text) else {
            index = start
            throw fail("unexpected character")
        }
        return .double(value)
    }
}
