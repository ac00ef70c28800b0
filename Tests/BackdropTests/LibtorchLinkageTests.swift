// The libtorch an engine file links, read from the file before it is loaded (LibtorchLinkage): the
// guard that keeps a second libtorch build out of a process rests on it.
@testable import BackdropEngineClient
import Foundation
import XCTest

final class LibtorchLinkageTests: XCTestCase {
  func testTheBuiltEngineLinksDebiansVersionedLibtorch() throws {
    let engine = TestEnvironment.buildDirectory.appendingPathComponent("libbackdrop-torch.so").path
    let linkage = try XCTUnwrap(LibtorchLinkage.read(path: engine), "\(engine) is an ELF file with a dynamic section")
    XCTAssertEqual(linkage.libraries, ["libtorch.so.1.13", "libtorch_cpu.so.1.13", "libc10.so.1.13"])
    XCTAssertTrue(linkage.runpath.contains("$ORIGIN"), linkage.runpath)
  }

  func testFilesThatAreNotELFOrAreCutShortGiveNothing() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("linkage-\(getpid())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let engine = try Data(contentsOf: TestEnvironment.buildDirectory.appendingPathComponent("libbackdrop-torch.so"))
    let cases: [(String, Data)] = [
      ("empty", Data()), ("text", Data("not an ELF file".utf8)), ("header only", engine.prefix(64)),
      ("program headers only", engine.prefix(4096)),
      ("32-bit class", { var d = engine.prefix(65536); d[d.startIndex + 4] = 1; return d }()),
    ]
    for (name, bytes) in cases {
      let url = folder.appendingPathComponent(name)
      try bytes.write(to: url)
      XCTAssertNil(LibtorchLinkage.read(path: url.path), name)
    }
    XCTAssertNil(LibtorchLinkage.read(path: folder.appendingPathComponent("missing").path))
  }

  func testWhichLinkagesCanShareAProcess() {
    let debian = LibtorchLinkage(libraries: ["libtorch.so.1.13", "libtorch_cpu.so.1.13", "libc10.so.1.13"], runpath: "$ORIGIN")
    let debianElsewhere = LibtorchLinkage(libraries: debian.libraries, runpath: "/opt/swift/usr/lib/swift/linux:$ORIGIN")
    let wheel = LibtorchLinkage(libraries: ["libtorch_cpu.so", "libc10.so"], runpath: "/venv/lib/torch/lib")
    let otherWheel = LibtorchLinkage(libraries: wheel.libraries, runpath: "/other/torch/lib")
    XCTAssertFalse(debian.conflicts(with: debianElsewhere), "versioned names are one libtorch wherever the engine is")
    XCTAssertTrue(debian.conflicts(with: wheel))
    XCTAssertFalse(wheel.conflicts(with: wheel))
    XCTAssertTrue(wheel.conflicts(with: otherWheel), "unversioned names from two torch installs")
  }
}
