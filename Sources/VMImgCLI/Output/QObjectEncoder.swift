/// Turns an `Encodable` model into a ``QObject`` the way QEMU's QAPI output visitor does: keyed
/// containers become ``QDict``s filled in encoding order, arrays become lists, integers stay
/// integers. Optional members encoded with `encodeIfPresent` are simply absent.
public struct QObjectEncoder {
    /// Creates an encoder.
    public init() {}

    /// Encodes `value`.
    /// - Throws: `EncodingError.invalidValue` when `value` encodes nothing.
    public func encode(_ value: some Encodable) throws -> QObject {
        let node = Node()
        try value.encode(to: NodeEncoder(node: node, codingPath: []))
        guard let object = node.object else {
            throw EncodingError.invalidValue(
                value, .init(codingPath: [], debugDescription: "value encoded nothing"))
        }
        return object
    }
}

/// A mutable tree the containers write into; turned into a ``QObject`` at the end.
private final class Node {
    enum Content {
        case empty
        case scalar(QObject)
        case dict([(String, Node)])
        case list([Node])
    }
    var content: Content = .empty

    init() {}
    init(_ scalar: QObject) { content = .scalar(scalar) }

    var object: QObject? {
        switch content {
        case .empty: return nil
        case .scalar(let value): return value
        case .list(let nodes): return .list(nodes.compactMap(\.object))
        case .dict(let members):
            var dict = QDict()
            for (key, node) in members {
                if let value = node.object { dict.put(key, value) }
            }
            return .dict(dict)
        }
    }

    func append(_ key: String, _ child: Node) {
        if case .dict(var members) = content {
            members.append((key, child))
            content = .dict(members)
        } else {
            content = .dict([(key, child)])
        }
    }

    func append(_ child: Node) {
        if case .list(var nodes) = content {
            nodes.append(child)
            content = .list(nodes)
        } else {
            content = .list([child])
        }
    }
}

/// Maps Swift scalars onto QNum/QBool/QString.
private func scalar(_ value: any Encodable) -> QObject? {
    switch value {
    case let v as Bool: return .bool(v)
    case let v as String: return .string(v)
    case let v as Int: return .int(Int64(v))
    case let v as Int8: return .int(Int64(v))
    case let v as Int16: return .int(Int64(v))
    case let v as Int32: return .int(Int64(v))
    case let v as Int64: return .int(v)
    case let v as UInt: return .uint(UInt64(v))
    case let v as UInt8: return .uint(UInt64(v))
    case let v as UInt16: return .uint(UInt64(v))
    case let v as UInt32: return .uint(UInt64(v))
    case let v as UInt64: return .uint(v)
    case let v as Double: return .double(v)
    case let v as Float: return .double(Double(v))
    default: return nil
    }
}

private func makeNode(_ value: some Encodable, codingPath: [any CodingKey]) throws -> Node {
    if let object = scalar(value) { return Node(object) }
    let node = Node()
    try value.encode(to: NodeEncoder(node: node, codingPath: codingPath))
    return node
}

private struct NodeEncoder: Encoder {
    let node: Node
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .empty = node.content { node.content = .dict([]) }
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .empty = node.content { node.content = .list([]) }
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(node: node, codingPath: codingPath)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.append(key.stringValue, Node(.null)) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        node.append(key.stringValue, try makeNode(value, codingPath: codingPath + [key]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let child = Node()
        child.content = .dict([])
        node.append(key.stringValue, child)
        return KeyedEncodingContainer(
            KeyedContainer<NestedKey>(node: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = Node()
        child.content = .list([])
        node.append(key.stringValue, child)
        return UnkeyedContainer(node: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { NodeEncoder(node: node, codingPath: codingPath) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let child = Node()
        node.append(key.stringValue, child)
        return NodeEncoder(node: child, codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: Node
    let codingPath: [any CodingKey]
    var count: Int {
        if case .list(let nodes) = node.content { return nodes.count }
        return 0
    }

    mutating func encodeNil() throws { node.append(Node(.null)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        node.append(try makeNode(value, codingPath: codingPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<NestedKey> {
        let child = Node()
        child.content = .dict([])
        node.append(child)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = Node()
        child.content = .list([])
        node.append(child)
        return UnkeyedContainer(node: child, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder {
        let child = Node()
        node.append(child)
        return NodeEncoder(node: child, codingPath: codingPath)
    }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let node: Node
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { node.content = .scalar(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        node.content = try makeNode(value, codingPath: codingPath).content
    }
}
