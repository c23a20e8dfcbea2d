/// The `-o help` text of create, convert, measure and amend (qemu-img 7.2's `print_opts`).
enum CreationOptionHelp {
    /// qcow2 creation options as qemu-img 7.2 lists them: name, type, help.
    static let qcow2: [(String, String, String)] = [
        ("backing_file", "str", "File name of a base image"),
        ("backing_fmt", "str", "Image format of the base image"),
        ("cluster_size", "size", "qcow2 cluster size"),
        ("compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])"),
        ("compression_type", "str", "Compression method used for image cluster compression"),
        ("data_file", "str", "File name of an external data file"),
        ("data_file_raw", "bool (on/off)", "The external data file must stay valid as a raw image"),
        ("encrypt.cipher-alg", "str", "Name of encryption cipher algorithm"),
        ("encrypt.cipher-mode", "str", "Name of encryption cipher mode"),
        ("encrypt.format", "str", "Encrypt the image, format choices: 'aes', 'luks'"),
        ("encrypt.hash-alg", "str", "Name of encryption hash algorithm"),
        ("encrypt.iter-time", "num", "Time to spend in PBKDF in milliseconds"),
        ("encrypt.ivgen-alg", "str", "Name of IV generator algorithm"),
        ("encrypt.ivgen-hash-alg", "str", "Name of IV generator hash algorithm"),
        ("encrypt.key-secret", "str", "ID of secret providing qcow AES key or LUKS passphrase"),
        (
            "encryption", "bool (on/off)",
            "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)"
        ),
        ("extended_l2", "bool (on/off)", "Extended L2 tables"),
        ("lazy_refcounts", "bool (on/off)", "Postpone refcount updates"),
        ("preallocation", "str", "Preallocation mode (allowed values: off, metadata, falloc, full)"),
        ("refcount_bits", "num", "Width of a reference count entry in bits"),
        ("size", "size", "Virtual disk size"),
    ]

    /// qcow2 options `amend` accepts.
    static let qcow2Amend: [(String, String, String)] = [
        ("backing_file", "str", "File name of a base image"),
        ("backing_fmt", "str", "Image format of the base image"),
        ("compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])"),
        ("data_file", "str", "File name of an external data file"),
        ("data_file_raw", "bool (on/off)", "The external data file must stay valid as a raw image"),
        ("encrypt.iter-time", "num", "Time to spend in PBKDF in milliseconds"),
        ("encrypt.keyslot", "num", "Select a single keyslot to modify explicitly"),
        (
            "encrypt.new-secret", "str",
            "New secret to set in the matching keyslots. Empty string to erase"
        ),
        ("encrypt.old-secret", "str", "Select all keyslots that match this password"),
        ("encrypt.state", "str", "Select new state of affected keyslots (active/inactive)"),
        ("lazy_refcounts", "bool (on/off)", "Postpone refcount updates"),
        ("refcount_bits", "num", "Width of a reference count entry in bits"),
        ("size", "size", "Virtual disk size"),
    ]

    static let raw: [(String, String, String)] = [("size", "size", "Virtual disk size")]

    /// `  name=<type>` padded to 24 columns, then ` - help`.
    static func lines(_ options: [(String, String, String)]) -> String {
        options.map { name, type, help in
            let head = "  \(name)=<\(type)>"
            let padded = head.count >= 24 ? head : head + String(repeating: " ", count: 24 - head.count)
            return padded + " - " + help + "\n"
        }.joined()
    }

    static func options(for format: String) throws -> [(String, String, String)] {
        switch format {
        case "qcow2": return qcow2
        case "raw": return raw
        default: throw CLIError("Unknown file format '\(format)'")
        }
    }

    /// `Supported <fmt> options:` list with qemu-img's closing note.
    /// - Throws: ``CLIError`` for formats vmimg doesn't know.
    static func text(format: String) throws -> String {
        "Supported \(format) options:\n" + lines(try options(for: format))
            + "\nThe protocol level may support further options.\n"
            + "Specify the target filename to include those options.\n"
    }

    /// `Amend options for '<fmt>':` list.
    /// - Throws: ``CLIError`` for formats without amend options.
    static func amendText(format: String) throws -> String {
        guard format == "qcow2" else {
            throw CLIError("Format driver '\(format)' does not support option amendment")
        }
        return "Amend options for '\(format)':\n" + lines(qcow2Amend)
    }
}
