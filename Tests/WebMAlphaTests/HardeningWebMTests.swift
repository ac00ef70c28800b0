// Faults found by hostile testing (issue 12) in vp9alphaenc and webmalphamux: every small frame
// size encodes without taking the process down, and a stream that ends at once is a valid WebM.
import CBackdropShim
import CGStreamer
import Foundation
import XCTest

final class HardeningWebMTests: XCTestCase {
  override class func setUp() {
    super.setUp()
    XCTAssertTrue(WebMTestEnvironment.ready)
  }

  func requireTool(_ name: String) throws -> String {
    guard let path = WebMTestEnvironment.which(name) else { throw XCTSkip("\(name) is not installed") }
    return path
  }

  /// Fault 8: a stream that ends before its first frame gave a 0-byte file. Now: EBML header,
  /// Segment, Info and Tracks (the track from the caps), which mkvinfo and ffprobe read.
  func testStreamThatEndsAtOnceIsAValidEmptyWebM() throws {
    let directory = try WebMTestEnvironment.temporaryDirectory("empty")
    defer { try? FileManager.default.removeItem(at: directory) }
    for (name, source) in [("seekable", "filesink location="), ("streamable", "filesink location=")] {
      let path = directory.appendingPathComponent("\(name).webm").path
      let mux = name == "streamable" ? "webmalphamux streamable=true" : "webmalphamux"
      let outcome = runPipeline(
        "videotestsrc num-buffers=0 ! video/x-raw,format=A420,width=64,height=48,framerate=30/1 ! vp9alphaenc ! \(mux) ! \(source)\(path)")
      XCTAssertNil(outcome.error, name)
      let bytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
      XCTAssertGreaterThan(bytes.count, 40, "\(name): the file must hold a header")
      XCTAssertEqual(Array(bytes.prefix(4)), [0x1A, 0x45, 0xDF, 0xA3], "\(name): EBML magic")

      let info = try runProcess(try requireTool("mkvinfo"), ["-v", path])
      XCTAssertEqual(info.status, 0, "\(name): mkvinfo: \(info.stdout) \(info.stderr)")
      for part in ["Document type: webm", "Segment", "Segment information", "Tracks", "Codec ID: V_VP9",
                   "Pixel width: 64", "Pixel height: 48", "Cluster"] {
        XCTAssertTrue(info.stdout.contains(part), "\(name): mkvinfo should show \"\(part)\":\n\(info.stdout)")
      }
      let probe = try runProcess(
        try requireTool("ffprobe"),
        ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", path])
      XCTAssertEqual(probe.status, 0, "\(name): ffprobe: \(probe.stderr)")
      XCTAssertEqual(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "vp9,64,48", name)
      XCTAssertEqual(probe.stderr, "", "\(name): ffprobe complains")
      // The track says it carries alpha (AlphaMode 1: ID 0x53C0, size 1, value 1).
      XCTAssertNotNil(bytes.indices.first { bytes[$0...].starts(with: [0x53, 0xC0, 0x81, 0x01]) }, "\(name): AlphaMode 1")
    }
  }

  /// Fault 2: `videotestsrc pattern=ball` at 1-4 px wide and >= 48 px tall aborted the process
  /// ("double free or corruption") through vp9alphaenc and stock vp9enc alike. Found with
  /// valgrind: the heap corruption is videotestsrc's own (its ball pattern writes before its
  /// buffer on narrow frames, GStreamer 1.22) — libvpx 1.12 encodes every size. This test keeps it
  /// so: every width and height from 1 to 64 through vp9alphaenc with moving content, in a child
  /// process (this test binary re-run with BACKDROP_VP9_SIZE_SWEEP set), so that an abort fails
  /// the test and names the size instead of taking the test runner down.
  func testEverySizeFrom1To64Encodes() throws {
    let environment = ProcessInfo.processInfo.environment
    if environment["BACKDROP_VP9_SIZE_SWEEP"] != nil {
      try sweep(environment["BACKDROP_VP9_SIZE_SWEEP"] ?? "")
      return
    }
    guard let bundle = CommandLine.arguments.first(where: { $0.hasSuffix(".xctest") }) else {
      throw XCTSkip("cannot find the test bundle to run the sweep in a child process")
    }
    var sizes: [(Int, Int)] = []
    let result = try runProcess(bundle, ["WebMAlphaTests.HardeningWebMTests/testEverySizeFrom1To64Encodes"],
                                environment: ["BACKDROP_VP9_SIZE_SWEEP": "1-64"])
    for line in result.stdout.split(separator: "\n") where line.hasPrefix("encoded ") {
      let parts = line.dropFirst("encoded ".count).split(separator: "x").compactMap { Int($0.split(separator: " ")[0]) }
      if parts.count == 2 { sizes.append((parts[0], parts[1])) }
    }
    let last = sizes.last.map { "\($0.0)x\($0.1)" } ?? "none"
    XCTAssertEqual(result.status, 0, "the sweep child failed after \(last): \(result.stderr.suffix(2000))")
    XCTAssertEqual(sizes.count, 64 * 64, "sizes encoded (last \(last))")
    XCTAssertFalse(result.stdout.contains("FAILED"), String(result.stdout.suffix(2000)))
  }

  /// The child: each size in its own pipeline, 6 frames of snow (every pixel changes every frame),
  /// checking that 6 VP9 frames come out.
  private func sweep(_ range: String) throws {
    let bounds = range.split(separator: "-").compactMap { Int($0) }
    let (low, high) = bounds.count == 2 ? (bounds[0], bounds[1]) : (1, 64)
    for width in low...high {
      for height in low...high {
        let pipeline = gst_parse_launch(
          "videotestsrc num-buffers=6 pattern=snow ! video/x-raw,format=A420,width=\(width),height=\(height),framerate=30/1 ! "
            + "vp9alphaenc ! fakesink name=sink signal-handoffs=false", nil)!
        gst_element_set_state(pipeline, GST_STATE_PLAYING)
        let bus = gst_element_get_bus(pipeline)!
        let types = GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_EOS.rawValue)
        let message = gst_bus_timed_pop_filtered(bus, 30 * 1_000_000_000, types)
        var ok = message?.pointee.type == GST_MESSAGE_EOS
        var frames: UInt = 0
        if ok, let sink = gst_bin_get_by_name(UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self), "sink") {
          if let stats = gst_base_sink_get_stats(UnsafeMutableRawPointer(sink).assumingMemoryBound(to: GstBaseSink.self)) {
            var rendered: guint64 = 0
            gst_structure_get_uint64(stats, "rendered", &rendered)
            frames = rendered
            gst_structure_free(stats)
          }
          gst_object_unref(sink)
          ok = frames == 6
        }
        if let message { gst_message_unref(message) }
        gst_object_unref(bus)
        gst_element_set_state(pipeline, GST_STATE_NULL)
        gst_object_unref(pipeline)
        print(ok ? "encoded \(width)x\(height)" : "FAILED \(width)x\(height) (\(frames) frames)")
        fflush(nil)  // the parent reads the last size reached if this process dies
      }
    }
  }
}
