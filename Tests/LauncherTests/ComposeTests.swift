// backdrop compose on a generated clip with audio: SMPTE colour bars (160×96, 20 frames at 10 fps)
// and a tone. With the luma-key model the white bar (left) is the subject and the blue bar (right)
// the background, so every output's pixels can be predicted.
import Foundation
import XCTest

final class ComposeTests: XCTestCase {
  static let width = 160, height = 96, frames = 20, fps = 10
  static let subject = (x: 10, y: 30)      // white bar
  static let background = (x: 150, y: 30)  // blue bar
  nonisolated(unsafe) static var shared: URL!

  var directory: URL!
  var cache: URL!
  var clip: String { Self.shared.appendingPathComponent("bars.webm").path }
  var model: String { Launcher.designedModel("lumakey") }

  override class func setUp() {
    super.setUp()
    shared = try! Launcher.temporaryDirectory()
    try! makeClip(shared.appendingPathComponent("bars.webm").path, frames: frames, width: width, height: height, fps: fps)
  }

  override class func tearDown() {
    try? FileManager.default.removeItem(at: shared)
    super.tearDown()
  }

  /// Colour bars and a sine tone (Vorbis), VP8 in WebM.
  static func makeClip(_ path: String, frames: Int, width: Int, height: Int, fps: Int, pattern: String = "smpte") throws {
    try gstLaunch([
      "videotestsrc", "num-buffers=\(frames)", "pattern=\(pattern)", "!",
      "video/x-raw,width=\(width),height=\(height),framerate=\(fps)/1", "!", "videoconvert", "!",
      "vp8enc", "deadline=1", "min-quantizer=0", "max-quantizer=4", "!", "webmmux", "name=m", "!",
      "filesink", "location=\(path)",
      "audiotestsrc", "num-buffers=\(frames)", "samplesperbuffer=\(48000 / fps)", "!",
      "audio/x-raw,rate=48000,channels=1", "!", "audioconvert", "!", "vorbisenc", "!", "m.",
    ])
  }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    cache = directory.appendingPathComponent("cache")
    XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Launcher.executable), "built backdrop at \(Launcher.executable)")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func backdrop(_ arguments: [String], extra: [String: String] = [:]) throws -> RunResult {
    try runProgram(Launcher.executable, arguments, environment: Launcher.environment(cache: cache, extra: extra))
  }

  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  /// Files in the output folder other than the cache: nothing half-written may be left.
  func leftovers() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0 != "cache" }.sorted()
  }

  func pixel(_ frame: [UInt8], _ point: (x: Int, y: Int), channels: Int) -> [Int] {
    let i = (point.y * Self.width + point.x) * channels
    return (0..<channels).map { Int(frame[i + $0]) }
  }

  func assertStreams(_ file: ProbedFile, video: String, audio: String, alpha: Bool,
                     frames: Int = ComposeTests.frames, line: UInt = #line) {
    XCTAssertEqual(file.streams.map(\.kind).sorted(), ["audio", "video"], "stream kinds", line: line)
    XCTAssertEqual(file.video?.codec, video, line: line)
    XCTAssertEqual(file.audio?.codec, audio, line: line)
    XCTAssertEqual(file.video?.frames, frames, "frame count", line: line)
    XCTAssertEqual(file.video?.width, Self.width, line: line)
    XCTAssertEqual(file.video?.height, Self.height, line: line)
    XCTAssertEqual(file.duration, Double(frames) / Double(Self.fps), accuracy: 1.0 / Double(Self.fps), "duration within one frame", line: line)
    if alpha { XCTAssertEqual(file.video?.alphaMode, "1", "WebM track says it has alpha", line: line) }
  }

  // MARK: - Outputs

  func testTransparentWebMWithJSONProgress() throws {
    let output = path("out.webm")
    let result = try backdrop(["compose", clip, "-o", output, "--model", model, "--json"])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertEqual(try leftovers(), ["out.webm"])
    assertStreams(try ffprobe(output), video: "vp9", audio: "opus", alpha: true)

    let decoded = try decodeFrames(output, format: "RGBA", width: Self.width, height: Self.height)
    XCTAssertEqual(decoded.count, Self.frames)
    for frame in [decoded.first!, decoded.last!] {
      XCTAssertGreaterThanOrEqual(pixel(frame, Self.subject, channels: 4)[3], 250, "white bar opaque")
      XCTAssertLessThanOrEqual(pixel(frame, Self.background, channels: 4)[3], 5, "blue bar transparent")
    }

    let events = jsonEvents(result.stdout)
    XCTAssertEqual(events.first?["event"] as? String, "start")
    XCTAssertEqual(events.first?["total_frames"] as? Int, Self.frames)
    XCTAssertEqual(events.first?["output"] as? String, output)
    let done = try XCTUnwrap(events.last)
    XCTAssertEqual(done["event"] as? String, "done")
    XCTAssertEqual(done["frames"] as? Int, Self.frames)
    XCTAssertEqual(done["interrupted"] as? Bool, false)
    let outputs = try XCTUnwrap(done["outputs"] as? [[String: Any]])
    XCTAssertEqual(outputs.first?["path"] as? String, output)
    XCTAssertEqual((outputs.first?["bytes"] as? NSNumber)?.int64Value,
                   (try FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.int64Value)
    let progress = events.filter { $0["event"] as? String == "progress" }
    XCTAssertFalse(progress.isEmpty, "progress events (4 a second)")
    var lastFrames = 0
    for event in progress {
      let frames = try XCTUnwrap(event["frames"] as? Int)
      XCTAssertGreaterThanOrEqual(frames, lastFrames, "frames never go back")
      XCTAssertLessThanOrEqual(frames, Self.frames)
      lastFrames = frames
      let percent = try XCTUnwrap(event["percent"] as? Double)
      XCTAssertEqual(percent, Double(frames) * 100 / Double(Self.frames), accuracy: 0.01, "percent follows the frames out")
      XCTAssertNotNil(event["fps"] as? Double)
    }
  }

  func testMP4CompositeOnAColour() throws {
    let output = path("red.mp4")
    let result = try backdrop(["compose", clip, "-o", output, "--model", model, "--background", "color:#FF0000", "-q"])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertEqual(result.stdout, "", "--quiet prints nothing")
    XCTAssertFalse(result.stderr.contains("frames in"), "--quiet: no summary")
    assertStreams(try ffprobe(output), video: "h264", audio: "aac", alpha: false)
    let decoded = try decodeFrames(output, format: "RGB", width: Self.width, height: Self.height)
    XCTAssertEqual(decoded.count, Self.frames)
    for frame in [decoded[0], decoded[Self.frames - 1]] {
      let red = pixel(frame, Self.background, channels: 3)
      XCTAssertGreaterThan(red[0], 200); XCTAssertLessThan(red[1], 50); XCTAssertLessThan(red[2], 50)
      XCTAssertTrue(pixel(frame, Self.subject, channels: 3).allSatisfy { $0 > 200 }, "white bar kept")
    }
  }

  func testSummaryLineWhenNotATerminal() throws {
    let result = try backdrop(["compose", clip, "-o", path("green.webm"), "--model", model, "--background", "green"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let summary = try XCTUnwrap(result.stderr.split(separator: "\n").last.map(String.init))
    let pattern = try NSRegularExpression(pattern: #"^20 frames in [0-9.]+ s \([0-9.]+ fps\) → .*green\.webm \([0-9.]+ kB\)$"#)
    XCTAssertNotNil(pattern.firstMatch(in: summary, range: NSRange(summary.startIndex..., in: summary)), summary)
    XCTAssertFalse(result.stderr.contains("\r"), "no progress line when stderr is not a terminal")
    assertStreams(try ffprobe(path("green.webm")), video: "vp9", audio: "opus", alpha: false)
  }

  func testVideoWithoutAudio() throws {
    let silent = path("silent.webm")
    try gstLaunch(["videotestsrc", "num-buffers=8", "pattern=smpte", "!", "video/x-raw,width=160,height=96,framerate=10/1", "!",
                   "vp8enc", "deadline=1", "!", "webmmux", "!", "filesink", "location=\(silent)"])
    let result = try backdrop(["compose", silent, "-o", path("silent.mp4"), "--model", model, "-q"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let file = try ffprobe(path("silent.mp4"))
    XCTAssertEqual(file.streams.map(\.kind), ["video"], "no audio track invented")
    XCTAssertEqual(file.video?.frames, 8)
  }

  /// VP9 keeps an odd size; H.264 (4:2:0) gets the last column and row cropped.
  func testOddSizedInput() throws {
    let odd = path("odd.webm")
    try gstLaunch(["videotestsrc", "num-buffers=5", "pattern=smpte", "!", "video/x-raw,width=161,height=97,framerate=10/1", "!",
                   "vp8enc", "deadline=1", "!", "webmmux", "!", "filesink", "location=\(odd)"])
    let webm = try backdrop(["compose", odd, "-o", path("odd-out.webm"), "--model", model, "-q"])
    XCTAssertEqual(webm.status, 0, webm.stderr)
    XCTAssertEqual(try ffprobe(path("odd-out.webm")).video.map { [$0.width, $0.height, $0.frames] }, [161, 97, 5])
    let mp4 = try backdrop(["compose", odd, "-o", path("odd-out.mp4"), "--model", model, "-q", "--preview", path("odd-prev.mp4")])
    XCTAssertEqual(mp4.status, 0, mp4.stderr)
    XCTAssertEqual(try ffprobe(path("odd-out.mp4")).video.map { [$0.width, $0.height, $0.frames] }, [160, 96, 5])
    XCTAssertEqual(try ffprobe(path("odd-prev.mp4")).video.map { [$0.width, $0.height, $0.frames] }, [160, 96, 5])
  }

  func testErrorsAreJSONEventsToo() throws {
    let result = try backdrop(["compose", path("nope.webm"), "-o", path("o.webm"), "--model", model, "--json"])
    XCTAssertEqual(result.status, 66)
    let event = try XCTUnwrap(jsonEvents(result.stdout).last)
    XCTAssertEqual(event["event"] as? String, "error")
    XCTAssertEqual(event["status"] as? Int, 66)
    XCTAssertEqual(event["message"] as? String, "input not found: \(path("nope.webm"))")
    let broken = try backdrop(["compose", clip, "-o", path("o.webm"), "--model", Launcher.designedModel("wrong_output"), "--json"])
    XCTAssertEqual(broken.status, 65, "a model that breaks the contract is a bad model file")
    let events = jsonEvents(broken.stdout)
    XCTAssertEqual(events.filter { $0["event"] as? String == "error" }.count, 1, "one error event")
    XCTAssertEqual(events.last?["event"] as? String, "error")
  }

  func testMatteOnly() throws {
    let output = path("matte.webm")
    let result = try backdrop(["compose", clip, "-o", output, "--model", model, "--matte-only"])
    XCTAssertEqual(result.status, 0, result.stderr)
    assertStreams(try ffprobe(output), video: "vp9", audio: "opus", alpha: false)
    let decoded = try decodeFrames(output, format: "GRAY8", width: Self.width, height: Self.height)
    XCTAssertEqual(decoded.count, Self.frames)
    XCTAssertGreaterThan(pixel(decoded[0], Self.subject, channels: 1)[0], 215)
    XCTAssertLessThan(pixel(decoded[0], Self.background, channels: 1)[0], 40)
  }

  func testPreviewInTheSamePass() throws {
    let output = path("t.webm"), preview = path("p.mp4")
    let result = try backdrop(["compose", clip, "-o", output, "--preview", preview, "--model", model, "--json"])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertEqual(try leftovers(), ["p.mp4", "t.webm"])
    assertStreams(try ffprobe(output), video: "vp9", audio: "opus", alpha: true)
    assertStreams(try ffprobe(preview), video: "h264", audio: "aac", alpha: false)
    // One pass: the model ran once per frame for both files.
    XCTAssertEqual(jsonEvents(result.stdout).last?["frames"] as? Int, Self.frames)
    // The preview shows the transparent part over compositor's grey checkerboard.
    let frame = try decodeFrames(preview, format: "RGB", width: Self.width, height: Self.height)[0]
    let checker = pixel(frame, Self.background, channels: 3)
    XCTAssertTrue(checker.allSatisfy { $0 > 80 && $0 < 220 }, "grey checkerboard under the background: \(checker)")
    XCTAssertTrue(pixel(frame, Self.subject, channels: 3).allSatisfy { $0 > 200 }, "subject over it")
  }

  func testPrintedPipelineRunsInGstLaunchAndGivesTheSameFrames() throws {
    let options = ["--model", model, "--background", "blur:4", "--batch-size", "2"]
    let direct = path("direct.webm"), pasted = path("pasted.webm")
    XCTAssertEqual(try backdrop(["compose", clip, "-o", direct] + options).status, 0)
    let printed = try backdrop(["compose", clip, "-o", pasted, "--print-pipeline"] + options)
    XCTAssertEqual(printed.status, 0, printed.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: pasted), "--print-pipeline runs nothing")
    let line = printed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertTrue(line.hasPrefix("GST_PLUGIN_PATH="), line)
    XCTAssertTrue(line.contains(" gst-launch-1.0 -e filesrc "), line)
    XCTAssertTrue(line.contains("birefnetmatte"), line)
    // Pasted into a shell, in a clean environment.
    let shell = try runProgram("/bin/sh", ["-c", line], environment: Launcher.environment(cache: cache))
    XCTAssertEqual(shell.status, 0, shell.stderr)
    assertStreams(try ffprobe(pasted), video: "vp9", audio: "opus", alpha: false)
    let a = try decodeFrames(direct, format: "RGB", width: Self.width, height: Self.height)
    let b = try decodeFrames(pasted, format: "RGB", width: Self.width, height: Self.height)
    XCTAssertEqual(a.count, Self.frames)
    XCTAssertEqual(b.count, a.count)
    for (x, y) in zip(a, b) {
      let difference = zip(x, y).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
      XCTAssertLessThan(Double(difference) / Double(x.count), 1.0, "same frames (mean abs difference)")
    }
  }

  /// On a terminal (a pty from script(1)) stderr shows a line refreshed in place with percent,
  /// frames, fps and ETA, at least twice a second, then the summary.
  func testTemporalOptionsReachTheElement() throws {
    let plain = try backdrop(["compose", clip, "-o", path("a.webm"), "--model", model, "--print-pipeline"])
    XCTAssertEqual(plain.status, 0, plain.stderr)
    XCTAssertTrue(plain.stdout.contains(" temporal-smooth=0.8 "), "a TorchScript model's default: \(plain.stdout)")
    XCTAssertFalse(plain.stdout.contains("infer-interval"), plain.stdout)
    XCTAssertFalse(plain.stdout.contains("temporal-lookahead"), plain.stdout)
    let options = ["--temporal-smooth", "0.5", "--infer-interval", "3", "--skip-similar", "35", "--scene-cut-threshold", "0.2",
                   "--temporal-lookahead"]
    let set = try backdrop(["compose", clip, "-o", path("b.webm"), "--model", model, "--print-pipeline"] + options)
    XCTAssertEqual(set.status, 0, set.stderr)
    XCTAssertTrue(set.stdout.contains(" temporal-smooth=0.5 infer-interval=3 skip-similar=35.0 scene-cut-threshold=0.2 temporal-lookahead=true "), set.stdout)
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--temporal-smooth", "1"], status: 64, message: "--temporal-smooth 1.0")
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--infer-interval", "0"], status: 64, message: "--infer-interval 0")
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--skip-similar", "101"], status: 64, message: "--skip-similar 101.0")
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--scene-cut-threshold", "2"], status: 64, message: "--scene-cut-threshold 2.0")
  }

  func testProgressLineOnATerminal() throws {
    let script = try XCTUnwrap(which("script"), "script(1) from util-linux")
    let long = path("long.webm")
    try Self.makeClip(long, frames: 300, width: 160, height: 96, fps: 10)
    let command = [Launcher.executable, "compose", long, "-o", path("tty.webm"), "--model", model, "--batch-size", "1"]
      .map { "'\($0)'" }.joined(separator: " ")
    let result = try runProgram(script, ["-q", "-e", "-c", command, "/dev/null"], environment: Launcher.environment(cache: cache))
    XCTAssertEqual(result.status, 0, result.stdout)
    let pattern = try NSRegularExpression(pattern: #"^ *([0-9.]+)%  frame (\d+)/300  ([0-9.]+) fps  ETA (\d+:\d\d|--:--)\x{1B}\[K$"#)
    let refreshes = result.stdout.components(separatedBy: "\r").compactMap { piece -> (Double, Int)? in
      guard let match = pattern.firstMatch(in: piece, range: NSRange(piece.startIndex..., in: piece)),
        let percent = Range(match.range(at: 1), in: piece).flatMap({ Double(piece[$0]) }),
        let frames = Range(match.range(at: 2), in: piece).flatMap({ Int(piece[$0]) })
      else { return nil }
      return (percent, frames)
    }
    // Long enough (300 frames) that even a fast machine shows several refreshes.
    XCTAssertGreaterThanOrEqual(refreshes.count, 3, result.stdout)
    XCTAssertTrue(refreshes.contains { $0.1 > 0 && $0.1 < 300 }, "a line while it runs")
    for (percent, frames) in refreshes { XCTAssertEqual(percent, Double(frames) * 100 / 300, accuracy: 0.051) }
    let summary = try XCTUnwrap(result.stdout.components(separatedBy: "\n").first { $0.contains("300 frames in") }, result.stdout)
    let seconds = try XCTUnwrap(Double(summary.components(separatedBy: "frames in ")[1].components(separatedBy: " s")[0]))
    XCTAssertGreaterThanOrEqual(Double(refreshes.count) / seconds, 2, "at least two refreshes a second")

    let quiet = try runProgram(script, ["-q", "-e", "-c", command + " -q", "/dev/null"], environment: Launcher.environment(cache: cache))
    XCTAssertEqual(quiet.status, 0)
    XCTAssertEqual(quiet.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "", "--quiet: silent on a terminal too")
  }

  /// Edge refinement, foreground colour and cascade options reach birefnetmatte (issue 9); the
  /// element's defaults (guided, estimate on, cascade off) are not repeated; bad values are usage
  /// errors that name the option.
  func testSpatialRefinementOptionsMapToElementProperties() throws {
    func pipeline(_ options: [String]) throws -> String {
      let result = try backdrop(["compose", clip, "-o", path("spatial.webm"), "--model", model, "--print-pipeline"] + options)
      XCTAssertEqual(result.status, 0, result.stderr)
      return result.stdout
    }
    let defaults = try pipeline([])
    for absent in ["edge-refine=", "foreground-estimate=", "cascade="] { XCTAssertFalse(defaults.contains(absent), defaults) }
    let chosen = try pipeline(["--edge-refine", "none", "--no-foreground-estimate", "--cascade", "auto", "--cascade-size", "256"])
    for present in ["edge-refine=none", "foreground-estimate=false", "cascade=auto", "cascade-size=256"] {
      XCTAssertTrue(chosen.contains(present), "\(present) in \(chosen)")
    }
    for (options, message) in [(["--edge-refine", "sharp"], "--edge-refine sharp"), (["--cascade", "on"], "--cascade on"),
                               (["--cascade-size", "10"], "--cascade-size 10")] {
      let bad = try backdrop(["compose", clip, "-o", path("bad.webm"), "--model", model] + options)
      XCTAssertEqual(bad.status, 64, bad.stderr)
      XCTAssertTrue(bad.stderr.contains(message), bad.stderr)
    }
  }

  /// The offline default model, where scripts/setup-models.sh has made it.
  func testDefaultModelIsSelfie() throws {
    let selfie = Launcher.packageRoot.appendingPathComponent("models/selfie/selfie.pt").path
    try XCTSkipUnless(FileManager.default.fileExists(atPath: selfie), "models/selfie/selfie.pt not made yet (scripts/setup-models.sh)")
    let result = try backdrop(["compose", clip, "-o", path("selfie.webm"), "--json"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let pipeline = try XCTUnwrap(jsonEvents(result.stdout).first?["pipeline"] as? String)
    XCTAssertTrue(pipeline.contains("model-file=\"\(selfie)\" inference-width=256 inference-height=256"), pipeline)
    assertStreams(try ffprobe(path("selfie.webm")), video: "vp9", audio: "opus", alpha: true)
  }

  // MARK: - Ctrl-C

  /// Starts a compose of a 30 s clip, waits for `framesBefore` frames, sends SIGINT `count` times.
  func interrupt(count: Int, output: String) throws -> (status: Int32, stdout: String) {
    let long = path("long.webm")
    try Self.makeClip(long, frames: 300, width: 160, height: 96, fps: 10)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Launcher.executable)
    process.arguments = ["compose", long, "-o", output, "--model", model, "--json", "--batch-size", "1"]
    process.environment = Launcher.environment(cache: cache)
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    var text = ""
    let deadline = Date().addingTimeInterval(120)
    // Wait for progress past 10 frames.
    while Date() < deadline {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
      if let last = text.split(separator: "\n").last(where: { $0.contains("\"progress\"") }),
        let event = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
        let frames = event["frames"] as? Int, frames >= 10
      { break }
    }
    for _ in 0..<count {
      kill(process.processIdentifier, SIGINT)
      usleep(5_000)  // the handler counts each press; the second lands while the first is finishing
    }
    text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    try FileManager.default.removeItem(atPath: long)
    return (process.terminationStatus, text)
  }

  func testCtrlCFinishesAPlayableFile() throws {
    let output = path("cut.webm")
    let (status, stdout) = try interrupt(count: 1, output: output)
    XCTAssertEqual(status, 130, "interrupted")
    XCTAssertEqual(try leftovers(), ["cut.webm"], "the finished file, no temporary")
    let done = try XCTUnwrap(jsonEvents(stdout).last)
    XCTAssertEqual(done["event"] as? String, "done")
    XCTAssertEqual(done["interrupted"] as? Bool, true)
    let frames = try XCTUnwrap(done["frames"] as? Int)
    XCTAssertGreaterThanOrEqual(frames, 10)
    XCTAssertLessThan(frames, 300, "stopped early")
    let file = try ffprobe(output)
    XCTAssertEqual(file.video?.frames, frames, "every processed frame is in the file")
    XCTAssertEqual(file.video?.alphaMode, "1")
    XCTAssertEqual(file.duration, Double(frames) / 10, accuracy: 0.1, "audio cut where the video ends")
    XCTAssertEqual(try decodeFrames(output, format: "RGBA", width: 160, height: 96).count, frames, "decodes to the end")
  }

  func testSecondCtrlCAbortsAndRemovesTheFile() throws {
    let (status, _) = try interrupt(count: 2, output: path("aborted.webm"))
    XCTAssertEqual(status, 130)
    XCTAssertEqual(try leftovers(), [], "nothing written")
  }

  // MARK: - Bad input: a message, an exit status, nothing written

  func assertFails(_ arguments: [String], status: Int32, message: String, line: UInt = #line) throws {
    let result = try backdrop(["compose"] + arguments)
    XCTAssertEqual(result.status, status, result.stderr, line: line)
    XCTAssertTrue(result.stderr.contains(message), "expected “\(message)” in: \(result.stderr)", line: line)
    XCTAssertEqual(try leftovers().filter { !$0.hasPrefix("input") }, [], "nothing half-written", line: line)
  }

  func testMissingInput() throws {
    try assertFails([path("nope.webm"), "-o", path("o.webm"), "--model", model], status: 66,
                    message: "input not found: \(path("nope.webm"))")
  }

  func testInputIsAFolder() throws {
    try FileManager.default.createDirectory(atPath: path("input-folder"), withIntermediateDirectories: false)
    try assertFails([path("input-folder"), "-o", path("o.webm"), "--model", model], status: 66, message: "input is a folder")
  }

  func testUnreadableInput() throws {
    try XCTSkipIf(getuid() == 0, "running as root: every file is readable")
    _ = FileManager.default.createFile(atPath: path("input-locked.webm"), contents: Data("x".utf8), attributes: [.posixPermissions: 0])
    try assertFails([path("input-locked.webm"), "-o", path("o.webm"), "--model", model], status: 66, message: "input is not readable")
  }

  func testInputWithoutVideo() throws {
    let audio = path("input-tone.ogg")
    try gstLaunch(["audiotestsrc", "num-buffers=10", "!", "audioconvert", "!", "vorbisenc", "!", "oggmux", "!", "filesink", "location=\(audio)"])
    try assertFails([audio, "-o", path("o.webm"), "--model", model], status: 65, message: "has no video stream (only audio)")
  }

  func testInputThatIsNotMedia() throws {
    _ = FileManager.default.createFile(atPath: path("input-notes.webm"), contents: Data("just some text\n".utf8))
    try assertFails([path("input-notes.webm"), "-o", path("o.webm"), "--model", model], status: 65,
                    message: "is not a media file GStreamer can decode")
  }

  func testUnknownOutputExtension() throws {
    try assertFails([clip, "-o", path("o.avi"), "--model", model], status: 64, message: "unknown output extension ('.avi')")
  }

  func testMP4CannotBeTransparent() throws {
    try assertFails([clip, "-o", path("o.mp4"), "--model", model, "--background", "none"], status: 64,
                    message: "MP4 cannot hold transparency")
  }

  func testOutputFolderMissing() throws {
    try assertFails([clip, "-o", path("missing/o.webm"), "--model", model], status: 73,
                    message: "output folder does not exist: \(path("missing"))")
  }

  func testOutputFolderNotWritable() throws {
    // Root may write into any ordinary folder, but not into /proc/sys: use that when running as root.
    var locked = path("locked")
    if getuid() == 0 {
      locked = "/proc/sys"
    } else {
      try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o555])
    }
    defer { if getuid() != 0 { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: locked) } }
    try assertFails([clip, "-o", locked + "/o.webm", "--model", model], status: 73, message: "output folder is not writable: \(locked)")
  }

  func testUnknownModelName() throws {
    try assertFails([clip, "-o", path("o.webm"), "--model", "nosuchmodel"], status: 69,
                    message: "unknown model 'nosuchmodel': known models are selfie")  // then the registry's
  }

  func testModelFileMissing() throws {
    try assertFails([clip, "-o", path("o.webm"), "--model", path("gone.pt")], status: 66,
                    message: "model file not found: \(path("gone.pt"))")
  }

  func testModelFileOfTheWrongKind() throws {
    _ = FileManager.default.createFile(atPath: path("input-model.pt"), contents: Data("not a model".utf8))
    try assertFails([clip, "-o", path("o.webm"), "--model", path("input-model.pt")], status: 65,
                    message: "bad model file \(path("input-model.pt")): model-file \(path("input-model.pt")) is neither a TorchScript archive nor a .safetensors file")
  }

  func testModelThatBreaksTheContract() throws {
    let wrong = Launcher.designedModel("wrong_output")
    try assertFails([clip, "-o", path("o.webm"), "--model", wrong], status: 65,
                    message: "bad model file \(wrong)")
  }

  func testBadOptionValues() throws {
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--background", "purple"], status: 64,
                    message: "expected none, green, color:#RRGGBB, image:PATH or blur[:STRENGTH]")
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--background", "color:#12345"], status: 64,
                    message: "color:#RRGGBB")
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--background", "image:\(path("none.png"))"], status: 66,
                    message: "background image not found")
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--size", "10x10"], status: 64, message: "--size 10x10")
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--threshold", "2"], status: 64, message: "--threshold 2.0")
    try assertFails([clip, "-o", path("o.webm"), "--model", model, "--device", "gpu"], status: 64, message: "--device gpu")
  }
}
