import BlockIO
import ImageKit

/// Renders `check` results like qemu-img 7.2 (`dump_human_image_check`, `dump_json_image_check`).
public enum CheckRenderer {
    /// The summary: "No errors were found on the image." or the error/leak/internal-error
    /// paragraphs, then the cluster statistics line and `Image end offset:` when non-zero.
    public static func human(_ report: CheckReport) -> String {
        var out = ""
        if report.corruptions == 0 && report.leaks == 0 && report.checkErrors == 0 {
            out += "No errors were found on the image.\n"
        } else {
            if report.corruptions != 0 {
                out += "\n\(report.corruptions) errors were found on the image.\n"
                out += "Data may be corrupted, or further writes to the image may corrupt it.\n"
            }
            if report.leaks != 0 {
                out += "\n\(report.leaks) leaked clusters were found on the image.\n"
                out += "This means waste of disk space, but no harm to data.\n"
            }
            if report.checkErrors != 0 {
                out += "\n\(report.checkErrors) internal errors have occurred during the check.\n"
            }
        }
        if report.totalClusters != 0 && report.allocatedClusters != 0 {
            let allocated = Double(report.allocatedClusters)
            // qemu-img: "%" PRId64 "/%" PRId64 " = %0.2f%% allocated, %0.2f%% fragmented, …".
            func percent(_ value: Double) -> String { TextOutput.fixed(value, precision: 2) }
            out +=
                "\(report.allocatedClusters)/\(report.totalClusters) = "
                + percent(allocated * 100.0 / Double(report.totalClusters)) + "% allocated, "
                + percent(Double(report.fragmentedClusters) * 100.0 / allocated) + "% fragmented, "
                + percent(Double(report.compressedClusters) * 100.0 / allocated) + "% compressed clusters\n"
        }
        if report.imageEndOffset != 0 { out += "Image end offset: \(report.imageEndOffset)\n" }
        return out
    }

    /// The block printed between a repairing pass and the re-check.
    public static func repaired(leaksFixed: Int64, corruptionsFixed: Int64) -> String {
        """
        The following inconsistencies were found and repaired:

            \(leaksFixed) leaked clusters
            \(corruptionsFixed) corruptions

        Double checking the fixed image now...

        """
    }

    /// The JSON object with a trailing newline; zero counters other than `check-errors` are absent.
    /// - Throws: encoding errors.
    public static func json(_ report: CheckReport) throws -> String {
        try JSONWriter.pretty(report) + "\n"
    }

    /// qemu-img's exit status for a finished check: 2 corruptions, 3 only leaks, else 0.
    public static func exitCode(_ report: CheckReport) -> Int32 {
        report.corruptions != 0 ? 2 : report.leaks != 0 ? 3 : 0
    }
}
