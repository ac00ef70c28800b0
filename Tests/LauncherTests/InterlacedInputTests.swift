// Interlaced footage (broadcast, DV, camcorders): each frame weaves two fields 1/50 s apart, so a
// moving subject has combs along its edges. The launcher deinterlaces before the model, so the
// matte follows whole frames and the outputs are progressive, one frame per input frame.
//
// The clip: a white bar (the luma key's subject) moving 100 px/s over black, 160×96, 50 fields/s
// woven into 25 interlaced frames (top field first), H.264 coded interlaced in MP4. Between its two
// fields the bar moves 2 px: woven, its left and right edges alternate by 2 px from row to row.
import Foundation
import XCTest

final class InterlacedInputTests: XCTestCase {
  var directory: URL!
  var model: String { Launcher.designedModel("lumakey") }
  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    let ffmpeg = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg", [
      "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=160x96:r=50:d=1", "-f", "lavfi", "-i", "color=c=white:s=24x64:r=50:d=1",
      "-filter_complex", "[0][1]overlay=x='20+t*100':y=16,tinterlace=interleave_top,fieldorder=tff",
      "-flags", "+ildct+ilme", "-c:v", "libx264", "-x264-params", "tff=1", "-pix_fmt", "yuv420p", path("interlaced.mp4"),
    ])
    XCTAssertEqual(ffmpeg.status, 0, ffmpeg.stderr)
    XCTAssertEqual(try fieldOrder(path("interlaced.mp4")), "tt", "the clip is coded interlaced, top field first")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func fieldOrder(_ file: String) throws -> String {
    let result = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe",
                                ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=field_order", "-of", "csv=p=0", file])
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// How much a plane's rows differ from the mean of their neighbours (0-255): woven fields of a
  /// moving edge raise it, a whole frame keeps it low.
  func comb(_ plane: [UInt8], width: Int = ScaleFixture.width, height: Int = ScaleFixture.height) -> Double {
    var sum = 0
    for y in 1..<(height - 1) {
      for x in 0..<width {
        sum += abs(2 * Int(plane[y * width + x]) - Int(plane[(y - 1) * width + x]) - Int(plane[(y + 1) * width + x]))
      }
    }
    return Double(sum) / Double((height - 2) * width)
  }

  func testTheMatteFollowsWholeFramesAndTheOutputIsProgressive() throws {
    let environment = Launcher.environment(cache: directory.appendingPathComponent("cache"))
    let webm = path("out.webm"), mp4 = path("out.mp4")
    for (output, options) in [(webm, [String]()), (mp4, ["--background", "green"])] {
      let result = try runProgram(Launcher.executable, ["compose", path("interlaced.mp4"), "-o", output, "--model", model,
                                                        "--temporal-smooth", "0", "-q"] + options, environment: environment)
      XCTAssertEqual(result.status, 0, result.stderr)
    }
    let input = try ScaleFixture.videoPackets(path("interlaced.mp4")).count
    XCTAssertEqual(input, 25)
    // One frame per interlaced frame, at its time.
    for output in [webm, mp4] {
      let times = try ScaleFixture.videoPackets(output).map { Int(($0.pts * 1000).rounded()) }.sorted()
      XCTAssertEqual(times, (0..<25).map { $0 * 40 }, output)
    }
    XCTAssertEqual(try fieldOrder(mp4), "progressive")

    // Woven, the bar's alpha combs at about 10 per pixel (measured without the deinterlacer: 10.2);
    // from whole frames only its top and bottom edges count (1.6).
    let alphas = try ScaleFixture.alphaPlanes(webm, in: directory)
    XCTAssertEqual(alphas.count, 25)
    for (k, alpha) in alphas.enumerated() {
      XCTAssertLessThan(comb(alpha), 4, "frame \(k): the matte of whole frames has no combs")
      // The bar's left edge on two neighbouring rows (one from each field) is in the same column.
      let row40 = alpha[(40 * ScaleFixture.width)..<(41 * ScaleFixture.width)].firstIndex { $0 > 127 }.map { $0 - 40 * ScaleFixture.width }
      let row41 = alpha[(41 * ScaleFixture.width)..<(42 * ScaleFixture.width)].firstIndex { $0 > 127 }.map { $0 - 41 * ScaleFixture.width }
      XCTAssertNotNil(row40, "frame \(k): the bar is there")
      XCTAssertEqual(row40, row41, "frame \(k): both fields put the bar's edge in one column")
    }
  }
}
