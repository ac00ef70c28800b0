// The repository's fixtures are a trimmed copy of the shared reference set (../shared/fixtures,
// scripts/birefnet_fixtures.py): where the shared set is beside the project, every tensor the copy
// keeps must be the shared one bit for bit, and every model input the tests make must be the
// shared `input` bit for bit.
import Foundation
import XCTest

final class FixtureCopyTests: XCTestCase {
  private static let shared = Paths.packageRoot.deletingLastPathComponent()
    .appendingPathComponent("shared/fixtures/birefnet")

  private func cases() throws -> [String] {
    guard FileManager.default.fileExists(atPath: Self.shared.path) else {
      let reason = "the shared fixtures are not at \(Self.shared.path); the repository copy is not compared"
      print("SKIP: \(reason)")
      throw XCTSkip(reason)
    }
    try Paths.requireFixtures()
    return try FileManager.default.contentsOfDirectory(atPath: Paths.fixtures.path)
      .filter { $0.hasSuffix(".safetensors") }.sorted()
  }

  func testKeptTensorsAreTheSharedOnes() throws {
    for name in try cases() {
      let copy = try SafeTensorsFile(Paths.fixtures.appendingPathComponent(name))
      let original = try SafeTensorsFile(Self.shared.appendingPathComponent(name))
      XCTAssertTrue(copy.entries["logits"] != nil, "\(name) keeps logits")
      for (key, entry) in copy.entries {
        guard let ref = original.entries[key] else {
          XCTFail("\(name): \(key) is not in the shared fixture")
          continue
        }
        XCTAssertEqual(entry.dtype, ref.dtype, "\(name): \(key)")
        XCTAssertEqual(entry.shape, ref.shape, "\(name): \(key)")
        let a = copy.data[(copy.dataStart + entry.begin)..<(copy.dataStart + entry.end)]
        let b = original.data[(original.dataStart + ref.begin)..<(original.dataStart + ref.end)]
        XCTAssertTrue(a.elementsEqual(b), "\(name): \(key) differs from the shared fixture")
      }
    }
  }

  func testMadeInputsAreTheSharedInputs() throws {
    var made = 0
    for name in try cases() {
      let copy = try SafeTensorsFile(Paths.fixtures.appendingPathComponent(name))
      let ref = try SafeTensorsFile(Self.shared.appendingPathComponent(name)).floats("input")
      let got = try copy.modelInput()
      XCTAssertEqual(got.shape, ref.shape, name)
      let differing = zip(got.values, ref.values).filter { $0.bitPattern != $1.bitPattern }.count
      XCTAssertEqual(differing, 0, "\(name): \(differing) input values differ from the shared input")
      if copy.entries["input"] == nil { made += 1 }
    }
    XCTAssertEqual(made, 4, "the four image cases make their input from the formula")
  }
}
