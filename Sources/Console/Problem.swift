import Foundation
import Hummingbird
import Instances
import NIOCore

/// An RFC 9457 problem: every API error leaves as `application/problem+json`, its `detail` being
/// the same one line the CLI prints (``InstancesError/description``).
public struct Problem: Error, Sendable, Equatable, Codable, HTTPResponseError {
    /// `urn:vmimg:problem:<code>`; ``code`` repeats the last part.
    public var type: String
    /// Short, fixed per type ("Instance not found").
    public var title: String
    /// HTTP status, repeated in the body as RFC 9457 asks.
    public var statusCode: Int
    /// The one-line message, the CLI's words.
    public var detail: String
    /// The request path.
    public var instance: String?
    /// Stable machine-readable code (`instance-not-found`).
    public var code: String
    /// What a refused rebuild would have done (`confirmation-required`).
    public var plan: RebuildPlanJSON?

    enum CodingKeys: String, CodingKey {
        case type, title, statusCode = "status", detail, instance, code, plan
    }

    /// The HTTP status.
    public var status: HTTPResponse.Status { .init(code: statusCode) }

    /// A problem with an explicit code, status and message.
    public init(
        _ status: HTTPResponse.Status, code: String, title: String, detail: String, plan: RebuildPlanJSON? = nil
    ) {
        self.type = "urn:vmimg:problem:" + code
        self.title = title
        self.statusCode = status.code
        self.detail = detail
        self.code = code
        self.plan = plan
    }

    /// Renders the problem as `application/problem+json`.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var problem = self
        problem.instance = problem.instance ?? request.uri.path
        return Response(
            status: status, headers: [.contentType: "application/problem+json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try JSONCoding.encoder.encode(problem))))
    }
}

extension Problem {
    /// Maps the service's errors: not found → 404, conflicts and refusals → 409, unsafe images → 422,
    /// a locked drive → 423, usage → 400, I/O and engine failures → 500.
    public init(_ error: InstancesError) {
        let (status, code, title): (HTTPResponse.Status, String, String)
        switch error {
        case .invalidName: (status, code, title) = (.badRequest, "invalid-name", "Invalid name")
        case .invalidArgument: (status, code, title) = (.badRequest, "invalid-argument", "Invalid argument")
        case .confirmationRequired:
            (status, code, title) = (.conflict, "confirmation-required", "Confirmation required")
        case .instanceNotFound: (status, code, title) = (.notFound, "instance-not-found", "Instance not found")
        case .imageNotFound: (status, code, title) = (.notFound, "image-not-found", "Image not found")
        case .snapshotNotFound: (status, code, title) = (.notFound, "snapshot-not-found", "Snapshot not found")
        case .driveMissing: (status, code, title) = (.notFound, "drive-missing", "Drive missing")
        case .alreadyExists: (status, code, title) = (.conflict, "already-exists", "Already exists")
        case .instanceRunning: (status, code, title) = (.conflict, "instance-running", "Instance is running")
        case .instanceNotRunning: (status, code, title) = (.conflict, "instance-not-running", "Instance is not running")
        case .allSnapshotsPinned: (status, code, title) = (.conflict, "all-snapshots-pinned", "All snapshots pinned")
        case .snapshotsPinned: (status, code, title) = (.conflict, "snapshots-pinned", "Pinned snapshots")
        case .imageInUse: (status, code, title) = (.conflict, "image-in-use", "Image in use")
        case .budgetExceeded: (status, code, title) = (.conflict, "budget-exceeded", "Host budget exceeded")
        case .quotaExceeded: (status, code, title) = (.conflict, "quota-exceeded", "Quota exceeded")
        case .unsafeImage: (status, code, title) = (.unprocessableContent, "unsafe-image", "Unsafe image")
        case .driveLocked:
            (status, code, title) = (.init(code: 423, reasonPhrase: "Locked"), "drive-locked", "Drive locked")
        case .io: (status, code, title) = (.internalServerError, "io", "I/O error")
        case .engine, .qmp, .qemu: (status, code, title) = (.internalServerError, "engine", "Engine error")
        }
        self.init(status, code: code, title: title, detail: error.description)
    }

    /// Any error a handler throws, as a problem.
    public init(any error: any Error) {
        switch error {
        case let problem as Problem: self = problem
        case let error as InstancesError: self.init(error)
        case let error as DecodingError:
            self.init(
                .badRequest, code: "malformed-json", title: "Malformed JSON",
                detail: "malformed JSON: \(Self.describe(error))")
        case is NIOTooManyBytesError:
            self.init(.contentTooLarge, code: "too-large", title: "Content too large", detail: "request body too large")
        case let error as HTTPError:
            let code =
                error.status == .notFound ? "not-found" : (error.status == .contentTooLarge ? "too-large" : "http")
            self.init(
                error.status, code: code, title: error.status.reasonPhrase,
                detail: error.body ?? error.status.reasonPhrase.lowercased())
        default: self.init(.internalServerError, code: "internal", title: "Internal error", detail: "\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context):
            return context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
        case .keyNotFound(let key, _): return "missing key '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\(path.isEmpty ? "body" : path): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    static let unauthorized = Problem(
        .unauthorized, code: "unauthorized", title: "Unauthorized",
        detail: "missing or wrong access token (send 'Authorization: Bearer TOKEN'; see 'vmimg console --print-token')")
    static let csrf = Problem(
        .forbidden, code: "csrf", title: "Forbidden",
        detail: "missing or wrong CSRF token for a cookie-authenticated request")
}

/// Turns every error under `/api` into problem+json, including the router's own 404s.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            guard request.uri.path.hasPrefix("/api/") else { return Self.page(Problem(any: error)) }
            var problem = Problem(any: error)
            problem.instance = request.uri.path
            var response = try problem.response(from: request, context: context)
            if problem.statusCode == 401 { response.headers[.wwwAuthenticate] = "Bearer realm=\"vmimg\"" }
            return response
        }
    }
}

extension ProblemMiddleware {
    /// A UI error: the same words, as a page.
    static func page(_ problem: Problem) -> Response {
        var response = HTML.page(
            title: problem.title, session: nil, notices: [], active: "",
            "<h1>\(HTML.h(problem.title))</h1><div class=\"notice error\">\(HTML.h(problem.detail))</div>"
                + "<p><a href=\"/instances\">Back to instances</a></p>")
        response.status = problem.status
        return response
    }
}

/// The API's JSON: ISO 8601 dates, sorted keys (stable bodies for tests and diffs).
enum JSONCoding {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
