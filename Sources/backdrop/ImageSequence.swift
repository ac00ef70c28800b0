// An image-sequence input for `compose` (frames/%05d.png): numbered PNG or JPEG files, read by
// multifilesrc at the frame rate given with --fps, decoded like any other input.
import Foundation

struct ImageSequence {
  let pattern: String
  let firstIndex: Int
  let count: Int
  let framerate: (Int, Int)
  let caps: String

  /// nil for an ordinary input file; throws for a pattern without frames or a bad --fps.
  static func detect(_ path: String, fps: String?) throws -> ImageSequence? {
    let fm = FileManager.default
    guard FramePattern.isPattern((path as NSString).lastPathComponent), !fm.fileExists(atPath: path) else {
      if let fps { throw LauncherError.usage("--fps \(fps) is for an image-sequence input such as frames/%05d.png") }
      return nil
    }
    let caps: String
    switch (path as NSString).pathExtension.lowercased() {
    case "png": caps = "image/png"
    case "jpg", "jpeg": caps = "image/jpeg"
    default: throw LauncherError.usage("\(path): an image-sequence input is PNG or JPEG files (.png, .jpg)")
    }
    guard let first = [0, 1].first(where: { fm.fileExists(atPath: FramePattern.file(path, $0)) }) else {
      throw LauncherError.noInput(
        "no frames found: neither \(FramePattern.file(path, 0)) nor \(FramePattern.file(path, 1)) exists")
    }
    var count = 0
    while fm.fileExists(atPath: FramePattern.file(path, first + count)) { count += 1 }
    return ImageSequence(pattern: path, firstIndex: first, count: count, framerate: try parseRate(fps ?? "25"), caps: caps)
  }

  /// "25", "30000/1001" → a fraction from 1 to 1000 frames per second.
  static func parseRate(_ text: String) throws -> (Int, Int) {
    let parts = text.split(separator: "/").map { Int($0) }
    guard (1...2).contains(parts.count), let numerator = parts[0], let denominator = parts.count == 2 ? parts[1] : 1,
      numerator > 0, denominator > 0, Double(numerator) / Double(denominator) <= 1000
    else { throw LauncherError.usage("--fps \(text): expected frames per second, e.g. 25 or 30000/1001") }
    return (numerator, denominator)
  }

  /// The first frame's size, this sequence's rate and length, no audio.
  func mediaInfo() throws -> MediaInfo {
    var info = try MediaInfo.probe(FramePattern.file(pattern, firstIndex))
    info.framerate = framerate
    info.hasAudio = false
    info.stillImage = false  // many pictures, one video
    info.durationNs = UInt64(count) * 1_000_000_000 * UInt64(framerate.1) / UInt64(framerate.0)
    return info
  }

  /// The pipeline's source: every file from the first, as frames at the given rate.
  var sourceDescription: String {
    "multifilesrc location=\(gstQuote(pattern)) index=\(firstIndex) stop-index=\(firstIndex + count - 1) "
      + "caps=\"\(caps),framerate=\(framerate.0)/\(framerate.1)\" ! decodebin name=dec"
  }
}
