/// What negotiation tells a client about one export.
public struct NBDExportDescriptor: Sendable, Equatable {
    /// The export name.
    public var name: String
    /// Size in bytes.
    public var size: UInt64
    /// Transmission flags (`NBD_FLAG_HAS_FLAGS` is added when sent).
    public var flags: NBDTransmissionFlags
    /// Free-text description for `NBD_INFO_DESCRIPTION`, if any.
    public var description: String?
    /// `NBD_INFO_BLOCK_SIZE`: minimum, preferred and maximum block size.
    public var minimumBlockSize: UInt32
    /// Preferred block size (a power of two).
    public var preferredBlockSize: UInt32
    /// Largest READ/WRITE length accepted.
    public var maximumBlockSize: UInt32

    /// Creates a descriptor. Block sizes default to 1, 4 KiB and 32 MiB.
    public init(
        name: String, size: UInt64, flags: NBDTransmissionFlags, description: String? = nil,
        minimumBlockSize: UInt32 = 1, preferredBlockSize: UInt32 = 4096,
        maximumBlockSize: UInt32 = UInt32(NBDLimits.maxPayloadSize)
    ) {
        self.name = name
        self.size = size
        self.flags = flags
        self.description = description
        self.minimumBlockSize = minimumBlockSize
        self.preferredBlockSize = preferredBlockSize
        self.maximumBlockSize = maximumBlockSize
    }

    /// Whether writes are refused.
    public var isReadOnly: Bool { flags.contains(.readOnly) }
}

/// The exports a connection may negotiate. Called on the connection's event loop.
public protocol NBDExportCatalog: Sendable {
    /// Export names for `NBD_OPT_LIST`.
    func exportNames() -> [String]
    /// Describes `name` for `NBD_OPT_INFO` and meta-context options; nil if there is no such export.
    func describe(_ name: String) -> NBDExportDescriptor?
    /// Commits to `name` for `NBD_OPT_GO`/`NBD_OPT_EXPORT_NAME`: may take the export's single writer slot
    /// (or hand out a read-only view when it is taken). Nil if there is no such export.
    func claim(_ name: String) -> NBDExportDescriptor?
}

/// The result of a successful negotiation.
public struct NBDSession: Sendable, Equatable {
    /// The chosen export, flags as sent.
    public var export: NBDExportDescriptor
    /// Whether `NBD_OPT_STRUCTURED_REPLY` was negotiated.
    public var structuredReplies: Bool
    /// The context id of `base:allocation` if it was selected.
    public var baseAllocationContextID: UInt32?

    /// Creates a session.
    public init(export: NBDExportDescriptor, structuredReplies: Bool, baseAllocationContextID: UInt32?) {
        self.export = export
        self.structuredReplies = structuredReplies
        self.baseAllocationContextID = baseAllocationContextID
    }
}
