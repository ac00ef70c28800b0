// The files editors and players without alpha import: `backdrop compose` to ProRes 4444 (.mov),
// an RGBA PNG sequence and stacked-alpha H.264, plus pipelines/prores-4444-alpha.sh. Each output
// is decoded with ffmpeg (not GStreamer: another implementation) and its alpha compared with the
// element's own matte of the same clip, written as GRAY8 by gst-launch-1.0. A soft matte on colour
// bars gives many alpha levels, not just 0 and 255.
import Foundation
import XCTest

final class EditorFormatsTests: XCTestCase {
  static let width = 160, height = 96, frames = 6, fps = 10
  var directory: URL!
  var clip: String { directory.appendingPathComponent("bars.webm").path }
  var model: String { Launcher.designedModel("lumakey") }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    try ComposeTests.makeClip(clip, frames: Self.frames, width: Self.width, height: Self.height, fps: Self.fps)
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func backdrop(_ arguments: [String]) throws -> RunResult {
    try runProgram(Launcher.executable, arguments,
                   environment: Launcher.environment(cache: directory.appendingPathComponent("cache")))
  }

  /// A folder holding only a link to the built plugin, for gst-launch-1.0 and the example scripts.
  func pluginEnvironment() throws -> [String: String] {
    let folder = directory.appendingPathComponent("plugin")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try? FileManager.default.removeItem(at: folder.appendingPathComponent("libgstbackdrop.so"))
    try FileManager.default.createSymbolicLink(
      at: folder.appendingPathComponent("libgstbackdrop.so"),
      withDestinationURL: Launcher.buildDirectory.appendingPathComponent("libgstbackdrop.so"))
    return Launcher.environment(cache: directory.appendingPathComponent("cache"), extra: ["GST_PLUGIN_PATH": folder.path])
  }

  /// The element's soft matte of every frame of the clip at 512² (what compose uses for a file).
  func referenceMattes() throws -> [[UInt8]] {
    let raw = directory.appendingPathComponent("reference.gray").path
    let result = try runProgram(which("gst-launch-1.0")!, [
      "-q", "filesrc", "location=\(clip)", "!", "decodebin", "!", "videoconvert", "!", "birefnetmatte",
      "model-file=\(model)", "inference-width=512", "inference-height=512", "matte-mode=soft", "!",
      "video/x-raw,format=GRAY8", "!", "filesink", "location=\(raw)",
    ], environment: try pluginEnvironment())
    XCTAssertEqual(result.status, 0, result.stderr)
    return split(try Data(contentsOf: URL(fileURLWithPath: raw)), frameSize: Self.width * Self.height)
  }

  /// Every frame decoded by ffmpeg as `pixelFormat` (rgba, gray).
  func ffmpegFrames(_ input: [String], pixelFormat: String, frameSize: Int) throws -> [[UInt8]] {
    let raw = directory.appendingPathComponent("ffmpeg-\(UUID().uuidString).raw").path
    let result = try runProgram(which("ffmpeg")!, ["-v", "error"] + input + ["-f", "rawvideo", "-pix_fmt", pixelFormat, raw])
    XCTAssertEqual(result.status, 0, result.stderr)
    return split(try Data(contentsOf: URL(fileURLWithPath: raw)), frameSize: frameSize)
  }

  func split(_ data: Data, frameSize: Int) -> [[UInt8]] {
    let bytes = [UInt8](data)
    return stride(from: 0, to: bytes.count - frameSize + 1, by: frameSize).map { Array(bytes[$0..<$0 + frameSize]) }
  }

  /// Compares each frame's alpha (every `step`-th byte from `offset`) with the reference matte.
  /// `lossy`: H.264's 8-bit studio range and quantisation move a few pixels further (measured: 99.7 %
  /// within 2 levels at --crf 4, none off by more than 5).
  func assertAlphaMatches(_ frames: [[UInt8]], channels: Int, reference: [[UInt8]], tolerance: Int = 2,
                          lossy: Bool = false, line: UInt = #line) {
    XCTAssertEqual(frames.count, reference.count, "frame count", line: line)
    var levels = Set<UInt8>()
    for (frame, matte) in zip(frames, reference) {
      var worst = 0, within = 0
      for pixel in 0..<matte.count {
        let difference = abs(Int(frame[pixel * channels + channels - 1]) - Int(matte[pixel]))
        worst = max(worst, difference)
        if difference <= tolerance { within += 1 }
        levels.insert(matte[pixel])
      }
      if lossy {
        XCTAssertGreaterThanOrEqual(Double(within) / Double(matte.count), 0.99, "alpha within \(tolerance) levels of the element's matte", line: line)
        XCTAssertLessThanOrEqual(worst, 6, "no pixel far from the element's matte", line: line)
      } else {
        XCTAssertLessThanOrEqual(worst, tolerance, "alpha within \(tolerance) levels of the element's matte", line: line)
      }
    }
    XCTAssertGreaterThan(levels.count, 4, "a soft matte with several levels (a real test of the alpha path)", line: line)
    XCTAssertTrue(levels.contains(where: { $0 < 10 }) && levels.contains(where: { $0 > 245 }),
                  "transparent and opaque parts", line: line)
  }

  func probe(_ path: String, _ entries: String) throws -> [String: String] {
    let result = try runProgram(which("ffprobe")!, ["-v", "error", "-show_entries", entries, "-of", "default=nw=1", path])
    var values: [String: String] = [:]
    for line in result.stdout.split(separator: "\n") {
      let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
      if parts.count == 2, values[parts[0]] == nil { values[parts[0]] = parts[1] }
    }
    return values
  }

  func testProResMOVHasTheMatteAsAlpha() throws {
    let output = directory.appendingPathComponent("out.mov").path
    let result = try backdrop(["compose", clip, "-o", output, "--model", model, "--soft", "-q"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let video = try probe(output, "stream=codec_name,profile,pix_fmt,codec_tag_string,width,height")
    XCTAssertEqual(video["codec_name"], "prores")
    XCTAssertEqual(video["profile"], "4444", "ProRes 4444, the profile with alpha")
    XCTAssertEqual(video["codec_tag_string"], "ap4h")
    XCTAssertTrue(video["pix_fmt"]?.hasPrefix("yuva444p") == true, "4:4:4 with alpha: \(video)")
    let audio = try probe(output, "stream=codec_name:stream=codec_type")
    XCTAssertTrue(try runProgram(which("ffprobe")!, ["-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name", "-of", "csv=p=0", output]).stdout
      .contains("pcm_s16le"), "PCM audio, as editors expect: \(audio)")
    let frames = try ffmpegFrames(["-i", output], pixelFormat: "rgba", frameSize: Self.width * Self.height * 4)
    assertAlphaMatches(frames, channels: 4, reference: try referenceMattes())
  }

  func testPNGSequenceIsRGBAWithTheMatte() throws {
    let pattern = directory.appendingPathComponent("frames/%05d.png").path  // the folder is made
    let result = try backdrop(["compose", clip, "-o", pattern, "--model", model, "--soft", "-q"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("frames").path).sorted()
    XCTAssertEqual(files, (0..<Self.frames).map { String(format: "%05d.png", $0) })
    XCTAssertEqual(try probe(directory.appendingPathComponent("frames/00000.png").path, "stream=pix_fmt")["pix_fmt"], "rgba")
    let frames = try ffmpegFrames(["-i", pattern], pixelFormat: "rgba", frameSize: Self.width * Self.height * 4)
    assertAlphaMatches(frames, channels: 4, reference: try referenceMattes(), tolerance: 0)
  }

  func testStackedAlphaMP4HasColourAboveAndMatteBelow() throws {
    let output = directory.appendingPathComponent("stacked.mp4").path
    let result = try backdrop(["compose", clip, "-o", output, "--model", model, "--soft", "--stacked-alpha", "--crf", "4", "-q"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let video = try probe(output, "stream=codec_name,width,height")
    XCTAssertEqual(video["codec_name"], "h264")
    XCTAssertEqual(video["width"], "\(Self.width)")
    XCTAssertEqual(video["height"], "\(Self.height * 2)", "twice as tall: colour, then alpha")
    let size = Self.width * Self.height
    // Decoded to RGB as a player does (studio-range luma back to 0-255): the lower half's grey,
    // one channel of it, is the alpha.
    let frames = try ffmpegFrames(["-i", output], pixelFormat: "rgb24", frameSize: size * 6)
    assertAlphaMatches(frames.map { frame in (size..<size * 2).map { frame[$0 * 3 + 1] } }, channels: 1, reference: try referenceMattes(), lossy: true)
    // The upper half is the picture itself: the white bar stays white, the blue bar blue.
    let rgb = frames[0]
    func pixel(_ x: Int, _ y: Int) -> [Int] { (0..<3).map { Int(rgb[(y * Self.width + x) * 3 + $0]) } }
    XCTAssertTrue(pixel(10, 30).allSatisfy { $0 > 220 }, "white bar on top: \(pixel(10, 30))")
    XCTAssertTrue(pixel(150, 30)[2] > 150 && pixel(150, 30)[0] < 60, "blue bar on top: \(pixel(150, 30))")
  }

  func testStackedAlphaNeedsMP4AndNoBackdrop() throws {
    let mov = try backdrop(["compose", clip, "-o", directory.appendingPathComponent("x.mov").path, "--model", model, "--stacked-alpha"])
    XCTAssertEqual(mov.status, 64)
    XCTAssertTrue(mov.stderr.contains("--stacked-alpha writes H.264: use -o FILE.mp4"), mov.stderr)
    let green = try backdrop(["compose", clip, "-o", directory.appendingPathComponent("x.mp4").path, "--model", model,
                              "--stacked-alpha", "--background", "green"])
    XCTAssertEqual(green.status, 64)
    XCTAssertTrue(green.stderr.contains("leave out --background"), green.stderr)
    let png = try backdrop(["compose", clip, "-o", directory.appendingPathComponent("still.png").path, "--model", model])
    XCTAssertEqual(png.status, 64)
    XCTAssertTrue(png.stderr.contains("frames/%05d.png"), png.stderr)
  }

  func testProResPipelineExample() throws {
    let output = directory.appendingPathComponent("example.mov").path
    let script = Launcher.packageRoot.appendingPathComponent("pipelines/prores-4444-alpha.sh").path
    let result = try runProgram("/bin/sh", [script, clip, model, output], environment: try pluginEnvironment())
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertEqual(try probe(output, "stream=profile")["profile"], "4444")
    // The example keeps the model's binary matte: alpha is 0 or 255 and equals the soft matte
    // thresholded at 0.5.
    let frames = try ffmpegFrames(["-i", output], pixelFormat: "rgba", frameSize: Self.width * Self.height * 4)
    let reference = try referenceMattes().map { $0.map { $0 >= 128 ? UInt8(255) : 0 } }
    XCTAssertEqual(frames.count, Self.frames)
    var mismatches = 0
    for (frame, matte) in zip(frames, reference) {
      for pixel in 0..<matte.count where abs(Int(frame[pixel * 4 + 3]) - Int(matte[pixel])) > 2 { mismatches += 1 }
    }
    // Only pixels whose probability rounds to the threshold itself may differ.
    XCTAssertLessThanOrEqual(mismatches, frames.count * Self.width * Self.height / 200, "binary alpha equals the thresholded matte")
  }
}
