import Foundation
import Hummingbird
import Instances

/// The JSON API under `/api/v1` (Formats/api.yaml). Each handler decodes, calls one service
/// method, and encodes: no rule is implemented here.
struct APIRoutes {
    let service: ConsoleService

    func add(to router: Router<ConsoleContext>) {
        let api = router.group("api/v1")
        api.get("instances") { _, _ in
            try json(try await service.call { try $0.list() }.map(InstanceJSON.init))
        }
        api.post("instances") { request, context in
            let body = try await decode(CreateInstanceBody.self, request, context)
            let created = try await service.call { try $0.create(try createRequest(body)) }
            return try json(
                InstanceJSON(created), status: .created, location: "/api/v1/instances/\(escape(created.name))")
        }
        api.get("instances/:instance") { _, context in
            let name = try parameter("instance", context)
            return try json(InstanceDetailsJSON(try await service.call { try $0.show(name) }))
        }
        api.delete("instances/:instance") { _, context in
            let name = try parameter("instance", context)
            try await service.call { try $0.delete(name) }
            return Response(status: .noContent)
        }
        api.post("instances/:instance/start") { request, context in
            let name = try parameter("instance", context)
            let body = try await decodeOptional(StartBody.self, request, context)
            let options = StartOptions(memory: body?.memory ?? 256)
            let result = try await service.call { try $0.start(name, options: options) }
            return try json(RunJSON(instance: name, state: "running", pid: result.pid, graceful: nil))
        }
        api.post("instances/:instance/stop") { request, context in
            let name = try parameter("instance", context)
            let timeout = request.uri.queryParameters["timeout"].flatMap { Double(String($0)) } ?? 30
            let result = try await service.call { try $0.stop(name, timeout: min(max(timeout, 0), 300)) }
            return try json(RunJSON(instance: name, state: "stopped", pid: nil, graceful: result.graceful))
        }
        api.get("instances/:instance/audit") { _, context in
            let name = try parameter("instance", context)
            return try json(try await service.call { try $0.auditLog(instance: name) }.map(AuditJSON.init))
        }
        api.get("audit") { _, _ in
            try json(try await service.call { try $0.auditLog() }.map(AuditJSON.init))
        }
        api.get("budget") { _, _ in
            let status = try await service.call { try $0.budgetStatus() }
            return try json(BudgetJSON(budget: status.budget, inUse: status.inUse))
        }
        api.get("jobs") { _, _ in try json(service.jobs.all()) }
        api.get("jobs/:job") { _, context in
            let id = try parameter("job", context)
            guard let job = service.jobs.job(id) else {
                throw Problem(.notFound, code: "job-not-found", title: "Job not found", detail: "no job '\(id)'")
            }
            return try json(job)
        }
        SnapshotRoutes(service: service).add(to: api)
        ImageRoutes(service: service).add(to: api)
    }

    private func createRequest(_ body: CreateInstanceBody) throws -> CreateInstanceRequest {
        let source: DriveSource
        switch (body.size, body.image) {
        case (let size?, nil): source = .empty(size: size.bytes)
        case (nil, let image?): source = .image(image)
        default: throw InstancesError.invalidArgument("an instance needs exactly one of 'size' and 'image'")
        }
        let audit = try body.audit.map { text in
            guard let mode = AuditMode(rawValue: text) else {
                throw InstancesError.invalidArgument("audit must be off, changes or all, not '\(text)'")
            }
            return mode
        }
        return CreateInstanceRequest(
            name: body.name, source: source, fullCopy: body.fullCopy ?? false, quota: body.quota?.bytes,
            maxSnapshots: body.maxSnapshots ?? 5, audit: audit ?? .off)
    }
}

extension AuditJSON {
    init(_ e: AuditEntry) {
        self.init(at: e.at, subject: e.subject, operation: e.operation, detail: e.detail, mode: e.mode.rawValue)
    }
}

// MARK: - Helpers shared by the API route files

/// A JSON response.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, location: String? = nil) throws -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let location { headers[.location] = location }
    return Response(
        status: status, headers: headers,
        body: .init(byteBuffer: ByteBuffer(bytes: try JSONCoding.encoder.encode(value))))
}

/// A path parameter, percent-decoded (the router leaves `%20` as is).
func parameter(_ name: String, _ context: ConsoleContext) throws -> String {
    let raw = try context.parameters.require(name)
    guard let decoded = raw.removingPercentEncoding else {
        throw InstancesError.invalidArgument("bad percent-encoding in '\(raw)'")
    }
    return decoded
}

/// A path segment, percent-encoded.
func escape(_ segment: String) -> String {
    var allowed = CharacterSet.urlPathAllowed
    allowed.remove(charactersIn: "/?#")
    return segment.addingPercentEncoding(withAllowedCharacters: allowed) ?? segment
}

/// Decodes a JSON body (at most `context.maxUploadSize` bytes).
func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: ConsoleContext) async throws -> T {
    guard let value = try await decodeOptional(type, request, context) else {
        throw Problem(
            .badRequest, code: "malformed-json", title: "Malformed JSON", detail: "malformed JSON: empty body")
    }
    return value
}

/// Decodes a JSON body, nil when there is none.
func decodeOptional<T: Decodable>(_ type: T.Type, _ request: Request, _ context: ConsoleContext) async throws -> T? {
    let buffer = try await request.body.collect(upTo: context.maxUploadSize)
    guard buffer.readableBytes > 0 else { return nil }
    if let contentType = request.headers[.contentType], !contentType.lowercased().hasPrefix("application/json") {
        throw Problem(
            .unsupportedMediaType, code: "unsupported-media-type", title: "Unsupported media type",
            detail: "send application/json, not \(contentType)")
    }
    return try JSONCoding.decoder.decode(T.self, from: Data(buffer.readableBytesView))
}

/// `?name=true`.
func flag(_ name: String, _ request: Request) -> Bool {
    guard let value = request.uri.queryParameters[name[...]] else { return false }
    return ["true", "1", "yes"].contains(value.lowercased())
}
