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

  /// The fuzz target's seeds (fuzz/libtorch_linkage/make_seeds.py), small ELF images written by hand:
  /// the reader finds what readelf -d shows in them, RUNPATH before RPATH, libtorch names only.
  func testHandWrittenELFImagesOfTheFuzzSeeds() throws {
    let seeds = TestEnvironment.packageRoot.appendingPathComponent("fuzz/corpus/libtorch_linkage")
    func read(_ name: String) -> LibtorchLinkage? { LibtorchLinkage.read(path: seeds.appendingPathComponent(name).path) }
    let debian = try XCTUnwrap(read("debian-libtorch"))
    XCTAssertEqual(debian.libraries, ["libtorch.so.1.13", "libtorch_cpu.so.1.13", "libc10.so.1.13"])
    XCTAssertEqual(debian.runpath, "$ORIGIN")
    let wheel = try XCTUnwrap(read("pip-torch-cuda"))
    XCTAssertEqual(wheel.libraries, ["libtorch_cpu.so", "libtorch_cuda.so", "libc10_cuda.so", "libc10.so"])
    XCTAssertEqual(wheel.runpath, "/opt/venv/lib/python3.12/site-packages/torch/lib")
    let rpath = try XCTUnwrap(read("rpath-only"))
    XCTAssertEqual(rpath.libraries, ["libc10.so"])
    XCTAssertEqual(rpath.runpath, "/usr/local/lib", "DT_RPATH where there is no DT_RUNPATH")
    let none = try XCTUnwrap(read("no-torch"))
    XCTAssertEqual(none.libraries, [])
    XCTAssertEqual(none.runpath, "")
    XCTAssertTrue(debian.conflicts(with: wheel))
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
