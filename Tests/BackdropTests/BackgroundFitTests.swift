// background-fit: how a background-image of another shape meets the frame. The image is 80×40
// with three vertical stripes — red (x 0-19), green (20-59), blue (60-79) — and the frame 40×40
// and black, so the luma-key model makes all of it background and the output is the image itself.
import Foundation
import XCTest

final class BackgroundFitTests: XCTestCase {
  nonisolated(unsafe) static var directory: URL!
  static var image: String { directory.appendingPathComponent("stripes.png").path }

  override class func setUp() {
    super.setUp()
    directory = try! TestEnvironment.temporaryDirectory()
    func stripe(_ colour: String, _ width: Int) -> String {
      "videotestsrc num-buffers=1 pattern=solid-color foreground-color=\(colour) ! video/x-raw,format=RGB,width=\(width),height=40 ! c. "
    }
    let run = runPipeline(
      "compositor name=c sink_1::xpos=20 sink_2::xpos=60 ! video/x-raw,format=RGB,width=80,height=40 ! videoconvert ! "
        + "pngenc snapshot=true ! filesink location=\(image) "
        + stripe("0xffff0000", 20) + stripe("0xff00ff00", 40) + stripe("0xff0000ff", 20))
    XCTAssertTrue(run.reachedEOS, "making the image: \(run.errors)")
  }

  override class func tearDown() {
    try? FileManager.default.removeItem(at: directory)
    super.tearDown()
  }

  /// The 40×40 output for a fit ("" = the default), as RGB bytes.
  func composite(_ fit: String) throws -> [UInt8] {
    let output = Self.directory.appendingPathComponent("out-\(fit).rgb").path
    let run = runPipeline(
      "videotestsrc num-buffers=1 pattern=black ! video/x-raw,format=RGB,width=40,height=40 ! "
        + "birefnetmatte model-file=\(TestEnvironment.designedModel("lumakey")) inference-width=64 inference-height=64 "
        + "background=image background-image=\(Self.image) \(fit.isEmpty ? "" : "background-fit=\(fit)") ! "
        + "video/x-raw,format=RGB ! filesink location=\(output)")
    XCTAssertTrue(run.reachedEOS, "\(run.errors)")
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
  }

  func colour(_ bytes: [UInt8], _ x: Int, _ y: Int) -> RGB {
    let i = (y * 40 + x) * 3
    return RGB(r: Int(bytes[i]), g: Int(bytes[i + 1]), b: Int(bytes[i + 2]))
  }

  let red = RGB(r: 255, g: 0, b: 0), green = RGB(r: 0, g: 255, b: 0), blue = RGB(r: 0, g: 0, b: 255)
  let black = RGB(r: 0, g: 0, b: 0)

  func testCoverIsTheDefaultAndCropsTheSides() throws {
    for fit in ["", "cover"] {
      let bytes = try composite(fit)
      // The centre 40×40 of the image: only green.
      assertClose(colour(bytes, 2, 20), green, tolerance: 12, "left edge (\(fit))")
      assertClose(colour(bytes, 37, 20), green, tolerance: 12, "right edge (\(fit))")
    }
  }

  func testContainShowsTheWholeImageBetweenBlackBars() throws {
    let bytes = try composite("contain")
    // Scaled to 40×20, centred: rows 10-29 hold red (x 0-9), green, blue (x 30-39).
    assertClose(colour(bytes, 20, 3), black, tolerance: 12, "bar above")
    assertClose(colour(bytes, 20, 36), black, tolerance: 12, "bar below")
    assertClose(colour(bytes, 3, 20), red, tolerance: 12, "red stripe")
    assertClose(colour(bytes, 20, 20), green, tolerance: 12, "green stripe")
    assertClose(colour(bytes, 36, 20), blue, tolerance: 12, "blue stripe")
  }

  func testStretchSquashesTheWholeImage() throws {
    let bytes = try composite("stretch")
    assertClose(colour(bytes, 3, 3), red, tolerance: 12, "red stripe, top")
    assertClose(colour(bytes, 3, 36), red, tolerance: 12, "red stripe, bottom")
    assertClose(colour(bytes, 20, 20), green, tolerance: 12, "green stripe")
    assertClose(colour(bytes, 36, 36), blue, tolerance: 12, "blue stripe")
  }
}
