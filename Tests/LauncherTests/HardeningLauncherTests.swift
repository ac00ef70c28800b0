// Faults found by hostile testing (issue 12) in the launcher: signals at any moment, one exit
// status for bad model files, and errors that name the user's output path.
import Foundation
import XCTest

final class HardeningLauncherTests: XCTestCase {
  nonisolated(unsafe) static var shared: URL!
  var directory: URL!
  var cache: URL!
  var shortClip: String { Self.shared.appendingPathComponent("short.webm").path }
  var longClip: String { Self.shared.appendingPathComponent("long.webm").path }

  override class func setUp() {
    super.setUp()
    shared = try! Launcher.temporaryDirectory()
    try! ComposeTests.makeClip(shared.appendingPathComponent("short.webm").path, frames: 10, width: 160, height: 96, fps: 10)
    try! ComposeTests.makeClip(shared.appendingPathComponent("long.webm").path, frames: 300, width: 160, height: 96, fps: 10)
  }

  override class func tearDown() {
    try? FileManager.default.removeItem(at: shared)
    super.tearDown()
  }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    cache = directory.appendingPathComponent("cache")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  func leftovers() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0 != "cache" && !$0.hasPrefix("model") }.sorted()
  }

  /// Starts `backdrop compose` on the 300-frame clip, sends `signals` (after `delay` seconds, or
  /// once `afterFrames` frames are reported), and waits for it to end.
  func compose(output: String, model: [String] = [], signals: [Int32], delay: TimeInterval? = nil,
               afterFrames: Int? = nil) throws -> (status: Int32, signalled: Bool, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Launcher.executable)
    process.arguments = ["compose", longClip, "-o", output, "--json", "--batch-size", "1"] + model
    process.environment = Launcher.environment(cache: cache)
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    nonisolated(unsafe) var stderrData = Data()
    let errReader = Thread { stderrData = err.fileHandleForReading.readDataToEndOfFile() }
    try process.run()
    errReader.start()
    var text = ""
    if let delay {
      // From the moment the program catches SIGINT (it does so first thing in main): before that
      // the process is still being loaded and the default action (death by SIGINT) is all there is.
      let deadline = Date().addingTimeInterval(30)
      while Date() < deadline && !catchesSIGINT(process.processIdentifier) { usleep(1000) }
      usleep(useconds_t(delay * 1_000_000))
    }
    if let afterFrames {
      let deadline = Date().addingTimeInterval(120)
      while Date() < deadline {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        text += String(decoding: chunk, as: UTF8.self)
        if let last = text.split(separator: "\n").last(where: { $0.contains("\"progress\"") }),
          let event = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
          let frames = event["frames"] as? Int, frames >= afterFrames
        { break }
      }
    }
    for signal in signals {
      kill(process.processIdentifier, signal)
      usleep(5_000)
    }
    text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    while !errReader.isFinished { usleep(1000) }
    return (process.terminationStatus, process.terminationReason == .uncaughtSignal, text,
            String(decoding: stderrData, as: UTF8.self))
  }

  /// Whether a process has a handler for SIGINT (bit 2 of SigCgt in /proc/PID/status).
  func catchesSIGINT(_ pid: Int32) -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
      let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    else { return false }
    return mask & (1 << (UInt64(SIGINT) - 1)) != 0
  }

  // MARK: - Fault 1: Ctrl-C during start-up

  /// A press 0.3-1.0 s after the start (while GStreamer starts and the selfie model loads) was
  /// lost: the whole clip was processed, exit 0. Now every press ends the run with 130: a playable
  /// file with what was processed, or, before the first frame, nothing at all.
  func testCtrlCAtAnyMomentOfStartUp() throws {
    for delay in [0, 0.05, 0.3, 0.6, 1.0, 1.5] {
      let output = path("startup.webm")
      let run = try compose(output: output, signals: [SIGINT], delay: delay)
      XCTAssertFalse(run.signalled, "\(delay) s: killed by the signal instead of handling it")
      XCTAssertEqual(run.status, 130, "\(delay) s: \(run.stderr)")
      let left = try leftovers()
      if left.isEmpty {
        XCTAssertTrue(run.stderr.contains("nothing written"), "\(delay) s: \(run.stderr)")
      } else {
        XCTAssertEqual(left, ["startup.webm"], "\(delay) s: the finished file, no temporary")
        let file = try ffprobe(output)
        let frames = file.video?.frames ?? 0
        XCTAssertGreaterThan(frames, 0, "\(delay) s: a playable file")
        XCTAssertLessThan(frames, 300, "\(delay) s: stopped early")
        try FileManager.default.removeItem(atPath: output)
      }
    }
  }

  // MARK: - Fault 7: SIGTERM and SIGHUP

  /// SIGTERM left `.x.webm.partial-PID.webm` behind. Now it is removed and the exit is 143
  /// (SIGHUP: 129), at start-up and while frames flow.
  func testSIGTERMAndSIGHUPRemoveTheTemporaryFile() throws {
    for (signal, status, afterFrames, delay) in [
      (SIGTERM, Int32(143), Int?(5), TimeInterval?(nil)), (SIGHUP, Int32(129), 5, nil), (SIGTERM, Int32(143), nil, 0.8),
    ] {
      let run = try compose(output: path("term.webm"), model: ["--model", Launcher.designedModel("lumakey")],
                            signals: [signal], delay: delay, afterFrames: afterFrames)
      XCTAssertFalse(run.signalled, "signal \(signal): killed without cleaning up")
      XCTAssertEqual(run.status, status, "signal \(signal): \(run.stderr)")
      XCTAssertEqual(try leftovers(), [], "signal \(signal): nothing may be left")
      if afterFrames != nil {
        XCTAssertTrue(run.stderr.contains("the unfinished output was removed"), run.stderr)
      }
    }
  }

  // MARK: - Fault 6: an output that cannot be created

  /// `-o /proc/x.webm` exited 70 and named the hidden temporary file. Now 73, naming the path given.
  func testOutputThatCannotBeCreatedNamesTheUsersPath() throws {
    let result = try runProgram(Launcher.executable, ["compose", shortClip, "-o", "/proc/x.webm", "--model", Launcher.designedModel("lumakey")],
                                environment: Launcher.environment(cache: cache))
    XCTAssertEqual(result.status, 73, result.stderr)
    XCTAssertTrue(result.stderr.contains("/proc/x.webm"), result.stderr)
    XCTAssertFalse(result.stderr.contains("partial"), "the temporary file must not be named: \(result.stderr)")
  }

  // MARK: - Fault 5: one exit status for bad model files

  /// Every model file the engine cannot use exits 65 with the engine's cause (a directory gave 66
  /// "not found", an oversized header 65 without the cause, a truncated or corrupt safetensors
  /// file 70). A missing file stays 66.
  func testBadModelFilesExit65WithTheEnginesCause() throws {
    func write(_ name: String, _ bytes: [UInt8]) -> String {
      let file = path(name)
      FileManager.default.createFile(atPath: file, contents: Data(bytes))
      return file
    }
    func safetensors(_ header: String, declaredLength: UInt64? = nil, data: Int = 0) -> [UInt8] {
      let json = Array(header.utf8)
      let length = declaredLength ?? UInt64(json.count)
      return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + json + [UInt8](repeating: 0, count: data)
    }
    let directoryModel = path("model-folder")
    try FileManager.default.createDirectory(atPath: directoryModel, withIntermediateDirectories: false)
    let lumakey = try Data(contentsOf: URL(fileURLWithPath: Launcher.designedModel("lumakey")))
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 7, count: 200)
    let valid = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
    let cases: [(String, String)] = [
      (directoryModel, "is a directory"),
      (write("model-huge-header.safetensors", safetensors("{}", declaredLength: 1 << 40)), "exceeds the 100 MB limit"),
      (write("model-truncated.safetensors", Array(safetensors(valid, data: 16).dropLast(10))), "lies past the data area"),
      (write("model-corrupt.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[4],"#)), "not valid JSON"),
      (write("model-random.pt", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }), "neither a TorchScript archive nor a .safetensors file"),
      (write("model-picture.png", png), "neither a TorchScript archive nor a .safetensors file"),
      (write("model-truncated.pt", Array(lumakey.prefix(lumakey.count / 2))), "is not a valid TorchScript model"),
      (Launcher.designedModel("wrong_output"), "logits [B,1,H,W]"),
      (Launcher.designedModel("half_size"), "at the input's size"),
      // The element's advice in the launcher's options.
      (Launcher.designedModel("wrong_input"), "If it was exported (traced) for one input shape, match it: --size (now 512x512) and --batch-size (now 1)"),
      // Found by fuzz/model_open: zip metadata that makes libtorch allocate ~30 GB (std::bad_alloc).
      (Launcher.packageRoot.appendingPathComponent("fuzz/known/model_open/huge-zip-record.pt").path, "is not a valid TorchScript model"),
    ]
    for (model, cause) in cases {
      let result = try runProgram(Launcher.executable, ["compose", shortClip, "-o", path("o.webm"), "--model", model],
                                  environment: Launcher.environment(cache: cache))
      XCTAssertEqual(result.status, 65, "\(model): \(result.stderr)")
      XCTAssertTrue(result.stderr.contains("bad model file \(model)"), "\(model): \(result.stderr)")
      XCTAssertTrue(result.stderr.contains(cause), "\(model): expected “\(cause)” in \(result.stderr)")
      XCTAssertEqual(try leftovers(), [], "\(model): nothing half-written")
    }
    let missing = try runProgram(Launcher.executable, ["compose", shortClip, "-o", path("o.webm"), "--model", path("gone.pt")],
                                 environment: Launcher.environment(cache: cache))
    XCTAssertEqual(missing.status, 66, missing.stderr)
  }

  /// `compose INPUT -o OUTPUT` (the luma-key model) for each output: refused (64) with `message`.
  func assertRefused(_ input: String, _ outputs: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
    for output in outputs {
      let result = try runProgram(Launcher.executable, ["compose", input, "-o", path(output), "--model", Launcher.designedModel("lumakey")],
                                  environment: Launcher.environment(cache: cache), timeout: 120)
      XCTAssertEqual(result.status, 64, "\(output): \(result.stderr)", file: file, line: line)
      XCTAssertTrue(result.stderr.contains(message), "\(output): \(result.stderr)", file: file, line: line)
    }
  }

  /// `compose INPUT -o OUTPUT` (the luma-key model) succeeds.
  func assertComposed(_ input: String, _ output: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let result = try runProgram(Launcher.executable, ["compose", input, "-o", path(output), "--model", Launcher.designedModel("lumakey"), "-q"],
                                environment: Launcher.environment(cache: cache), timeout: 120)
    XCTAssertEqual(result.status, 0, "\(output): \(result.stderr)", file: file, line: line)
  }

  /// A picture smaller than 16 pixels on a side: mp4mux and qtmux refuse it, which left the
  /// decoder's video pad unlinked and compose waiting for ever (gst_parse only warns that a
  /// delayed link failed). MP4 and QuickTime are refused up front, by name; WebM takes it.
  func testTinyPicturesAreRefusedForMP4AndQuickTimeAndWrittenAsWebM() throws {
    let tiny = path("tiny.mp4")
    let made = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg", [
      "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=16x8:rate=10:d=0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p", tiny,
    ])
    XCTAssertEqual(made.status, 0, made.stderr)
    try assertRefused(tiny, ["o.mp4", "o.mov"], "tiny.mp4 is 16x8: MP4 and QuickTime hold pictures of at least 16x16; write .webm")
    try assertComposed(tiny, "o.webm")
    XCTAssertEqual(try ScaleFixture.videoPackets(path("o.webm")).count, 5)
    XCTAssertEqual(try leftovers(), ["o.webm", "tiny.mp4"])
  }

  /// Audio of more than 8 channels (a multitrack recorder's WAV in MKV): Opus and AAC take at most
  /// 8 and audioconvert cannot mix unpositioned channels down, so WebM and MP4 stopped with the
  /// demuxer's "Internal data stream error". They are refused by name; QuickTime keeps all.
  func testAudioOfMoreThanEightChannelsIsRefusedForWebMAndMP4AndKeptInQuickTime() throws {
    let clip = path("ten.mkv")
    let channels = Array(repeating: "sin(440*2*PI*t)", count: 10).joined(separator: "|")
    let made = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg", [
      "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x96:rate=10:d=1", "-f", "lavfi", "-i", "aevalsrc=\(channels):d=1",
      "-c:v", "libx264", "-c:a", "pcm_s16le", "-shortest", clip,
    ])
    XCTAssertEqual(made.status, 0, made.stderr)
    try assertRefused(clip, ["o.webm", "o.mp4"], "ten.mkv's audio has 10 channels: Opus (WebM) and AAC (MP4) here take at most 8; write .mov")
    try assertComposed(clip, "o.mov")
    let probe = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe",
                               ["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=channels", "-of", "csv=p=0", path("o.mov")])
    XCTAssertEqual(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "10")
    XCTAssertEqual(try leftovers(), ["o.mov", "ten.mkv"])
  }
}
