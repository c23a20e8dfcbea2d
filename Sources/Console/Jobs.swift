import BlockIO
import Foundation

/// A long operation (import, full duplicate, rebuild from an image) running in the background;
/// `GET /api/v1/jobs/{id}` reports it.
public struct JobJSON: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case running, succeeded, failed }
    public var id: String
    /// `import`, `duplicate`, `rebuild`.
    public var kind: String
    /// What it works on ("image 'debian'", "instance 'vm1'").
    public var subject: String
    public var state: State
    /// What it is doing now (`receiving`, `validating`, `converting`, `copying`, `done`).
    public var phase: String
    /// 0…1: the fraction of the job's steps done (steps have no finer progress yet).
    public var progress: Double
    public var createdAt: Date
    public var finishedAt: Date?
    /// Where the result lives once done (`/api/v1/images/debian`).
    public var resource: String?
    /// The result body on success.
    public var result: JobResult?
    /// The error on failure, as the synchronous endpoint would have returned it.
    public var problem: Problem?
}

/// A finished job's body.
public enum JobResult: Codable, Sendable, Equatable {
    case image(ImageJSON)
    case duplicate(DuplicateJSON)
    case rebuild(RebuildPlanJSON)

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .image(let value): try value.encode(to: encoder)
        case .duplicate(let value): try value.encode(to: encoder)
        case .rebuild(let value): try value.encode(to: encoder)
        }
    }

    public init(from decoder: any Decoder) throws {
        if let value = try? ImageJSON(from: decoder) {
            self = .image(value)
        } else if let value = try? DuplicateJSON(from: decoder) {
            self = .duplicate(value)
        } else {
            self = .rebuild(try RebuildPlanJSON(from: decoder))
        }
    }
}

/// The console's jobs, in memory (a restart forgets them; the journal already makes the
/// operations themselves crash-safe). Keeps the newest ``limit`` finished ones.
public final class JobRegistry: Sendable {
    private let jobs = Locked<[String: JobJSON]>([:])
    private let limit = 200

    public init() {}

    /// Registers a job and runs `work` in the background; `work` reports phases through `update`.
    func start(
        kind: String, subject: String, phase: String,
        work:
            @escaping @Sendable (_ update: @escaping @Sendable (String, Double) -> Void) async throws -> (
                JobResult, String?
            )
    ) -> JobJSON {
        let job = JobJSON(
            id: UUID().uuidString.lowercased(), kind: kind, subject: subject, state: .running, phase: phase,
            progress: 0,
            createdAt: Date())
        jobs.withLock { all in
            all[job.id] = job
            let finished = all.values.filter { $0.state != .running }.sorted { $0.createdAt < $1.createdAt }
            for old in finished.prefix(max(0, all.count - limit)) { all[old.id] = nil }
        }
        let id = job.id
        Task {
            let update: @Sendable (String, Double) -> Void = { [weak self] phase, progress in
                self?.jobs.withLock {
                    $0[id]?.phase = phase
                    $0[id]?.progress = progress
                }
            }
            do {
                let (result, resource) = try await work(update)
                finish(id) {
                    $0.state = .succeeded
                    $0.result = result
                    $0.resource = resource
                }
            } catch {
                finish(id) {
                    $0.state = .failed
                    $0.problem = Problem(any: error)
                }
            }
        }
        return job
    }

    private func finish(_ id: String, _ change: (inout JobJSON) -> Void) {
        jobs.withLock {
            guard var job = $0[id] else { return }
            change(&job)
            job.phase = job.state == .succeeded ? "done" : "failed"
            job.progress = job.state == .succeeded ? 1 : job.progress
            job.finishedAt = Date()
            $0[id] = job
        }
    }

    /// One job.
    public func job(_ id: String) -> JobJSON? { jobs.withLock { $0[id] } }

    /// All jobs, newest first.
    public func all() -> [JobJSON] { jobs.withLock { Array($0.values) }.sorted { $0.createdAt > $1.createdAt } }

    /// Waits until the job finishes (for `?wait=true` and tests).
    public func wait(_ id: String) async -> JobJSON? {
        while let job = job(id) {
            if job.state != .running { return job }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}
