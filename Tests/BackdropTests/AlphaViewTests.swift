// alphaview: RGBA (straight alpha) in, RGBx out; stacked doubles the height (colour on top, the
// alpha as grey below), checkerboard composites over 16-pixel squares of 204 and 153. Each output
// frame keeps its input frame's timestamps (no fixed output rate, unlike compositor).
import CGStreamer
import CGStreamerCheck
import XCTest

final class AlphaViewTests: XCTestCase {
  static let width = 40, height = 20

  /// A frame whose pixel (x, y) is (x, y, 100, alpha(x)): alpha 0 on the left quarter, 255 on the
  /// right quarter, 128 between.
  static func alpha(_ x: Int) -> UInt8 { x < width / 4 ? 0 : x >= width * 3 / 4 ? 255 : 128 }

  static func frame(pts: UInt, duration: UInt) -> UnsafeMutablePointer<GstBuffer> {
    var bytes = [UInt8](repeating: 0, count: width * height * 4)
    for y in 0..<height {
      for x in 0..<width {
        let i = (y * width + x) * 4
        bytes[i] = UInt8(x); bytes[i + 1] = UInt8(y); bytes[i + 2] = 100; bytes[i + 3] = alpha(x)
      }
    }
    let buffer = gst_buffer_new_allocate(nil, UInt(bytes.count), nil)!
    _ = bytes.withUnsafeBytes { gst_buffer_fill(buffer, 0, $0.baseAddress, UInt(bytes.count)) }
    buffer.pointee.pts = pts
    buffer.pointee.duration = duration
    return buffer
  }

  /// Pushes frames with uneven timestamps through `alphaview layout=…`; returns the output frames,
  /// their timestamps and the negotiated output caps.
  func run(_ layout: String) throws -> (frames: [DecodedFrame], times: [(UInt, UInt)], caps: String) {
    _ = TestEnvironment.initialised
    let harness = gst_harness_new_parse("alphaview layout=\(layout)")!
    defer { gst_harness_teardown(harness) }
    gst_harness_set_src_caps_str(harness, "video/x-raw,format=RGBA,width=\(Self.width),height=\(Self.height),framerate=0/1")
    let times: [(UInt, UInt)] = [(0, 33_000_000), (33_000_000, 84_000_000), (117_000_000, 33_000_000)]
    var frames: [DecodedFrame] = [], out: [(UInt, UInt)] = []
    var caps = ""
    for (pts, duration) in times {
      XCTAssertEqual(gst_harness_push(harness, Self.frame(pts: pts, duration: duration)), GST_FLOW_OK)
      let output = try XCTUnwrap(gst_harness_pull(harness))
      defer { gst_buffer_unref(output) }
      let negotiated = gst_pad_get_current_caps(harness.pointee.sinkpad)!
      defer { gst_caps_unref(negotiated) }
      caps = String(cString: gst_caps_to_string(negotiated))
      frames.append(DecodedFrame(buffer: output, caps: negotiated))
      out.append((output.pointee.pts, output.pointee.duration))
    }
    XCTAssertEqual(out.map(\.0), times.map(\.0), "timestamps kept")
    XCTAssertEqual(out.map(\.1), times.map(\.1), "durations kept")
    return (frames, out, caps)
  }

  func testStackedPutsTheColourOnTopAndTheAlphaBelow() throws {
    let (frames, _, caps) = try run("stacked")
    XCTAssertTrue(caps.hasPrefix("video/x-raw, format=(string)RGBx, width=(int)40, height=(int)40"), caps)
    for frame in frames {
      for (x, y) in [(2, 3), (15, 7), (35, 19)] {
        XCTAssertEqual(frame.components(x, y).prefix(3).map { $0 }, [x, y, 100], "colour at \(x),\(y)")
        let a = Int(Self.alpha(x))
        XCTAssertEqual(frame.components(x, Self.height + y).prefix(3).map { $0 }, [a, a, a], "alpha at \(x),\(y)")
      }
    }
  }

  func testCheckerboardCompositesOverSixteenPixelSquares() throws {
    let (frames, _, caps) = try run("checkerboard")
    XCTAssertTrue(caps.hasPrefix("video/x-raw, format=(string)RGBx, width=(int)40, height=(int)20"), caps)
    for frame in frames {
      // Transparent: the board (204 where x/16 + y/16 is even, else 153).
      XCTAssertEqual(frame.components(2, 3).prefix(3).map { $0 }, [204, 204, 204])
      // Opaque: the picture.
      XCTAssertEqual(frame.components(35, 19).prefix(3).map { $0 }, [35, 19, 100])
      // Half: (c * 128 + board * 127 + 127) / 255 over the dark square at x 16..31, y 0..15.
      let half = { (c: Int) in (c * 128 + 153 * 127 + 127) / 255 }
      XCTAssertEqual(frame.components(20, 5).prefix(3).map { $0 }, [half(20), half(5), half(100)])
    }
  }

  func testOddStackedHeightsAndRefusedFormats() throws {
    _ = TestEnvironment.initialised
    // Anything but RGBA is refused at linking: alphaview reads straight alpha only.
    let run = runPipeline("videotestsrc num-buffers=1 ! video/x-raw,format=I420,width=32,height=16 ! alphaview ! fakesink")
    XCTAssertFalse(run.errors.isEmpty, "I420 cannot reach alphaview")
    let odd = runPipeline("videotestsrc num-buffers=2 ! video/x-raw,format=RGBA,width=33,height=17 ! alphaview ! "
                          + "video/x-raw,width=33,height=34 ! fakesink")
    XCTAssertEqual(odd.errors, [])
    XCTAssertTrue(odd.reachedEOS)
  }
}
