import BlockIO
import QCow2
import QCow2Format

/// FuzzWrite's body: open a copy writable (repairing a dirty image first, as the CLI does), do a
/// few writes, zeroes and discards at offsets chosen by the input's last bytes, flush, check.
public enum WriteTarget {
    public static func run(_ bytes: [UInt8]) {
        guard let image = openImage(bytes, writable: true) else { return }
        do {
            _ = try image.rebuildRefcountsIfDirty()
        } catch {
            return
        }
        let size = image.virtualSize
        guard size > 0 else { return }
        let cs = UInt64(image.geometry.clusterSize)
        // Offsets from the tail of the input so mutations steer them; within the first 64 MiB.
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for b in bytes.suffix(16) { seed = (seed ^ UInt64(b)) &* 0x100_0000_01B3 }
        func next() -> UInt64 {
            seed ^= seed << 13
            seed ^= seed >> 7
            seed ^= seed << 17
            return seed
        }
        let span = min(size, 64 << 20)
        let data = [UInt8](repeating: 0xA5, count: Int(3 * cs + 1024))
        for _ in 0..<6 {
            let at = next() % span
            let count = next() % (3 * cs) + 1
            switch next() % 5 {
            case 0, 1:
                let n = Int(min(count, UInt64(data.count)))
                _ = try? image.write(data, range: 0..<n, at: at)
            case 2: _ = try? image.writeZeroes(at: at, count: count, unmap: false)
            case 3: _ = try? image.writeZeroes(at: at & ~(cs - 1), count: cs * 2, unmap: true)
            default: _ = try? image.discard(at: at & ~(cs - 1), count: count)
            }
        }
        _ = try? image.flush()
        _ = try? image.check()
        ImageTarget.exercise(image)
        _ = try? image.close()
    }
}
