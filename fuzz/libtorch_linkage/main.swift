// libFuzzer target (Swift, -sanitize=fuzzer): the ELF reader that decides, before dlopen, which
// libtorch an engine file links (Sources/BackdropEngineClient/LibtorchLinkage.swift). The file is
// whatever a user gives as engine-library or BACKDROP_ENGINE, so every offset in it is hostile. The
// bytes go to an unlinked temporary file read through /proc/self/fd. A result is nil or names only libtorch and
// libc10 libraries, reads back the same, and never conflicts with itself; a trap, an out-of-bounds
// access (ASan) or a broken invariant is a finding.
import Glibc

private func check(_ condition: Bool, _ what: @autoclosure () -> String) {
  if !condition {
    fputs("invariant broken: \(what())\n", stderr)
    abort()
  }
}

// One unlinked temporary file for every input (nothing is left behind), read through its fd's path.
private let memoryFile: Int32 = {
  var template = Array("/tmp/libtorch-linkage-fuzz-XXXXXX".utf8CString)
  let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
  check(fd >= 0, "mkstemp")
  template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
  return fd
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  check(ftruncate(memoryFile, 0) == 0, "ftruncate")
  check(pwrite(memoryFile, data, size, 0) == size, "pwrite")
  let path = "/proc/self/fd/\(memoryFile)"
  let linkage = LibtorchLinkage.read(path: path)
  if let linkage {
    check(linkage.libraries.allSatisfy { $0.hasPrefix("libtorch") || $0.hasPrefix("libc10") },
          "libraries \(linkage.libraries)")
    check(!linkage.conflicts(with: linkage), "conflicts with itself: \(linkage.description)")
  }
  let again = LibtorchLinkage.read(path: path)
  check(again?.libraries == linkage?.libraries && again?.runpath == linkage?.runpath, "a second read differs")
  return 0
}
