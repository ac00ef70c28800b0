// Each example in pipelines/ run as a user would, on a generated clip, with its output decoded
// and checked. The clip is SMPTE colour bars: with the luma-key model the four brightest bars
// (white, yellow, cyan, green) are the subject and the three darker ones (magenta, red, blue) the
// background.
import CBackdropShim
import CGStreamer
import XCTest

final class PipelineExamplesTests: XCTestCase {
  static let width = 140, height = 84, frames = 12
  let subjectPoint = (x: 10, y: 28)      // in the white bar (first of seven)
  let backgroundPoint = (x: 130, y: 28)  // in the blue bar (last of seven)
  var directory: URL!
  var clip: String { directory.appendingPathComponent("bars.webm").path }
  var model: String { TestEnvironment.designedModel("lumakey") }

  override func setUpWithError() throws {
    directory = try TestEnvironment.temporaryDirectory()
    let run = runPipeline(
      "videotestsrc num-buffers=\(Self.frames) pattern=smpte ! video/x-raw,width=\(Self.width),height=\(Self.height),framerate=10/1 ! "
        + "videoconvert ! vp8enc deadline=1 min-quantizer=0 max-quantizer=4 ! webmmux ! filesink location=\(clip)")
    XCTAssertTrue(run.reachedEOS, "making the clip: \(run.errors)")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func script(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws {
    let path = TestEnvironment.packageRoot.appendingPathComponent("pipelines/\(name)").path
    let result = try runTool("/bin/sh", [path] + arguments, extraEnvironment: environment)
    XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
  }

  /// Decodes a video file to raw frames of `format` and returns the bytes.
  func decode(_ file: String, format: String) throws -> [UInt8] {
    let raw = directory.appendingPathComponent("decoded-\(UUID().uuidString).raw").path
    let run = runPipeline("filesrc location=\(file) ! decodebin ! videoconvert ! video/x-raw,format=\(format) ! filesink location=\(raw)")
    XCTAssertTrue(run.reachedEOS, "decoding \(file): \(run.errors)")
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
  }

  func testGreenScreen() throws {
    let output = directory.appendingPathComponent("green.webm").path
    try script("green-screen.sh", [clip, model, output])
    let bytes = try decode(output, format: "RGB")
    let frameSize = Self.width * Self.height * 3
    XCTAssertEqual(bytes.count, Self.frames * frameSize, "all frames written")
    for frame in [0, Self.frames - 1] {
      let b = frame * frameSize + (backgroundPoint.y * Self.width + backgroundPoint.x) * 3
      assertClose(RGB(r: Int(bytes[b]), g: Int(bytes[b + 1]), b: Int(bytes[b + 2])), RGB(r: 0, g: 255, b: 0), tolerance: 30, "green background")
      let s = frame * frameSize + (subjectPoint.y * Self.width + subjectPoint.x) * 3
      assertClose(RGB(r: Int(bytes[s]), g: Int(bytes[s + 1]), b: Int(bytes[s + 2])), RGB(r: 255, g: 255, b: 255), tolerance: 30, "white bar kept")
    }
  }

  func testMatteOnly() throws {
    let output = directory.appendingPathComponent("matte.webm").path
    try script("matte-only.sh", [clip, model, output])
    let bytes = try decode(output, format: "GRAY8")
    XCTAssertEqual(bytes.count, Self.frames * Self.width * Self.height)
    XCTAssertGreaterThan(bytes[subjectPoint.y * Self.width + subjectPoint.x], 215)
    XCTAssertLessThan(bytes[backgroundPoint.y * Self.width + backgroundPoint.x], 40)
  }

  /// Phone footage stored sideways (a display matrix, set here with ffmpeg, which GStreamer reads as
  /// image-orientation): the example turns it upright, so the matte is portrait, with the white bar
  /// (stored on the left) along the bottom and the blue bar (stored on the right) along the top.
  func testMatteOnlyTurnsSidewaysFootageUpright() throws {
    let stored = directory.appendingPathComponent("stored.mp4").path, sideways = directory.appendingPathComponent("sideways.mp4").path
    let run = runPipeline(
      "videotestsrc num-buffers=\(Self.frames) pattern=smpte ! video/x-raw,width=\(Self.width),height=\(Self.height),framerate=10/1 ! "
        + "x264enc qp-max=10 ! mp4mux ! filesink location=\(stored)")
    XCTAssertTrue(run.reachedEOS, "making the clip: \(run.errors)")
    let ffmpeg = try runTool("/usr/bin/ffmpeg", ["-v", "error", "-y", "-i", stored, "-c", "copy", "-metadata:s:v:0", "rotate=90", sideways])
    XCTAssertEqual(ffmpeg.status, 0, ffmpeg.stderr)
    let output = directory.appendingPathComponent("matte.webm").path
    try script("matte-only.sh", [sideways, model, output])
    let bytes = try decode(output, format: "GRAY8")
    let (width, height) = (Self.height, Self.width)  // portrait
    XCTAssertEqual(bytes.count, Self.frames * width * height, "portrait frames (\(width)x\(height))")
    guard bytes.count >= width * height else { return }
    // Stored (x, y) is shown at (y, stored width - 1 - x).
    let shown = { (x: Int, y: Int) in Int(bytes[(Self.width - 1 - x) * width + y]) }
    XCTAssertGreaterThan(shown(subjectPoint.x, subjectPoint.y), 215, "white bar, along the bottom, is the subject")
    XCTAssertLessThan(shown(backgroundPoint.x, backgroundPoint.y), 40, "blue bar, along the top, the background")
  }

  /// The colour on top, the matte as grey below, every frame: the example's MP4 is twice as tall.
  func testStackedAlphaMP4() throws {
    let output = directory.appendingPathComponent("stacked.mp4").path
    try script("stacked-alpha-mp4.sh", [clip, model, output])
    let bytes = try decode(output, format: "GRAY8")
    let frame = Self.width * Self.height * 2
    XCTAssertEqual(bytes.count, Self.frames * frame, "\(Self.frames) frames of \(Self.width)x\(Self.height * 2)")
    guard bytes.count >= frame else { return }
    let below = { (x: Int, y: Int) in Int(bytes[(Self.height + y) * Self.width + x]) }
    XCTAssertGreaterThan(below(subjectPoint.x, subjectPoint.y), 215, "alpha below: the subject white")
    XCTAssertLessThan(below(backgroundPoint.x, backgroundPoint.y), 40, "alpha below: the background black")
    XCTAssertGreaterThan(Int(bytes[subjectPoint.y * Self.width + subjectPoint.x]), 215, "on top: the white bar itself")
  }

  func testTransparentPNGFrames() throws {
    let pattern = directory.appendingPathComponent("frame%03d.png").path
    try script("transparent-png-frames.sh", [clip, model, pattern])
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".png") }
    XCTAssertEqual(files.count, Self.frames)
    let bytes = try decode(directory.appendingPathComponent("frame000.png").path, format: "RGBA")
    XCTAssertEqual(bytes.count, Self.width * Self.height * 4)
    XCTAssertEqual(bytes[(subjectPoint.y * Self.width + subjectPoint.x) * 4 + 3], 255, "subject opaque")
    XCTAssertEqual(bytes[(backgroundPoint.y * Self.width + backgroundPoint.x) * 4 + 3], 0, "background transparent")
  }

  func testCameraWithBlurredBackground() throws {
    let output = directory.appendingPathComponent("camera.rgb").path
    try script("camera-blur-window.sh", [model], environment: [
      "SOURCE": "videotestsrc is-live=true num-buffers=8 pattern=smpte ! video/x-raw,width=\(Self.width),height=\(Self.height),framerate=30/1",
      "SINK": "video/x-raw,format=RGB ! filesink location=\(output)",
    ])
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
    XCTAssertEqual(bytes.count, 8 * Self.width * Self.height * 3, "every live frame arrives")
    let s = (subjectPoint.y * Self.width + subjectPoint.x) * 3
    assertClose(RGB(r: Int(bytes[s]), g: Int(bytes[s + 1]), b: Int(bytes[s + 2])), RGB(r: 255, g: 255, b: 255), tolerance: 2, "subject stays sharp")
    // Right next to the subject's edge the blurred background mixes in the neighbouring bars.
    let blue = ((Self.height / 3) * Self.width + 135) * 3
    XCTAssertGreaterThan(Int(bytes[blue]) + Int(bytes[blue + 1]), 20, "blue bar blurred with its neighbours")
  }
}
