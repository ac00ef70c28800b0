// Pixel values for every output format and every background mode, with the luma-key model:
// bright pixels are the subject, dark pixels the background.
import CBackdropShim
import CGStreamer
import XCTest

final class OutputFormatTests: XCTestCase {
  let picture = TestPicture()
  let alphaFormats = ["RGBA", "BGRA", "A420"]
  let opaqueFormats = ["I420", "NV12", "RGBx", "BGRx", "RGB", "BGR"]

  func output(_ format: String, _ properties: [(String, String)] = [], picture: TestPicture? = nil) -> DecodedFrame? {
    let picture = picture ?? self.picture
    let harness = MatteHarness(
      properties: [("batch-size", "1")] + properties, inputCaps: picture.capsString,
      outputCaps: "video/x-raw,format=\(format)")
    return harness.process(picture)
  }

  // YUV output rounds through 4:2:0 and two conversions; RGB paths are exact.
  func tolerance(_ frame: DecodedFrame) -> Int { frame.isYUV ? 4 : 0 }

  func testNoBackgroundWritesTheMatteAsAlpha() throws {
    for format in alphaFormats {
      let frame = try XCTUnwrap(output(format), format)
      XCTAssertEqual(frame.format, format)
      for (x, y) in picture.subjectPoints {
        XCTAssertEqual(frame.alpha(x, y), 255, "\(format) alpha inside the subject at \(x),\(y)")
        assertClose(frame.rgb(x, y), RGB.bright, tolerance: tolerance(frame), "\(format) subject colour")
      }
      for (x, y) in picture.backgroundPoints {
        XCTAssertEqual(frame.alpha(x, y), 0, "\(format) alpha in the background at \(x),\(y)")
        // The colour under a transparent pixel is kept (straight alpha), not blacked out.
        assertClose(frame.rgb(x, y), RGB.dark, tolerance: tolerance(frame), "\(format) colour under alpha 0")
      }
    }
  }

  func testMatteOnlyIsGray8() throws {
    let frame = try XCTUnwrap(output("GRAY8"))
    for (x, y) in picture.subjectPoints { XCTAssertEqual(frame.components(x, y), [255]) }
    for (x, y) in picture.backgroundPoints { XCTAssertEqual(frame.components(x, y), [0]) }
  }

  func testNoBackgroundOnOpaqueFormatsCompositesOverBlack() throws {
    for format in opaqueFormats {
      let frame = try XCTUnwrap(output(format), format)
      for (x, y) in picture.subjectPoints {
        assertClose(frame.rgb(x, y), RGB.bright, tolerance: tolerance(frame), "\(format) subject")
      }
      for (x, y) in picture.backgroundPoints {
        assertClose(frame.rgb(x, y), RGB(r: 0, g: 0, b: 0), tolerance: tolerance(frame), "\(format) background")
      }
    }
  }

  func testGreenScreenInEveryFormat() throws {
    for format in alphaFormats + opaqueFormats {
      let frame = try XCTUnwrap(output(format, [("background", "green")]), format)
      for (x, y) in picture.subjectPoints {
        assertClose(frame.rgb(x, y), RGB.bright, tolerance: tolerance(frame), "\(format) subject on green")
      }
      for (x, y) in picture.backgroundPoints {
        assertClose(frame.rgb(x, y), RGB(r: 0, g: 255, b: 0), tolerance: tolerance(frame) + 2, "\(format) green background")
        if frame.hasAlpha { XCTAssertEqual(frame.alpha(x, y), 255, "\(format): a composite is opaque") }
      }
    }
  }

  func testColorBackground() throws {
    for format in ["RGBA", "I420"] {
      let frame = try XCTUnwrap(output(format, [("background", "color"), ("background-color", "0xff3366cc")]))
      for (x, y) in picture.backgroundPoints {
        assertClose(frame.rgb(x, y), RGB(r: 0x33, g: 0x66, b: 0xCC), tolerance: tolerance(frame), "\(format) colour background")
      }
      for (x, y) in picture.subjectPoints {
        assertClose(frame.rgb(x, y), RGB.bright, tolerance: tolerance(frame), "\(format) subject")
      }
    }
  }

  func testImageBackground() throws {
    let directory = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let image = directory.appendingPathComponent("backdrop.png").path
    // A solid orange picture at another size than the stream: it is scaled to the frame.
    let made = runPipeline(
      "videotestsrc num-buffers=1 pattern=solid-color foreground-color=0xffff8000 ! "
        + "video/x-raw,width=40,height=30 ! videoconvert ! pngenc ! filesink location=\(image)")
    XCTAssertTrue(made.reachedEOS, "could not make the test image: \(made.errors)")
    for format in ["RGBx", "NV12"] {
      let frame = try XCTUnwrap(output(format, [("background", "image"), ("background-image", image)]))
      for (x, y) in picture.backgroundPoints {
        assertClose(frame.rgb(x, y), RGB(r: 255, g: 128, b: 0), tolerance: tolerance(frame) + 1, "\(format) image background")
      }
      for (x, y) in picture.subjectPoints {
        assertClose(frame.rgb(x, y), RGB.bright, tolerance: tolerance(frame), "\(format) subject over the image")
      }
    }
  }

  func testBlurBackgroundAveragesTheBackground() throws {
    // Background stripes of 10 and 60 (both dark, so background): a blur evens them out to ~35.
    var striped = TestPicture()
    striped.background = { x, _ in x % 2 == 0 ? RGB(r: 10, g: 10, b: 10) : RGB(r: 60, g: 60, b: 60) }
    for format in ["RGB", "I420"] {
      let frame = try XCTUnwrap(output(format, [("background", "blur"), ("blur-radius", "3")], picture: striped))
      for (x, y) in [(3, 3), (4, 40), (60, 20)] {
        assertClose(frame.rgb(x, y), RGB(r: 35, g: 35, b: 35), tolerance: 5, "\(format) blurred background at \(x),\(y)")
      }
      for (x, y) in striped.subjectPoints {
        assertClose(frame.rgb(x, y), RGB.bright, tolerance: tolerance(frame), "\(format) subject stays sharp")
      }
    }
  }

  func testSoftMatteFollowsTheProbability() throws {
    // Luma 0.5 gives logit 0 → probability 0.5 → alpha 128 in soft mode, 255 in binary mode
    // (probability >= threshold 0.5), 0 with threshold 0.6.
    var mid = TestPicture()
    mid.background = { _, _ in RGB(r: 128, g: 128, b: 128) }  // luma 128/255 = 0.502
    let soft = try XCTUnwrap(output("GRAY8", [("matte-mode", "soft")], picture: mid))
    // 20 * (0.50196 - 0.5) = 0.039 → sigmoid 0.5098 → 130.
    XCTAssertEqual(soft.components(2, 2), [130])
    let binary = try XCTUnwrap(output("GRAY8", picture: mid))
    XCTAssertEqual(binary.components(2, 2), [255])
    let stricter = try XCTUnwrap(output("GRAY8", [("threshold", "0.6")], picture: mid))
    XCTAssertEqual(stricter.components(2, 2), [0])
  }

  func testYUVInputKeepsSubjectPixelsExactly() throws {
    // I420 in, A420 out with no backdrop: the colour planes pass through untouched.
    let harness = MatteHarness(properties: [("batch-size", "1")], inputCaps: "video/x-raw,format=I420,width=64,height=48,framerate=25/1",
                               outputCaps: "video/x-raw,format=A420")
    let size = 64 * 48 + 2 * 32 * 24
    var bytes = [UInt8](repeating: 128, count: size)
    for y in 0..<48 { for x in 0..<64 { bytes[y * 64 + x] = picture.isSubject(x, y) ? 200 : 30 } }
    let buffer = gst_buffer_new_allocate(nil, UInt(size), nil)!
    _ = bytes.withUnsafeBytes { gst_buffer_fill(buffer, 0, $0.baseAddress, UInt(size)) }
    buffer.pointee.pts = 0
    XCTAssertEqual(harness.push(buffer), GST_FLOW_OK)
    let output = try XCTUnwrap(harness.pullAvailable().first)
    defer { gst_buffer_unref(output) }
    let frame = harness.decode(output)
    XCTAssertEqual(frame.format, "A420")
    XCTAssertEqual(frame.components(32, 24), [200, 128, 128, 255])
    XCTAssertEqual(frame.components(2, 2), [30, 128, 128, 0])
  }
}
