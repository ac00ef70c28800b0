// Synthetic clips with exact ground truth for the temporal tests (issue 9), made at run time by
// scripts/make-temporal-clip.py, run through birefnetmatte (GRAY8 out), and the metrics.
import CBackdropShim
import CGStreamer
import Foundation
import XCTest

struct TemporalClip {
  let width: Int, height: Int, count: Int
  let cut: Int  // first frame of the second scene, -1 when none
  let frames: [[UInt8]]  // packed RGB, width*3 bytes a row
  let alpha: [[UInt8]]  // ground truth

  var capsString: String { "video/x-raw,format=RGB,width=\(width),height=\(height),framerate=25/1" }

  nonisolated(unsafe) private static var cache: [String: TemporalClip] = [:]

  /// Makes (once per test run) the clip of `variant`: static, move2, move6 or cut.
  static func make(_ variant: String, seed: Int = 9, frames: Int = 24) throws -> TemporalClip {
    let key = "\(variant)-\(seed)-\(frames)"
    if let clip = cache[key] { return clip }
    let folder = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let script = TestEnvironment.packageRoot.appendingPathComponent("scripts/make-temporal-clip.py").path
    let result = try runTool("/usr/bin/python3", [script, "--out", folder.path, "--variant", variant,
                                                  "--seed", String(seed), "--frames", String(frames)])
    guard result.status == 0 else {
      throw XCTSkip("cannot make the synthetic clip (needs Debian's python3-numpy and python3-pil): \(result.stderr)")
    }
    let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("clip.json"))) as! [String: Any]
    let width = meta["width"] as! Int, height = meta["height"] as! Int, count = meta["frames"] as! Int
    let rgb = [UInt8](try Data(contentsOf: folder.appendingPathComponent("frames.rgb")))
    let gray = [UInt8](try Data(contentsOf: folder.appendingPathComponent("alpha.gray")))
    XCTAssertEqual(rgb.count, width * height * 3 * count)
    XCTAssertEqual(gray.count, width * height * count)
    let frameBytes = width * height * 3, alphaBytes = width * height
    let clip = TemporalClip(
      width: width, height: height, count: count, cut: meta["cut"] as! Int,
      frames: (0..<count).map { Array(rgb[($0 * frameBytes)..<(($0 + 1) * frameBytes)]) },
      alpha: (0..<count).map { Array(gray[($0 * alphaBytes)..<(($0 + 1) * alphaBytes)]) })
    cache[key] = clip
    return clip
  }

  static let frameDuration: UInt = 40_000_000

  /// A GstBuffer holding frame `index` (rows padded to 4 bytes, as GstVideoInfo lays RGB out).
  func buffer(_ index: Int, discont: Bool = false) -> UnsafeMutablePointer<GstBuffer> {
    let stride = (width * 3 + 3) & ~3
    let buffer = gst_buffer_new_allocate(nil, gsize(stride * height), nil)!
    var map = GstMapInfo()
    gst_buffer_map(buffer, &map, GST_MAP_WRITE)
    frames[index].withUnsafeBytes { source in
      for y in 0..<height {
        (map.data! + y * stride).update(from: source.baseAddress!.assumingMemoryBound(to: UInt8.self) + y * width * 3, count: width * 3)
      }
    }
    gst_buffer_unmap(buffer, &map)
    buffer.pointee.pts = UInt(index) * TemporalClip.frameDuration
    buffer.pointee.duration = TemporalClip.frameDuration
    if discont { buffer.pointee.mini_object.flags |= GST_BUFFER_FLAG_DISCONT.rawValue }
    return buffer
  }

  /// A matte (GRAY8 buffer, rows padded to 4 bytes) as width*height bytes.
  func matte(_ buffer: UnsafeMutablePointer<GstBuffer>) -> [UInt8] {
    let stride = (width + 3) & ~3
    var map = GstMapInfo()
    gst_buffer_map(buffer, &map, GST_MAP_READ)
    defer { gst_buffer_unmap(buffer, &map) }
    var out = [UInt8](repeating: 0, count: width * height)
    for y in 0..<height {
      for x in 0..<width { out[y * width + x] = map.data[y * stride + x] }
    }
    return out
  }
}

/// One run of a clip through birefnetmatte: the mattes and the element's counters.
struct TemporalRun {
  var mattes: [[UInt8]]
  var frames: UInt64, inferred: UInt64, skipped: UInt64, sceneCuts: UInt64
}

func matteHarness(for clip: TemporalClip, _ properties: [(String, String)]) -> MatteHarness {
  // The model sees the frame at its own size, so metrics compare like with like.
  let base = [("inference-width", String(clip.width)), ("inference-height", String(clip.height))]
  return MatteHarness(properties: base + properties, inputCaps: clip.capsString, outputCaps: "video/x-raw,format=GRAY8")
}

/// Pushes frames `range` of `clip` and drains the element with EOS.
func runClip(_ clip: TemporalClip, _ properties: [(String, String)], range: Range<Int>? = nil,
             file: StaticString = #filePath, line: UInt = #line) -> TemporalRun {
  let harness = matteHarness(for: clip, properties)
  let frames = range ?? 0..<clip.count
  for index in frames { XCTAssertEqual(harness.push(clip.buffer(index)), GST_FLOW_OK, file: file, line: line) }
  XCTAssertTrue(harness.pushEvent(gst_event_new_eos()), file: file, line: line)
  let outputs = harness.pullAvailable()
  XCTAssertEqual(outputs.count, frames.count, "errors: \(harness.messages.texts(GST_MESSAGE_ERROR))", file: file, line: line)
  let mattes = outputs.map { clip.matte($0) }
  outputs.forEach { gst_buffer_unref($0) }
  let stats = elementStats(harness.element)
  return TemporalRun(mattes: mattes, frames: stats["frames"] ?? 0, inferred: stats["inferred"] ?? 0,
                     skipped: stats["skipped"] ?? 0, sceneCuts: stats["scene-cuts"] ?? 0)
}

/// The element's read-only `stats` structure as name → count (and its structure name under "").
func elementStats(_ element: UnsafeMutablePointer<GstElement>) -> [String: UInt64] {
  var value = GValue()
  g_value_init(&value, gst_structure_get_type())
  defer { g_value_unset(&value) }
  g_object_get_property(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GObject.self), "stats", &value)
  guard let raw = g_value_get_boxed(&value) else { return [:] }
  let structure = raw.assumingMemoryBound(to: GstStructure.self)
  var result: [String: UInt64] = [:]
  if String(cString: gst_structure_get_name(structure)) == "stats" { result[""] = 1 }
  for name in ["frames", "inferred", "skipped", "scene-cuts"] {
    var count: guint64 = 0
    if gst_structure_get_uint64(structure, name, &count) != 0 { result[name] = UInt64(count) }
  }
  return result
}

// MARK: metrics (alpha in 0...1)

enum MatteMetrics {
  /// Mean |α_t − α_{t−1}| over pixels whose ground truth did not change between the two frames.
  static func staticFlicker(_ mattes: [[UInt8]], truth: [[UInt8]]) -> Double {
    var sum = 0.0, count = 0
    for t in 1..<mattes.count {
      let a = mattes[t], b = mattes[t - 1], ga = truth[t], gb = truth[t - 1]
      for i in 0..<a.count where ga[i] == gb[i] {
        sum += Double(abs(Int(a[i]) - Int(b[i])))
        count += 1
      }
    }
    return sum / Double(max(count, 1)) / 255
  }

  /// Mean absolute difference to the ground truth.
  static func mad(_ mattes: [[UInt8]], truth: [[UInt8]], frames: Range<Int>? = nil) -> Double {
    var sum = 0.0, count = 0
    for t in frames ?? 0..<mattes.count {
      for i in 0..<mattes[t].count { sum += Double(abs(Int(mattes[t][i]) - Int(truth[t][i]))) }
      count += mattes[t].count
    }
    return sum / Double(count) / 255
  }

  /// dtSSD: root mean square of the difference between the matte's and the truth's frame-to-frame
  /// changes, averaged over frames.
  static func dtSSD(_ mattes: [[UInt8]], truth: [[UInt8]]) -> Double {
    var total = 0.0
    for t in 1..<mattes.count {
      var sum = 0.0
      for i in 0..<mattes[t].count {
        let d = Double(Int(mattes[t][i]) - Int(mattes[t - 1][i]) - Int(truth[t][i]) + Int(truth[t - 1][i])) / 255
        sum += d * d
      }
      total += (sum / Double(mattes[t].count)).squareRoot()
    }
    return total / Double(mattes.count - 1)
  }

  /// Intersection over union of foreground (α ≥ 0.5), averaged over frames.
  static func iou(_ mattes: [[UInt8]], truth: [[UInt8]]) -> Double {
    var total = 0.0
    for t in 0..<mattes.count {
      var both = 0, either = 0
      for i in 0..<mattes[t].count {
        let a = mattes[t][i] >= 128, b = truth[t][i] >= 128
        if a && b { both += 1 }
        if a || b { either += 1 }
      }
      total += Double(both) / Double(max(either, 1))
    }
    return total / Double(mattes.count)
  }

  /// Horizontal centre of mass of each matte, in pixels.
  static func centroidsX(_ mattes: [[UInt8]], width: Int) -> [Double] {
    mattes.map { matte in
      var sum = 0.0, weight = 0.0
      for (i, value) in matte.enumerated() {
        sum += Double(i % width) * Double(value)
        weight += Double(value)
      }
      return sum / max(weight, 1)
    }
  }
}
