import Foundation
import Hummingbird
import Instances

/// "My images": list, import by streamed upload, delete.
struct ImageRoutes {
    let service: ConsoleService

    func add(to api: RouterGroup<ConsoleContext>) {
        api.get("images") { _, _ in
            try json(try await service.call { try $0.library.list() }.map(ImageJSON.init))
        }
        api.get("images/:image") { _, context in
            let name = try parameter("image", context)
            return try json(ImageJSON(try await service.call { try $0.library.show(name: name) }))
        }
        api.delete("images/:image") { _, context in
            let name = try parameter("image", context)
            try await service.call { try $0.library.delete(name: name) }
            return Response(status: .noContent)
        }
        api.post("images") { request, _ in
            try await upload(request)
        }
    }

    /// `POST /images?name=N[&format=raw|qcow2][&wait=true]`, the body being the image file. The
    /// body streams to a staging file in the home (never into memory), capped at
    /// ``ConsoleService/maxUploadBytes``; then a job runs `images import` on it, with the same
    /// checks as the CLI, and removes the staging file whatever happens.
    func upload(_ request: Request) async throws -> Response {
        guard let name = request.uri.queryParameters["name"].map(String.init), !name.isEmpty else {
            throw InstancesError.invalidArgument("an upload needs ?name=NAME")
        }
        let format = request.uri.queryParameters["format"].map(String.init)
        let cap = service.maxUploadBytes
        if let length = request.headers[.contentLength].flatMap({ Int64($0) }), length > cap {
            throw tooLarge(cap)
        }
        // Fail before receiving gigabytes: the import would refuse the name anyway.
        if (try? await service.call({ try $0.library.show(name: name) })) != nil {
            throw InstancesError.alreadyExists(what: "image", name: name)
        }
        let staged = try await receive(request.body, cap: cap)
        let job = service.jobs.start(kind: "import", subject: "image '\(name)'", phase: "validating") { update in
            defer { try? FileManager.default.removeItem(atPath: staged) }
            update("converting", 0.5)
            let entry = try await service.call { try $0.library.importImage(name: name, file: staged, format: format) }
            return (.image(ImageJSON(entry)), "/api/v1/images/\(escape(name))")
        }
        return try await SnapshotRoutes(service: service).respond(job, wait: flag("wait", request))
    }

    /// Streams `body` into `uploads/<random>` under the home; removes it and throws 413 past `cap`.
    private func receive(_ body: RequestBody, cap: Int64) async throws -> String {
        let directory = service.uploadsDirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + UUID().uuidString.lowercased() + ".upload"
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw InstancesError.io(path: path, message: "cannot create the upload file") }
        var received: Int64 = 0
        do {
            defer { try? handle.close() }
            for try await buffer in body {
                received += Int64(buffer.readableBytes)
                if received > cap { throw tooLarge(cap) }
                try handle.write(contentsOf: Data(buffer.readableBytesView))
            }
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        guard received > 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw InstancesError.invalidArgument("the upload is empty")
        }
        return path
    }

    private func tooLarge(_ cap: Int64) -> Problem {
        Problem(
            .contentTooLarge, code: "too-large", title: "Content too large",
            detail: "upload larger than the console's limit of \(formatBytes(cap)) (vmimg console --max-upload)")
    }
}
