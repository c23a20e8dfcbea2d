import Foundation
import Instances

/// The console's access token: 32 random bytes as hex, made at first start in the home as
/// `console-token` with mode 0600, required on every API call (`Authorization: Bearer`) and to
/// open a UI session.
public enum AccessToken {
    /// The token file inside `home`.
    public static func path(in home: VMImgHome) -> String { home.path("console-token") }

    /// Reads the token, creating it (mode 0600, exclusively) when absent.
    /// - Throws: ``InstancesError/io(path:message:)`` when the file cannot be made or read, or is
    ///   readable by others.
    public static func loadOrCreate(in home: VMImgHome) throws -> String {
        let file = path(in: home)
        try FileManager.default.createDirectory(atPath: home.root, withIntermediateDirectories: true)
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        let fresh = bytes.map { String(format: "%02x", $0) }.joined()
        if !FileManager.default.fileExists(atPath: file) {
            // Made empty with mode 0600 first, so the token is never in a file others can read.
            guard FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600]),
                let handle = FileHandle(forWritingAtPath: file)
            else { throw InstancesError.io(path: file, message: "cannot create the token file") }
            defer { try? handle.close() }
            do {
                try handle.write(contentsOf: Data((fresh + "\n").utf8))
            } catch {
                throw InstancesError.io(path: file, message: "cannot write the token: \(error)")
            }
            return fresh
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw InstancesError.io(
                path: file, message: "mode \(String(mode, radix: 8)) lets others read the token; chmod 600 it")
        }
        let text = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.count >= 32 else { throw InstancesError.io(path: file, message: "token too short; delete the file") }
        return text
    }

    /// Compares in time independent of where the strings differ.
    static func matches(_ given: some StringProtocol, _ expected: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    /// A random URL- and cookie-safe string.
    static func random(bytes count: Int = 24) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
