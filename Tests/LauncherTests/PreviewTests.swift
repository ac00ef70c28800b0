// backdrop preview: the contact sheet's size and, with the luma-key model on colour bars, the
// colours of each column (original, matte, composite over a checkerboard).
import Foundation
import XCTest

final class PreviewTests: XCTestCase {
  var directory: URL!

  override func setUpWithError() throws { directory = try Launcher.temporaryDirectory() }
  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func testContactSheet() throws {
    let clip = directory.appendingPathComponent("bars.webm").path
    try ComposeTests.makeClip(clip, frames: 20, width: 160, height: 96, fps: 10)
    let sheet = directory.appendingPathComponent("sheet.png").path
    let result = try runProgram(
      Launcher.executable, ["preview", clip, "-o", sheet, "--frames", "3", "--tile-width", "160", "--model", Launcher.designedModel("lumakey")],
      environment: Launcher.environment(cache: directory.appendingPathComponent("cache")))
    XCTAssertEqual(result.status, 0, result.stderr)
    // 3 columns of 160 and 4 gaps of 4 pixels; 3 rows of 96 and 4 gaps.
    let (width, height) = (3 * 160 + 16, 3 * 96 + 16)
    XCTAssertTrue(result.stderr.contains("3 frames (original | matte | composite) → \(sheet) (\(width)x\(height)"), result.stderr)
    let pixels = try XCTUnwrap(decodeFrames(sheet, format: "RGB", width: width, height: height).first, "one PNG picture")
    func at(_ column: Int, _ row: Int, _ x: Int, _ y: Int) -> [Int] {
      let px = 4 + column * (160 + 4) + x, py = 4 + row * (96 + 4) + y
      let i = (py * width + px) * 3
      return [Int(pixels[i]), Int(pixels[i + 1]), Int(pixels[i + 2])]
    }
    XCTAssertEqual(Array(pixels[0..<3]), [40, 40, 40], "dark grey border")
    for row in 0..<3 {
      // Original: white bar and blue bar.
      XCTAssertTrue(at(0, row, 10, 30).allSatisfy { $0 > 230 }, "white bar \(at(0, row, 10, 30))")
      let blue = at(0, row, 150, 30)
      XCTAssertTrue(blue[2] > 180 && blue[0] < 40 && blue[1] < 40, "blue bar \(blue)")
      // Matte: white where the subject is, black elsewhere.
      XCTAssertTrue(at(1, row, 10, 30).allSatisfy { $0 > 245 }, "matte of the white bar")
      XCTAssertTrue(at(1, row, 150, 30).allSatisfy { $0 < 10 }, "matte of the blue bar")
      // Composite: the subject, and the 16-pixel checkerboard: 204 where (x/16 + y/16) is even.
      XCTAssertTrue(at(2, row, 10, 30).allSatisfy { $0 > 230 })
      XCTAssertEqual(at(2, row, 150, 30), [204, 204, 204], "checkerboard square 9+1")
      XCTAssertEqual(at(2, row, 150, 40), [153, 153, 153], "checkerboard square 9+2")
    }
  }

  func testBadArguments() throws {
    let cache = directory.appendingPathComponent("cache")
    let missing = try runProgram(Launcher.executable, ["preview", directory.appendingPathComponent("no.webm").path, "-o", directory.appendingPathComponent("s.png").path],
                                 environment: Launcher.environment(cache: cache))
    XCTAssertEqual(missing.status, 66)
    XCTAssertTrue(missing.stderr.contains("input not found"), missing.stderr)
    let clip = directory.appendingPathComponent("bars.webm").path
    try ComposeTests.makeClip(clip, frames: 2, width: 64, height: 48, fps: 10)
    let jpeg = try runProgram(Launcher.executable, ["preview", clip, "-o", directory.appendingPathComponent("s.jpg").path, "--model", Launcher.designedModel("lumakey")],
                              environment: Launcher.environment(cache: cache))
    XCTAssertEqual(jpeg.status, 64)
    XCTAssertTrue(jpeg.stderr.contains("unknown output extension ('.jpg')"), jpeg.stderr)
  }
}
