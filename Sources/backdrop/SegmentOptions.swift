// `compose --segment K/N | auto`, `--warmup`: which part of the input a run writes (a plain time
// range is `--start/--end`, cut where frames leave the decoder: StreamTrim). A segment is the K-th range of `backdrop plan INPUT --parts N` (cut at keyframes); the
// part records its clip and range in its title so that `backdrop join` can check the pieces.
import ArgumentParser
import Foundation

struct SegmentOptions: ParsableArguments {
  @Option(name: .long, help: ArgumentHelp(
    "Write only the K-th (0-based) of N keyframe-aligned ranges of the input (see `backdrop plan`); "
      + "auto: K and N from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX with --parts.",
    valueName: "K/N|auto"))
  var segment: String?

  @Option(name: .long, help: "Number of parts for --segment auto under Kubernetes (JOB_COMPLETION_INDEX).")
  var parts: Int?

  @Option(name: .long, help: ArgumentHelp(
    "Frames before the range that are processed but not written, so state across frames "
      + "(temporal options) starts as in a single pass.", valueName: "FRAMES"))
  var warmup: Int = 0

  @Flag(name: .long, help: "Encode the alpha of a transparent WebM losslessly (bigger; parts then join to exactly the single pass's alpha).")
  var alphaLossless = false

  var isActive: Bool { segment != nil }

  /// K and N from `--segment`, reading the schedulers' variables for `auto`.
  func segmentNumbers(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (k: Int, n: Int)? {
    guard let segment else { return nil }
    if segment == "auto" {
      if let id = environment["SLURM_ARRAY_TASK_ID"].flatMap(Int.init) {
        guard let count = environment["SLURM_ARRAY_TASK_COUNT"].flatMap(Int.init) ?? parts else {
          throw LauncherError.usage("--segment auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (or give --parts)")
        }
        // Arrays may be numbered from 1 (--array=1-4): count from the array's first index.
        let first = environment["SLURM_ARRAY_TASK_MIN"].flatMap(Int.init) ?? 0
        return try checked(id - first, count, source: "SLURM_ARRAY_TASK_ID=\(id)")
      }
      if let index = environment["JOB_COMPLETION_INDEX"].flatMap(Int.init) {
        guard let parts else {
          throw LauncherError.usage("--segment auto with JOB_COMPLETION_INDEX needs --parts N (the Job's completions)")
        }
        return try checked(index, parts, source: "JOB_COMPLETION_INDEX=\(index)")
      }
      throw LauncherError.usage(
        "--segment auto needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a Slurm array) or JOB_COMPLETION_INDEX "
          + "and --parts (a Kubernetes Indexed Job); neither is set")
    }
    let pieces = segment.split(separator: "/")
    guard pieces.count == 2, let k = Int(pieces[0]), let n = Int(pieces[1]) else {
      throw LauncherError.usage("--segment \(segment): expected K/N (e.g. 0/4 for the first of four parts) or auto")
    }
    return try checked(k, n, source: "--segment \(segment)")
  }

  private func checked(_ k: Int, _ n: Int, source: String) throws -> (k: Int, n: Int) {
    guard n >= 1, k >= 0, k < n else {
      throw LauncherError.usage("\(source): part \(k) of \(n) does not exist (parts are numbered 0 to N-1)")
    }
    return (k, n)
  }

  /// What to process and write for `input`; nil when the whole input is written.
  func resolve(input: String, media: MediaInfo, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SegmentWindow? {
    guard isActive else {
      if warmup != 0 { throw LauncherError.usage("--warmup applies to --segment") }
      return nil
    }
    guard warmup >= 0 else { throw LauncherError.usage("--warmup \(warmup): a number of frames, 0 or more") }
    let index = try KeyframeIndex.scan(input)
    var window: SegmentWindow
    if let (k, n) = try segmentNumbers(environment: environment) {
      let plan = try SegmentPlan(index: index, parts: n, clip: try clipFingerprint(input), path: input)
      let range = plan.ranges[k]
      window = SegmentWindow(startNs: range.startNs, endNs: range.endNs, frames: range.frames)
      window.title = PartTitle(clip: plan.clip, index: k, count: n, startNs: range.startNs - index.framesNs[0],
                               endNs: range.endNs.map { $0 - index.framesNs[0] }, frames: range.frames).text
    } else {
      return nil
    }
    // Warm-up: decode from `warmup` frames earlier (the demuxer starts at the keyframe before).
    let firstInRange = index.framesNs.firstIndex { $0 >= window.startNs } ?? 0
    window.decodeFromNs = index.framesNs[max(0, firstInRange - warmup)]
    return window
  }
}

/// The frames a run writes: PTS in [startNs, endNs), decoded from decodeFromNs (warm-up).
struct SegmentWindow {
  var startNs: UInt64
  var endNs: UInt64?
  var frames: Int
  var decodeFromNs: UInt64 = 0
  /// The part's title (clip and range) for `join`; nil for a plain --start/--end range.
  var title: String?
}

/// "backdrop-part clip=… part=K/N start=NS end=NS|end frames=F", in the part's Segment Info Title.
struct PartTitle: Equatable {
  var clip: String
  var index: Int
  var count: Int
  var startNs: UInt64
  var endNs: UInt64?
  var frames: Int

  static let prefix = "backdrop-part"

  var text: String {
    "\(PartTitle.prefix) clip=\(clip) part=\(index)/\(count) start=\(startNs) end=\(endNs.map(String.init) ?? "end") frames=\(frames)"
  }

  init(clip: String, index: Int, count: Int, startNs: UInt64, endNs: UInt64?, frames: Int) {
    (self.clip, self.index, self.count, self.startNs, self.endNs, self.frames) = (clip, index, count, startNs, endNs, frames)
  }

  init?(_ text: String) {
    let words = text.split(separator: " ")
    guard words.first.map(String.init) == PartTitle.prefix else { return nil }
    var fields: [String: String] = [:]
    for word in words.dropFirst() {
      let pair = word.split(separator: "=", maxSplits: 1)
      if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
    }
    let part = fields["part"]?.split(separator: "/").compactMap { Int($0) } ?? []
    guard let clip = fields["clip"], part.count == 2, let start = fields["start"].flatMap(UInt64.init),
      let endText = fields["end"], let frames = fields["frames"].flatMap(Int.init)
    else { return nil }
    let end: UInt64? = endText == "end" ? nil : UInt64(endText)
    if endText != "end" && end == nil { return nil }
    self.init(clip: clip, index: part[0], count: part[1], startNs: start, endNs: end, frames: frames)
  }
}
