// Phone footage stored sideways: frames coded landscape, with an MP4 display matrix that tells
// players to turn them a quarter turn. `backdrop compose` and `backdrop preview` must matte and
// write what a player shows: the subject upright, the output portrait, and no matrix left in an MP4
// (the pixels are already turned; a matrix would turn them twice).
//
// The clip is SMPTE colour bars (160×96) with `rotate=90` set by ffmpeg, which GStreamer reads as
// image-orientation=rotate-270: a player shows it 96×160 with the white bar (stored on the left)
// along the bottom and the blue bar (stored on the right) along the top. With the luma-key model
// the white bar is the subject and the blue bar the background.
import Foundation
import XCTest

final class OrientationTests: XCTestCase {
  static let stored = (width: 160, height: 96), frames = 10
  static let shown = (width: 96, height: 160)
  // Stored (x, y) is shown at (y, 159 - x): white bar (10, 30) → (30, 149), blue bar (150, 30) → (30, 9).
  static let subject = (x: 30, y: 149), background = (x: 30, y: 9)

  var directory: URL!
  var model: String { Launcher.designedModel("lumakey") }
  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    let stored = path("stored.mp4")
    try gstLaunch([
      "videotestsrc", "num-buffers=\(Self.frames)", "pattern=smpte", "!",
      "video/x-raw,width=\(Self.stored.width),height=\(Self.stored.height),framerate=10/1", "!",
      "x264enc", "qp-max=10", "!", "mp4mux", "!", "filesink", "location=\(stored)",
    ])
    let ffmpeg = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg", [
      "-v", "error", "-y", "-i", stored, "-c", "copy", "-metadata:s:v:0", "rotate=90", path("sideways.mp4"),
    ])
    XCTAssertEqual(ffmpeg.status, 0, ffmpeg.stderr)
    XCTAssertEqual(try rotation(path("sideways.mp4")), "90", "the clip carries a display matrix")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func backdrop(_ arguments: [String]) throws -> RunResult {
    try runProgram(Launcher.executable, arguments,
                   environment: Launcher.environment(cache: directory.appendingPathComponent("cache")))
  }

  /// The display matrix's rotation as ffprobe reports it, "" when the file has none.
  func rotation(_ file: String) throws -> String {
    let result = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe", [
      "-v", "error", "-select_streams", "v:0", "-show_entries", "stream_side_data=rotation", "-of", "csv=p=0", file,
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "-", with: "")
  }

  func at(_ frame: [UInt8], _ point: (x: Int, y: Int), width: Int = OrientationTests.shown.width, channels: Int) -> [Int] {
    let i = (point.y * width + point.x) * channels
    return (0..<channels).map { Int(frame[i + $0]) }
  }

  func testComposeWritesWhatAPlayerShows() throws {
    let webm = path("out.webm"), preview = path("preview.mp4")
    let run = try backdrop(["compose", path("sideways.mp4"), "-o", webm, "--preview", preview, "--model", model, "-q"])
    XCTAssertEqual(run.status, 0, run.stderr)
    for file in [webm, preview] {
      let video = try XCTUnwrap(try ffprobe(file).video)
      XCTAssertEqual([video.width, video.height, video.frames], [Self.shown.width, Self.shown.height, Self.frames], file)
    }
    XCTAssertEqual(try rotation(preview), "", "the preview's pixels are turned already: no matrix")

    let alpha = try decodeFrames(webm, format: "RGBA", width: Self.shown.width, height: Self.shown.height)
    XCTAssertEqual(alpha.count, Self.frames)
    for frame in [alpha[0], alpha[Self.frames - 1]] {
      XCTAssertGreaterThan(at(frame, Self.subject, channels: 4)[3], 240, "white bar, along the bottom, opaque")
      XCTAssertTrue(at(frame, Self.subject, channels: 4)[0..<3].allSatisfy { $0 > 200 }, "and white")
      XCTAssertLessThan(at(frame, Self.background, channels: 4)[3], 15, "blue bar, along the top, transparent")
    }
    let shown = try decodeFrames(preview, format: "RGB", width: Self.shown.width, height: Self.shown.height)[0]
    XCTAssertTrue(at(shown, Self.subject, channels: 3).allSatisfy { $0 > 200 }, "white bar along the bottom of the preview")
  }

  func testStackedAlphaIsPortraitToo() throws {
    let output = path("stacked.mp4")
    let run = try backdrop(["compose", path("sideways.mp4"), "-o", output, "--stacked-alpha", "--model", model, "-q"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let video = try XCTUnwrap(try ffprobe(output).video)
    XCTAssertEqual([video.width, video.height], [Self.shown.width, 2 * Self.shown.height], "picture above, matte below")
    let frame = try decodeFrames(output, format: "GRAY8", width: video.width, height: video.height)[0]
    let matte = { (point: (x: Int, y: Int)) in Int(frame[(point.y + Self.shown.height) * video.width + point.x]) }
    XCTAssertGreaterThan(matte(Self.subject), 200, "matte white under the white bar")
    XCTAssertLessThan(matte(Self.background), 40, "matte black under the blue bar")
  }

  func testContactSheetTilesArePortrait() throws {
    let sideways = path("sideways.png"), stored = path("stored.png")
    for (input, sheet) in [(path("sideways.mp4"), sideways), (path("stored.mp4"), stored)] {
      let run = try backdrop(["preview", input, "-o", sheet, "--model", model, "--frames", "1"])
      XCTAssertEqual(run.status, 0, run.stderr)
    }
    let size = { (file: String) -> [Int] in
      let video = try XCTUnwrap(try ffprobe(file).video)
      return [video.width, video.height]
    }
    let (portrait, landscape) = (try size(sideways), try size(stored))
    XCTAssertEqual(portrait[0], landscape[0], "same tile width")
    // Tiles of one width: the portrait frame's tiles are (160/96)² times as tall as the landscape ones.
    XCTAssertGreaterThan(portrait[1], 2 * landscape[1], "portrait tiles: \(portrait) against \(landscape)")
  }
}
