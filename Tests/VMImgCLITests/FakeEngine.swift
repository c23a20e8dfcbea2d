import ImageKit
import BlockIO

@testable import VMImgCLI

/// A scripted engine: each operation returns what the test put in.
final class FakeEngine: ImageOperations, Sendable {
    struct Failure: ClassifiedImageError {
        var kind: ImageErrorKind
        var path: String?
        var message: String
    }

    let infoResult: ImageInfo?
    let mapResult: [MapExtent]
    let checkReports: Locked<[CheckReport]>
    let checkMessages: [String]
    let compareResult: CompareResult?
    let failure: Failure?
    let seenRequests = Locked<[String]>([])

    init(
        info: ImageInfo? = nil, map: [MapExtent] = [], checks: [CheckReport] = [],
        checkMessages: [String] = [],
        compare: CompareResult? = nil, failure: Failure? = nil
    ) {
        infoResult = info
        mapResult = map
        checkReports = Locked(checks)
        self.checkMessages = checkMessages
        compareResult = compare
        self.failure = failure
    }

    private func fail() throws {
        if let failure { throw failure }
    }

    func info(_ image: ImageOpenOptions, backingChain: Bool) throws -> ImageInfo {
        try fail()
        guard let infoResult else { throw CLIError.notImplemented("info") }
        return infoResult
    }
    func map(_ image: ImageOpenOptions, startOffset: Int64, maxLength: Int64?) throws -> [MapExtent] {
        try fail()
        seenRequests.withLock { $0.append("map \(startOffset) \(maxLength.map(String.init) ?? "nil")") }
        return mapResult
    }
    func check(_ image: ImageOpenOptions, repair: RepairMode, messages: (String) -> Void) throws
        -> CheckReport
    {
        try fail()
        let first = seenRequests.withLock { seen in
            seen.append("check \(repair.rawValue)")
            return seen.count == 1
        }
        if first { checkMessages.forEach(messages) }
        return try checkReports.withLock { reports in
            guard !reports.isEmpty else { throw CLIError("no scripted report") }
            return reports.removeFirst()
        }
    }
    func compare(
        _ first: ImageOpenOptions, _ second: ImageOpenOptions, strict: Bool, progress: (Double) -> Void,
        sizeMismatch: () -> Void
    )
        throws -> CompareResult
    {
        try fail()
        progress(100)
        guard let compareResult else { throw CLIError.notImplemented("compare") }
        return compareResult
    }
    func create(_ request: CreateRequest, announce: ([String: String]) -> Void) throws {
        try fail()
        var options = request.options
        options["size"] = request.size.map(String.init)
        announce(options)
    }
    func convert(_ request: ConvertRequest, progress: (Double) -> Void) throws {
        try fail()
        for p in stride(from: 25.0, through: 100, by: 25) { progress(p) }
    }
    func resize(_ image: ImageOpenOptions, to size: SizeChange, shrink: Bool, preallocation: String?)
        throws
    {
        try fail()
        seenRequests.withLock { $0.append("resize \(image.path) \(size)") }
    }
    func amend(
        _ image: ImageOpenOptions, options: [String: String], force: Bool, progress: (Double) -> Void
    ) throws {
        try fail()
    }
    func measure(_ request: MeasureRequest) throws -> MeasureResult {
        try fail()
        return MeasureResult(required: 655360, fullyAllocated: 1_074_135_040, bitmaps: 0)
    }
    func snapshots(_ image: ImageOpenOptions) throws -> [SnapshotInfo] {
        try fail()
        return infoResult?.snapshots ?? []
    }
    func snapshot(_ image: ImageOpenOptions, _ action: SnapshotAction) throws { try fail() }
    func commit(_ request: CommitRequest, progress: (Double) -> Void) throws { try fail() }
    func rebase(_ request: RebaseRequest, progress: (Double) -> Void) throws { try fail() }
    func bench(_ request: BenchRequest) throws -> Double {
        try fail()
        return 0.1234
    }

    func bitmap(_ request: BitmapRequest) throws {
        try fail()
    }
}
