import BlockIO

/// The `-p` progress line of QEMU's util/qemu-progress.c: `    (%3.2f/100%)` + `\r`, printed when
/// progress moved by more than the step, went backwards, or is 0 or 100; ``finish()`` writes the
/// final newline.
public final class ProgressPrinter {
    private let minSkip: Double
    private let write: (String) -> Void
    private let enabled: Bool
    private var current: Float = 0
    private var lastPrint: Float = 0

    /// - Parameters:
    ///   - enabled: `-p` given and `-q` not.
    ///   - step: percent between updates (1 for convert, commit, amend; 2 for compare, rebase).
    ///   - write: sink for stdout text; it should flush.
    public init(enabled: Bool, step: Double, write: @escaping (String) -> Void) {
        self.enabled = enabled
        self.minSkip = step
        self.write = write
    }

    /// Sets progress to `percent` (0…100) and prints if it moved enough. QEMU keeps it in a
    /// `float`, which decides the printed digits.
    public func update(_ percent: Double) {
        current = Float(min(max(percent, 0), 100))
        let skip = Float(minSkip)
        guard current > lastPrint + skip || current < lastPrint - skip || current == 0 || current == 100
        else { return }
        lastPrint = current
        if enabled { write("    (" + TextOutput.fixed(Double(current), precision: 2) + "/100%)\r") }
    }

    /// Ends the line (`qemu_progress_end`).
    public func finish() {
        if enabled { write("\n") }
    }
}
