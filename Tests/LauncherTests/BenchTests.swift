// backdrop bench, small: one extra row (the luma-key model at 64²), one repetition; checks the
// table's shape and that the ratios are the quotients of the figures beside them.
import Foundation
import XCTest

final class BenchTests: XCTestCase {
  func testBenchPrintsFiguresAndRatios() throws {
    let cache = try Launcher.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: cache) }
    let result = try runProgram(
      Launcher.executable,
      ["bench", "--frames", "6", "--batch-size", "2", "--repeats", "1", "--rows", "", "--model", "\(Launcher.designedModel("lumakey"))@64"],
      environment: Launcher.environment(cache: cache))
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertTrue(result.stdout.hasPrefix("backdrop bench: 1280x720, 6 frames a measurement (first batch not timed, best of 1), batch 2, CPU"), result.stdout)
    let row = try XCTUnwrap(result.stdoutLines.first { $0.hasPrefix("lumakey.pt ") }, result.stdout)
    let numbers = row.split(separator: " ").dropFirst(2).compactMap { Double($0) }
    XCTAssertEqual(numbers.count, 6, row)
    let (engine, element, compose) = (numbers[0], numbers[1], numbers[2])
    XCTAssertTrue(engine > 0 && element > 0 && compose > 0, row)
    XCTAssertEqual(numbers[3], element / engine, accuracy: 0.01 * max(1, element / engine))
    XCTAssertEqual(numbers[4], compose / element, accuracy: 0.01 * max(1, compose / element))
    XCTAssertEqual(numbers[5], compose / engine, accuracy: 0.01 * max(1, compose / engine))
  }
}
