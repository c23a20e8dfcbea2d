import QCow2Format
import Testing

@Suite struct EntryTests {
    /// Real descriptors from qcow2-format.md §4.3 (64 KiB clusters).
    @Test(arguments: [
        (UInt64(0x4000_0000_0005_0000), UInt64(0x50000), 512),
        (UInt64(0x4040_0000_0005_004f), UInt64(0x5004f), 945),
        (UInt64(0x4000_0000_0005_0292), UInt64(0x50292), 366),
    ])
    func compressedDescriptorsDecodeLikeQemu(_ entry: UInt64, _ offset: UInt64, _ length: Int) {
        let d = CompressedDescriptor(entry: entry, clusterBits: 16)
        #expect(d.hostOffset == offset && d.byteLength == length)
    }

    @Test func compressedDescriptorRoundTrips() {
        for bits in UInt32(9)...21 {
            let cs = 1 << Int(bits)
            for (offset, length) in [(UInt64(0x12345), 100), (UInt64(1 << 30) + 511, cs - 1)] {
                let raw = CompressedDescriptor.encode(offset: offset, length: length, clusterBits: bits)
                let d = CompressedDescriptor(entry: raw, clusterBits: bits)
                #expect(d.hostOffset == offset)
                #expect(d.byteLength >= length, "bits=\(bits)")
                #expect(L2Entry(raw: raw).clusterType(extendedL2: false, externalDataFile: false) == .compressed)
            }
        }
    }

    @Test func clusterTypesFollowQemuOrder() {
        func type(_ raw: UInt64, ext: Bool = false) -> ClusterType {
            L2Entry(raw: raw).clusterType(extendedL2: false, externalDataFile: ext)
        }
        #expect(type(0) == .unallocated)
        #expect(type(1) == .zeroPlain)
        #expect(type(0x8000_0000_0005_0001) == .zeroAllocated)
        #expect(type(0x8000_0000_0005_0000) == .normal)
        #expect(type(0x8000_0000_0000_0000) == .unallocated)
        #expect(type(0x8000_0000_0000_0000, ext: true) == .normal)
    }

    /// The real extended-L2 example of §4.4.
    @Test func subclusterStatesOfTheRealExample() {
        let e0 = L2Entry(raw: 0x8000_0000_0005_0000, bitmap: 0x13)
        let states = (0..<5).map { e0.subclusterType($0, extendedL2: true, externalDataFile: false) }
        #expect(states == [.normal, .normal, .unallocatedAllocated, .unallocatedAllocated, .normal])
        let e1 = L2Entry(raw: 0, bitmap: 0x3_0000_0000)
        #expect(e1.subclusterType(1, extendedL2: true, externalDataFile: false) == .zeroPlain)
        #expect(e1.subclusterType(2, extendedL2: true, externalDataFile: false) == .unallocatedPlain)
        let bad = L2Entry(raw: 0x8000_0000_0005_0000, bitmap: 0x1_0000_0001)
        #expect(bad.subclusterType(0, extendedL2: true, externalDataFile: false) == .invalid)
    }

    @Test(arguments: 0...6)
    func refcountEntriesOfEveryWidthRoundTrip(_ order: Int) {
        let g = QCow2Geometry(clusterBits: 9, extendedL2: false, refcountOrder: order)
        var block = [UInt8](repeating: 0, count: 512)
        let max = g.maxRefcount
        for i in stride(from: 0, to: g.refcountBlockEntries, by: 7) {
            RefcountBlockCodec.set(&block, index: i, order: order, value: UInt64(i) & max)
        }
        for i in 0..<g.refcountBlockEntries {
            #expect(RefcountBlockCodec.get(block, index: i, order: order) == (i % 7 == 0 ? UInt64(i) & max : 0))
        }
    }

    @Test func oneBitRefcountsPackFromTheLeastSignificantBit() {
        var block = [UInt8](repeating: 0, count: 512)
        RefcountBlockCodec.set(&block, index: 9, order: 0, value: 1)
        #expect(block[1] == 0b10)
    }

    @Test func snapshotTableRoundTripsAndPadsEntriesTo8() throws {
        let entries = [
            SnapshotEntry(l1TableOffset: 0x70000, l1Size: 2, id: "1", name: "s1", dateSeconds: 5, diskSize: 1 << 30),
            SnapshotEntry(l1TableOffset: 0x80000, l1Size: 2, id: "2", name: "s2", diskSize: 1 << 30),
        ]
        let bytes = SnapshotTable.encode(entries)
        #expect(bytes.count == 139)  // §6.1: 67 bytes, next entry at +72, table 139 bytes
        let (decoded, length) = try SnapshotTable.decode(bytes, count: 2)
        #expect(decoded == entries && length == 139)
        #expect(SnapshotTable.nextID(decoded) == "3")
        // strtoul saturates, unsigned long wraps: QEMU's arithmetic, no trap.
        for huge in [String(UInt64.max), "99999999999999999999999"] {
            let e = SnapshotEntry(l1TableOffset: 0, l1Size: 0, id: huge, name: "x", diskSize: 0)
            #expect(SnapshotTable.nextID([e]) == "0")
        }
    }

    @Test func snapshotExtraDataOverLimitIsRefused() {
        var bytes = SnapshotTable.encode([SnapshotEntry(l1TableOffset: 0, l1Size: 0, id: "1", name: "a", diskSize: 0)])
        bytes.replaceSubrange(36..<40, with: bigEndian(UInt32(2000)))
        #expect(throws: QCow2Error.self) { try SnapshotTable.decode(bytes, count: 1) }
        #expect(throws: QCow2Error.self) { try SnapshotTable.decode([], count: 70000) }
    }
}
