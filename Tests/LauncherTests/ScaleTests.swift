// Scale-out (issue 13): `backdrop plan`, `compose --segment`, `join`, run as a user would on a
// generated clip with keyframes every 10 frames and audio.
import Foundation
import XCTest

/// Helpers shared by the scale-out tests (plan, segments, join, Slurm).
enum ScaleFixture {
  static let frames = 40
  static let fps = 10
  static let width = 160
  static let height = 96

  /// A moving ball over a sine tone: VP8 with a keyframe every 10 frames, Vorbis, in WebM.
  static func makeClip(_ path: String, pattern: String = "ball", frames: Int = ScaleFixture.frames) throws {
    try gstLaunch([
      "videotestsrc", "num-buffers=\(frames)", "pattern=\(pattern)", "!",
      "video/x-raw,width=\(width),height=\(height),framerate=\(fps)/1", "!", "videoconvert", "!",
      "vp8enc", "deadline=1", "keyframe-max-dist=10", "min-quantizer=0", "max-quantizer=8", "!", "webmmux", "name=m", "!",
      "filesink", "location=\(path)",
      "audiotestsrc", "num-buffers=\(frames)", "samplesperbuffer=\(48000 / fps)", "!",
      "audio/x-raw,rate=48000,channels=1", "!", "audioconvert", "!", "vorbisenc", "!", "m.",
    ])
  }

  /// The lumakey model at 64x64: alpha follows the picture's brightness, frame by frame.
  /// A per-frame run: the temporal stage (on by default) carries state from frame to frame, which
  /// a part can only rebuild from warm-up frames (testTemporalPartsWithWarmupStayWithinOneLevel).
  static var modelArguments: [String] { perFrameModelArguments + ["--temporal-smooth", "0"] }
  static var perFrameModelArguments: [String] { ["--model", Launcher.designedModel("lumakey"), "--size", "64x64"] }

  /// Every frame's alpha plane, decoded by GStreamer (vp9alphadecodebin) as AYUV.
  static func alphaPlanes(_ path: String, in directory: URL) throws -> [[UInt8]] {
    let raw = directory.appendingPathComponent(UUID().uuidString + ".ayuv").path
    defer { try? FileManager.default.removeItem(atPath: raw) }
    try gstLaunch(["filesrc", "location=\(path)", "!", "matroskademux", "!", "decodebin", "!", "videoconvert", "!",
                   "video/x-raw,format=AYUV", "!", "filesink", "location=\(raw)"])
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
    let frameSize = width * height * 4
    XCTAssertEqual(data.count % frameSize, 0, "\(path): whole AYUV frames")
    return stride(from: 0, to: data.count - frameSize + 1, by: frameSize).map { start in
      stride(from: start, to: start + frameSize, by: 4).map { data[$0] }
    }
  }

  /// Video packet timestamps (seconds) and key flags, in file order, as ffprobe reads them.
  static func videoPackets(_ path: String) throws -> [(pts: Double, key: Bool)] {
    let result = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe", [
      "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", path,
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdoutLines.compactMap { line in
      let fields = line.split(separator: ",")
      guard fields.count >= 2, let pts = Double(fields[0]) else { return nil }
      return (pts, fields[1].hasPrefix("K"))
    }
  }

  /// The WebM's title (where a part records its clip and range).
  static func title(_ path: String) throws -> String {
    let result = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe", [
      "-v", "error", "-show_entries", "format_tags=title", "-of", "csv=p=0", path,
    ])
    return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}

final class ScaleTests: XCTestCase {
  var directory: URL!
  var cache: URL!

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    cache = directory.appendingPathComponent("cache")
    XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Launcher.executable), "built backdrop at \(Launcher.executable)")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  /// With the temporal stage on (its default weight), parts that start from `--warmup` frames
  /// before their cut join to within one alpha level of a single pass.
  func testTemporalPartsWithWarmupStayWithinOneLevel() throws {
    let clip = path("clip.webm")
    try ScaleFixture.makeClip(clip)
    let temporal = ScaleFixture.perFrameModelArguments
    let single = try backdrop(["compose", clip, "-o", path("single.webm"), "--alpha-lossless", "-q"] + temporal)
    XCTAssertEqual(single.status, 0, single.stderr)
    for k in 0..<4 {
      let part = try backdrop(["compose", clip, "-o", path("part-\(k).webm"), "--alpha-lossless", "-q", "--segment", "\(k)/4",
                               "--warmup", "20"] + temporal)
      XCTAssertEqual(part.status, 0, part.stderr)
    }
    let join = try backdrop(["join"] + (0..<4).map { path("part-\($0).webm") } + ["-o", path("whole.webm")])
    XCTAssertEqual(join.status, 0, join.stderr)
    let a = try ScaleFixture.alphaPlanes(path("single.webm"), in: directory)
    let b = try ScaleFixture.alphaPlanes(path("whole.webm"), in: directory)
    XCTAssertEqual(a.count, 40)
    XCTAssertEqual(b.count, 40)
    var worst = 0
    for (x, y) in zip(a, b) {
      for (p, q) in zip(x, y) { worst = max(worst, abs(Int(p) - Int(q))) }
    }
    print("temporal parts with warm-up: largest alpha difference to the single pass \(worst) level(s)")
    XCTAssertLessThanOrEqual(worst, 1, "within one level of the single pass")
  }

  func backdrop(_ arguments: [String], extra: [String: String] = [:]) throws -> RunResult {
    try runProgram(Launcher.executable, arguments, environment: Launcher.environment(cache: cache, extra: extra))
  }

  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  func compose(_ input: String, _ output: String, _ more: [String], extra: [String: String] = [:]) throws {
    let result = try backdrop(["compose", input, "-o", output, "--alpha-lossless", "-q"] + ScaleFixture.modelArguments + more, extra: extra)
    XCTAssertEqual(result.status, 0, "compose \(more): \(result.stderr)")
  }

  func testPlanCutsAtKeyframesAndRefusesTooManyParts() throws {
    let clip = path("clip.webm")
    try ScaleFixture.makeClip(clip)
    let result = try backdrop(["plan", clip, "--parts", "4"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    XCTAssertEqual(json["frames"] as? Int, 40)
    XCTAssertEqual(json["parts"] as? Int, 4)
    let ranges = try XCTUnwrap(json["ranges"] as? [[String: Any]])
    XCTAssertEqual(ranges.map { $0["start"] as? Double }, [0, 1, 2, 3])
    XCTAssertEqual(ranges.map { $0["end"] as? Double }, [1, 2, 3, nil])
    XCTAssertEqual(ranges.map { $0["frames"] as? Int }, [10, 10, 10, 10])
    XCTAssertEqual(ranges.map { $0["segment"] as? String }, ["0/4", "1/4", "2/4", "3/4"])
    XCTAssertTrue(ranges[3]["end"] is NSNull, "the last range runs to the end")

    // Three parts: cuts at the keyframes nearest to 4/3 s and 8/3 s.
    let three = try backdrop(["plan", clip, "--parts", "3"])
    let threeRanges = (try JSONSerialization.jsonObject(with: Data(three.stdout.utf8)) as? [String: Any])?["ranges"] as? [[String: Any]]
    XCTAssertEqual(threeRanges?.map { $0["frames"] as? Int }, [10, 20, 10])

    let tooMany = try backdrop(["plan", clip, "--parts", "5"])
    XCTAssertEqual(tooMany.status, 64)
    XCTAssertTrue(tooMany.stderr.contains("has 4 keyframe(s), too few to cut it into 5 parts: use --parts 4 or fewer"), tooMany.stderr)
  }

  func testFourPartsJoinToTheSinglePass() throws {
    let clip = path("clip.webm")
    try ScaleFixture.makeClip(clip)
    try compose(clip, path("single.webm"), [])
    for k in 0..<4 { try compose(clip, path("part-\(k).webm"), ["--segment", "\(k)/4"]) }

    // Each part: its own range's 10 frames, starting at 0 with a keyframe, and its title.
    for k in 0..<4 {
      let packets = try ScaleFixture.videoPackets(path("part-\(k).webm"))
      XCTAssertEqual(packets.count, 10, "part \(k)")
      XCTAssertEqual(packets.first?.pts, 0, "part \(k) starts at 0")
      XCTAssertEqual(packets.first?.key, true, "part \(k) starts with a keyframe")
      let title = try ScaleFixture.title(path("part-\(k).webm"))
      XCTAssertTrue(title.hasPrefix("backdrop-part clip="), title)
      let end = k == 3 ? "end" : "\((k + 1) * 1_000_000_000)"
      XCTAssertTrue(title.contains(" part=\(k)/4 start=\(k * 1_000_000_000) end=\(end) frames=10"), title)
    }

    // Given in any order, the pieces join in the order of their ranges.
    let joined = path("whole.webm")
    let join = try backdrop(["join", path("part-2.webm"), path("part-0.webm"), path("part-3.webm"), path("part-1.webm"), "-o", joined])
    XCTAssertEqual(join.status, 0, join.stderr)
    let probed = try ffprobe(joined)
    XCTAssertEqual(probed.video?.frames, 40)
    XCTAssertEqual(probed.video?.codec, "vp9")
    XCTAssertEqual(probed.video?.alphaMode, "1")
    XCTAssertEqual(probed.audio?.codec, "opus", "audio kept")
    XCTAssertEqual(probed.duration, 4.0, accuracy: 0.05)
    let packets = try ScaleFixture.videoPackets(joined)
    XCTAssertEqual(packets.map(\.pts), (0..<40).map { Double($0) / 10 }, "continuous timestamps")
    XCTAssertEqual(packets.enumerated().filter(\.element.key).map(\.offset), [0, 10, 20, 30], "a keyframe where each part starts")

    let single = try ScaleFixture.alphaPlanes(path("single.webm"), in: directory)
    let whole = try ScaleFixture.alphaPlanes(joined, in: directory)
    XCTAssertEqual(single.count, 40)
    XCTAssertEqual(whole.count, 40)
    XCTAssertGreaterThan(Set(single).count, 20, "the alpha changes from frame to frame (a moving ball), so a shifted frame would show")
    for (index, (a, b)) in zip(single, whole).enumerated() where a != b {
      XCTFail("frame \(index): the joined alpha differs from the single pass")
    }

    // One Cues element and one Duration: the file was muxed once.
    let info = try runProgram(which("mkvinfo") ?? "/usr/bin/mkvinfo", ["-a", joined])
    let lines = info.stdout.split(separator: "\n")
    XCTAssertEqual(lines.filter { $0 == "|+ Cues" }.count, 1)
    XCTAssertEqual(lines.filter { $0.hasPrefix("| + Duration: 00:00:04.0") }.count, 1, "one Duration of 4 s")
    XCTAssertEqual(lines.filter { $0 == "|+ Segment information" }.count, 1)
  }

  /// H.264 with B-frames in MP4 starts its PTS after 0 (an edit list): ranges, seeks and the
  /// frames kept are all in stream time, so no frame is lost or doubled at a cut.
  func testMP4WithBFramesSplitsAndJoinsEveryFrame() throws {
    let clip = path("clip.mp4")
    try gstLaunch([
      "videotestsrc", "num-buffers=40", "pattern=ball", "!", "video/x-raw,width=160,height=96,framerate=10/1", "!",
      "videoconvert", "!", "x264enc", "key-int-max=10", "bframes=2", "speed-preset=veryfast", "!", "mp4mux", "name=m", "!",
      "filesink", "location=\(clip)",
      "audiotestsrc", "num-buffers=40", "samplesperbuffer=4800", "!", "audio/x-raw,rate=48000,channels=1", "!",
      "audioconvert", "!", "avenc_aac", "!", "m.",
    ])
    let plan = try backdrop(["plan", clip, "--parts", "4"])
    let ranges = (try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["ranges"] as? [[String: Any]]
    XCTAssertEqual(ranges?.map { $0["start"] as? Double }, [0, 1, 2, 3], plan.stdout + plan.stderr)
    for k in 0..<4 {
      try compose(clip, path("part-\(k).webm"), ["--segment", "\(k)/4"])
      XCTAssertEqual(try ScaleFixture.videoPackets(path("part-\(k).webm")).count, 10, "part \(k)")
    }
    try compose(clip, path("single.webm"), [])
    let join = try backdrop(["join"] + (0..<4).map { path("part-\($0).webm") } + ["-o", path("whole.webm")])
    XCTAssertEqual(join.status, 0, join.stderr)
    XCTAssertEqual(try ScaleFixture.videoPackets(path("whole.webm")).map(\.pts), (0..<40).map { Double($0) / 10 })
    XCTAssertTrue(try ScaleFixture.alphaPlanes(path("single.webm"), in: directory) == ScaleFixture.alphaPlanes(path("whole.webm"), in: directory))
  }

  func testWarmupFramesAreProcessedButNotWritten() throws {
    let clip = path("clip.webm")
    try ScaleFixture.makeClip(clip)
    try compose(clip, path("plain.webm"), ["--segment", "2/4"])
    try compose(clip, path("warm.webm"), ["--segment", "2/4", "--warmup", "5"])
    let plain = try ScaleFixture.alphaPlanes(path("plain.webm"), in: directory)
    let warm = try ScaleFixture.alphaPlanes(path("warm.webm"), in: directory)
    XCTAssertEqual(warm.count, 10, "only the range's frames are written")
    XCTAssertTrue(plain == warm, "a per-frame model gives the same alpha with or without warm-up")
    XCTAssertEqual(try ScaleFixture.videoPackets(path("warm.webm")).first?.key, true)

    // --start/--end in seconds (no keyframe needed at the start): frames 12..<27.
    try compose(clip, path("range.webm"), ["--start", "1.2", "--end", "2.7"])
    XCTAssertEqual(try ScaleFixture.videoPackets(path("range.webm")).count, 15)
  }

  func testSegmentAutoReadsSlurmAndKubernetesVariables() throws {
    let clip = path("clip.webm")
    try ScaleFixture.makeClip(clip)
    try compose(clip, path("slurm.webm"), ["--segment", "auto"],
                extra: ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"])
    XCTAssertTrue(try ScaleFixture.title(path("slurm.webm")).contains(" part=2/4 "), "array 1-4: task 3 is part 2/4")
    try compose(clip, path("k8s.webm"), ["--segment", "auto", "--parts", "4"], extra: ["JOB_COMPLETION_INDEX": "1"])
    XCTAssertTrue(try ScaleFixture.title(path("k8s.webm")).contains(" part=1/4 start=1000000000 "))
    XCTAssertEqual(try ScaleFixture.videoPackets(path("k8s.webm")).count, 10)

    let neither = try backdrop(["compose", clip, "-o", path("x.webm"), "--segment", "auto"] + ScaleFixture.modelArguments)
    XCTAssertEqual(neither.status, 64)
    XCTAssertTrue(neither.stderr.contains("--segment auto needs SLURM_ARRAY_TASK_ID"), neither.stderr)
    let outOfRange = try backdrop(["compose", clip, "-o", path("x.webm"), "--segment", "4/4"] + ScaleFixture.modelArguments)
    XCTAssertEqual(outOfRange.status, 64)
    XCTAssertTrue(outOfRange.stderr.contains("part 4 of 4 does not exist"), outOfRange.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: path("x.webm")))
  }

  func testJoinRefusesPiecesThatDoNotFit() throws {
    let clip = path("clip.webm"), other = path("other.webm")
    try ScaleFixture.makeClip(clip)
    try ScaleFixture.makeClip(other, pattern: "snow")
    for k in 0..<4 { try compose(clip, path("part-\(k).webm"), ["--segment", "\(k)/4"]) }
    try compose(other, path("other-1.webm"), ["--segment", "1/4"])
    try FileManager.default.copyItem(atPath: path("part-1.webm"), toPath: path("copy-of-1.webm"))
    // Part 2 remuxed without its audio track, its title (clip and range) kept; ffmpeg adds a colour
    // range that the part did not have, so that is taken out again to keep the video caps the same.
    let silent = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg",
                                ["-v", "error", "-i", path("part-2.webm"), "-map", "0:v", "-c", "copy", path("silent-2.webm")])
    XCTAssertEqual(silent.status, 0, silent.stderr)
    let plain = try runProgram(which("mkvpropedit") ?? "/usr/bin/mkvpropedit",
                               ["-q", path("silent-2.webm"), "--edit", "track:v1", "--delete", "color-range"])
    XCTAssertEqual(plain.status, 0, plain.stdout + plain.stderr)
    try compose(clip, path("whole-alpha.webm"), [])

    let output = path("joined.webm")
    func refusal(_ pieces: [String], _ expected: String) throws {
      let result = try backdrop(["join"] + pieces.map(path) + ["-o", output])
      XCTAssertEqual(result.status, 65, "\(pieces): \(result.stderr)")
      XCTAssertTrue(result.stderr.contains(expected), "\(pieces): \(result.stderr)")
      XCTAssertFalse(FileManager.default.fileExists(atPath: output), "no output for \(pieces)")
      XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".joined") }, [])
    }
    try refusal(["part-0.webm", "part-1.webm", "part-3.webm"],
                "a piece is missing between part-1.webm (part 1/4, 1.000 s–2.000 s) and part-3.webm (part 3/4, 3.000 s–end)")
    try refusal(["part-0.webm", "other-1.webm", "part-2.webm", "part-3.webm"], "other-1.webm (part 1/4, 1.000 s–2.000 s) comes from another clip")
    try refusal(["part-0.webm", "part-1.webm", "copy-of-1.webm", "part-2.webm", "part-3.webm"], "overlaps")
    try refusal(["part-1.webm", "part-2.webm", "part-3.webm"], "the first piece is missing: part 0/4")
    // The audio of every piece is read (the demuxer's last pad included), not only the first stream.
    try refusal(["part-0.webm", "part-1.webm", "silent-2.webm", "part-3.webm"],
                "silent-2.webm has other audio than part-0.webm (no audio against audio/x-opus, rate=(int)48000")
    try refusal(["part-0.webm", "part-1.webm", "part-2.webm"], "the last piece is missing: nothing follows part-2.webm")
    try refusal(["part-0.webm", "whole-alpha.webm"], "whole-alpha.webm is not a part written by `backdrop compose --segment`")

    // WebM parts join into WebM only (JoinFormatsTests: .mov and .mp4 parts).
    let mov = try backdrop(["join", path("part-0.webm"), "-o", path("joined.mov")])
    XCTAssertEqual(mov.status, 65, mov.stderr)
    XCTAssertTrue(mov.stderr.contains("part-0.webm is a transparent WebM (.webm) part but the output joined.mov is to be"), mov.stderr)
    let avi = try backdrop(["join", path("part-0.webm"), "-o", path("joined.avi")])
    XCTAssertEqual(avi.status, 64, avi.stderr)
  }
}
