import FuzzSupport

// libFuzzer entry point: the one place this target touches a raw pointer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = unsafe Array(UnsafeBufferPointer(start: data, count: size))
    HeaderTarget.run(bytes)
    return 0
}
