import QCow2

/// `--image-opts` strings as qemu-img reads them: `driver=qcow2,file.driver=file,file.filename=PATH`
/// plus qcow2's cache options (`l2-cache-size=4M,…`). Only the keys vmimg acts on are accepted;
/// any other is refused with qemu-img's "does not support the option" text.
enum ImageOpts {
    /// Parses `text` into open options for `path`-less use; errors carry qemu-img's wording,
    /// prefixed "Could not open 'TEXT': ".
    static func parse(_ text: String) throws -> ImageOpenOptions {
        func fail(_ reason: String) -> CLIError { CLIError("Could not open '\(text)': \(reason)") }
        let options = OptionString.dictionary(text)
        let driver = options["driver"]
        if let driver, !["qcow2", "raw"].contains(driver) { throw fail("Unknown driver '\(driver)'") }
        if let protocolDriver = options["file.driver"], protocolDriver != "file" {
            // QEMU knows more protocols (and formats as protocols), none of which vmimg opens.
            throw fail(
                ["raw", "qcow2"].contains(protocolDriver)
                    ? "A block device must be specified for \"file\"" : "Unknown driver '\(protocolDriver)'")
        }
        for key in options.keys.sorted() where key.hasPrefix("file.") && key != "file.driver" && key != "file.filename"
        {
            throw fail("Block protocol 'file' doesn't support the option '\(key.dropFirst(5))'")
        }
        guard let path = options["file.filename"] else {
            throw fail("A block device must be specified for \"file\"")
        }
        // QEMU parses every option before it looks for unknown ones.
        let cache = try cacheOptions(text, fail)
        let format = driver ?? "qcow2"
        for (key, _) in OptionString.parse(text) where !key.hasPrefix("file.") && key != "driver" {
            if format == "raw" || !QCow2CacheOptions.keys.contains(key) {
                throw fail("Block format '\(format)' does not support the option '\(key)'")
            }
        }
        var open = ImageOpenOptions(path: path, format: driver)
        open.cache = cache
        open.displayName = text
        return open
    }

    /// The qcow2 cache keys of an option string (others are left to the caller).
    static func cacheOptions(_ text: String, _ fail: (String) -> CLIError) throws -> QCow2CacheOptions {
        var cache = QCow2CacheOptions()
        for (key, value) in OptionString.parse(text) {
            switch key {
            case "l2-cache-size": cache.l2CacheSize = try size(key, value, fail)
            case "refcount-cache-size": cache.refcountCacheSize = try size(key, value, fail)
            case "cache-size": cache.cacheSize = try size(key, value, fail)
            case "l2-cache-entry-size": cache.l2CacheEntrySize = try size(key, value, fail)
            case "cache-clean-interval": cache.cacheCleanInterval = try number(key, value, fail)
            default: break
            }
        }
        return cache
    }

    /// QEMU's `parse_option_size` (a `qemu_strtosz` size).
    private static func size(_ key: String, _ value: String, _ fail: (String) -> CLIError) throws -> UInt64 {
        do {
            return try SizeParser.parse(value)
        } catch .outOfRange {
            throw fail("Value '\(value)' is out of range for parameter '\(key)'")
        } catch {
            throw fail(
                "Parameter '\(key)' expects a non-negative number below 2^64\n"
                    + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                    + "and exabytes, respectively.")
        }
    }

    /// QEMU's `parse_option_number`: `strtoull` with base 0, so "-1" wraps (and is then too big).
    private static func number(_ key: String, _ value: String, _ fail: (String) -> CLIError) throws -> UInt64 {
        var digits = Substring(value).drop { $0 == " " || $0 == "\t" || $0 == "\n" }
        var negative = false
        if digits.first == "-" || digits.first == "+" {
            negative = digits.first == "-"
            digits = digits.dropFirst()
        }
        var radix = 10
        if digits.lowercased().hasPrefix("0x") {
            radix = 16
            digits = digits.dropFirst(2)
        } else if digits.count > 1 && digits.first == "0" {
            radix = 8
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.hexDigitValue.map { $0 < radix } == true }) else {
            throw fail("Parameter '\(key)' expects a number")
        }
        guard let magnitude = UInt64(digits, radix: radix) else {
            throw fail("Value '\(value)' is too large for parameter '\(key)'")
        }
        return negative ? 0 &- magnitude : magnitude
    }
}
