// `compose --segment` and `join` for the editors' formats (issue 13): ProRes 4444 with alpha in
// .mov and H.264 in .mp4, on the scale-out clip (40 frames at 10 fps, keyframes every 10 frames,
// audio) cut into 3 parts (10, 20 and 10 frames: cuts at 1 s and 3 s).
import Foundation
import XCTest

final class JoinFormatsTests: XCTestCase {
  var directory: URL!
  var cache: URL!

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    cache = directory.appendingPathComponent("cache")
    XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Launcher.executable), "built backdrop at \(Launcher.executable)")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  func backdrop(_ arguments: [String]) throws -> RunResult {
    try runProgram(Launcher.executable, arguments, environment: Launcher.environment(cache: cache))
  }

  func compose(_ input: String, _ output: String, _ more: [String]) throws {
    let result = try backdrop(["compose", input, "-o", output, "-q"] + ScaleFixture.modelArguments + more)
    XCTAssertEqual(result.status, 0, "compose \(output) \(more): \(result.stderr)")
    // -q: nothing on stderr (the range's seek once met qtmux on its way and made it complain).
    XCTAssertEqual(result.stderr, "", "compose \(output) \(more)")
  }

  /// Audio stream duration (s) and the title, as ffprobe reads them.
  func audioDuration(_ file: String) throws -> Double? {
    let result = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe", [
      "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=duration", "-of", "csv=p=0", file,
    ])
    return Double(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
  }

  /// The raw frames GStreamer decodes from `file` in `format`, one array per frame.
  func decodedFrames(_ file: String, format: String, frameSize: Int) throws -> [[UInt8]] {
    let raw = path(UUID().uuidString + ".raw")
    defer { try? FileManager.default.removeItem(atPath: raw) }
    try gstLaunch(["filesrc", "location=\(file)", "!", "qtdemux", "!", "decodebin", "!", "videoconvert", "!",
                   "video/x-raw,format=\(format)", "!", "filesink", "location=\(raw)"])
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
    XCTAssertEqual(data.count % frameSize, 0, "\(file): whole frames")
    return stride(from: 0, to: data.count - frameSize + 1, by: frameSize).map { Array(data[$0..<($0 + frameSize)]) }
  }

  /// Each frame's 16-bit alpha plane, decoded from ProRes 4444 as AYUV64 (A, Y, U, V: 16 bits each).
  func alpha16(_ file: String) throws -> [[UInt16]] {
    let (width, height) = (ScaleFixture.width, ScaleFixture.height)
    return try decodedFrames(file, format: "AYUV64", frameSize: width * height * 8).map { frame in
      stride(from: 0, to: frame.count, by: 8).map { UInt16(frame[$0]) | UInt16(frame[$0 + 1]) << 8 }
    }
  }

  /// Frame count, continuous timestamps, a keyframe where each part starts, audio of the clip's length.
  func checkJoined(_ joined: String, codec: String, audioCodec: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let probed = try ffprobe(joined)
    XCTAssertEqual(probed.video?.frames, 40, "the input's frame count", file: file, line: line)
    XCTAssertEqual(probed.video?.codec, codec, file: file, line: line)
    XCTAssertEqual(probed.audio?.codec, audioCodec, "audio kept", file: file, line: line)
    let packets = try ScaleFixture.videoPackets(joined)
    XCTAssertEqual(packets.map(\.pts).sorted(), (0..<40).map { Double($0) / 10 }, "continuous timestamps", file: file, line: line)
    XCTAssertEqual(Set(packets.map(\.pts)).count, 40, "no frame twice", file: file, line: line)
    let keys = Set(packets.filter(\.key).map(\.pts))
    XCTAssertTrue([0, 1, 3].allSatisfy(keys.contains), "a keyframe where each part starts: \(keys.sorted())", file: file, line: line)
    // Not a part: the pieces' titles were not carried into the whole.
    XCTAssertEqual(try ScaleFixture.title(joined), "", file: file, line: line)
  }

  func testMovPartsJoinToTheSinglePass() throws {
    let clip = path("clip.webm")
    try ScaleFixture.makeClip(clip)
    try compose(clip, path("single.mov"), [])
    for k in 0..<3 { try compose(clip, path("part-\(k).mov"), ["--segment", "\(k)/3"]) }
    let ranges = [(0, "1000000000", 10), (1_000_000_000, "3000000000", 20), (3_000_000_000, "end", 10)]
    for (k, (start, end, frames)) in ranges.enumerated() {
      let title = try ScaleFixture.title(path("part-\(k).mov"))
      XCTAssertTrue(title.hasPrefix("backdrop-part clip="), title)
      XCTAssertTrue(title.hasSuffix(" part=\(k)/3 start=\(start) end=\(end) frames=\(frames)"), title)
      XCTAssertEqual(try ScaleFixture.videoPackets(path("part-\(k).mov")).count, frames, "part \(k)")
      // Each part's PCM covers its range exactly (to the input's 1 ms timestamps: 48 samples).
      let expected = Double(frames) / 10
      XCTAssertEqual(try XCTUnwrap(try audioDuration(path("part-\(k).mov"))), k == 2 ? expected + 0.0013 : expected, accuracy: 0.003, "part \(k) audio")
    }

    let joined = path("whole.mov")
    let join = try backdrop(["join", path("part-2.mov"), path("part-0.mov"), path("part-1.mov"), "-o", joined])
    XCTAssertEqual(join.status, 0, join.stderr)
    try checkJoined(joined, codec: "prores", audioCodec: "pcm_s16le")
    let single = try XCTUnwrap(try audioDuration(path("single.mov")))
    XCTAssertEqual(try XCTUnwrap(try audioDuration(joined)), single, accuracy: 0.004, "the single pass's audio length (4.001 s)")

    // Alpha: ProRes is intra-only and each frame is encoded on its own, so the same matte encodes
    // to the same alpha: the bound is 0 levels (of 16 bits as decoded).
    let a = try alpha16(path("single.mov")), b = try alpha16(joined)
    XCTAssertEqual(a.count, 40)
    XCTAssertEqual(b.count, 40)
    XCTAssertGreaterThan(Set(a).count, 20, "the alpha changes from frame to frame (a moving ball), so a shifted frame would show")
    XCTAssertGreaterThan(a.flatMap { $0 }.filter { $0 < 0x1000 }.count, 0, "some pixels are transparent")
    var worst = 0
    for (x, y) in zip(a, b) { for (p, q) in zip(x, y) { worst = max(worst, abs(Int(p) - Int(q))) } }
    XCTAssertEqual(worst, 0, "the joined alpha equals the single pass's")
  }

  func testMP4PartsJoinWithoutReencoding() throws {
    let clip = path("clip.webm")
    try ScaleFixture.makeClip(clip)
    // Stacked alpha: the alpha rides as grey below the picture, so H.264 carries it too.
    for k in 0..<3 { try compose(clip, path("part-\(k).mp4"), ["--segment", "\(k)/3", "--stacked-alpha"]) }
    for k in 0..<3 {
      let packets = try ScaleFixture.videoPackets(path("part-\(k).mp4"))
      XCTAssertEqual(packets.first?.key, true, "part \(k) starts with an IDR frame")
      XCTAssertTrue(try ScaleFixture.title(path("part-\(k).mp4")).contains(" part=\(k)/3 "))
    }
    let joined = path("whole.mp4")
    let join = try backdrop(["join", path("part-1.mp4"), path("part-2.mp4"), path("part-0.mp4"), "-o", joined])
    XCTAssertEqual(join.status, 0, join.stderr)
    try checkJoined(joined, codec: "h264", audioCodec: "aac")
    // AAC: each part's encoder adds at most one 1024-sample frame (21 ms) of padding.
    XCTAssertEqual(try XCTUnwrap(try audioDuration(joined)), 4.0, accuracy: 0.07)

    // The joined stream decodes to exactly the parts' frames, in order: nothing was re-encoded.
    let frameSize = ScaleFixture.width * ScaleFixture.height * 2 * 3 / 2
    let whole = try decodedFrames(joined, format: "I420", frameSize: frameSize)
    let parts = try (0..<3).flatMap { try decodedFrames(path("part-\($0).mp4"), format: "I420", frameSize: frameSize) }
    XCTAssertEqual(whole.count, 40)
    XCTAssertEqual(parts.count, 40)
    for (index, (a, b)) in zip(parts, whole).enumerated() where a != b {
      XCTFail("frame \(index): the joined picture differs from its part's")
    }
  }

  func testJoinRefusesMovPiecesThatDoNotFit() throws {
    let clip = path("clip.webm"), other = path("other.webm")
    try ScaleFixture.makeClip(clip)
    try ScaleFixture.makeClip(other, pattern: "snow")
    for k in 0..<3 { try compose(clip, path("part-\(k).mov"), ["--segment", "\(k)/3"]) }
    try compose(other, path("other-1.mov"), ["--segment", "1/3"])
    try compose(clip, path("part-1.webm"), ["--segment", "1/3"])
    try FileManager.default.copyItem(atPath: path("part-1.mov"), toPath: path("copy-of-1.mov"))

    let output = path("joined.mov")
    func refusal(_ pieces: [String], _ expected: String, output: String = output) throws {
      let result = try backdrop(["join"] + pieces.map(path) + ["-o", output])
      XCTAssertEqual(result.status, 65, "\(pieces): \(result.stderr)")
      XCTAssertTrue(result.stderr.contains(expected), "\(pieces): \(result.stderr)")
      XCTAssertFalse(FileManager.default.fileExists(atPath: output), "no output for \(pieces)")
      XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".joined") }, [])
    }
    try refusal(["part-0.mov", "part-2.mov"],
                "a piece is missing between part-0.mov (part 0/3, 0.000 s–1.000 s) and part-2.mov (part 2/3, 3.000 s–end)")
    try refusal(["part-0.mov", "other-1.mov", "part-2.mov"], "other-1.mov (part 1/3, 1.000 s–3.000 s) comes from another clip")
    try refusal(["part-0.mov", "part-1.mov", "copy-of-1.mov", "part-2.mov"], "(part 1/3, 1.000 s–3.000 s) overlaps ")
    try refusal(["part-0.mov", "part-1.webm", "part-2.mov"],
                "part-1.webm is a transparent WebM (.webm) part but the output joined.mov is to be a QuickTime ProRes (.mov) file")
    try refusal(["part-0.mov", "part-1.mov", "part-2.mov"],
                "part-0.mov is a QuickTime ProRes (.mov) part but the output joined.mp4 is to be an MP4 (.mp4) file", output: path("joined.mp4"))
    try refusal(["part-0.mov", "clip.webm"], "clip.webm is not a part written by `backdrop compose --segment` (it has no part title)")
  }
}
