// A photo given to `backdrop compose`: its cutout is one picture, `-o cutout.png`. Before, a
// NAME.png output was refused (PNG output had to be a numbered sequence) and a video output of a
// photo was a file of duration 0. GIFs are refused with what to do: GStreamer 1.22's GIF decoder
// repeats the frames forever, so `compose anim.gif` never ended.
//
// The picture: SMPTE colour bars, 160×96, as JPEG, PNG and WebP. With the luma-key model the white
// bar (x 10) is the subject and the blue bar (x 150) the background.
import Foundation
import XCTest

final class PictureInputTests: XCTestCase {
  static let width = 160, height = 96
  var directory: URL!
  var model: String { Launcher.designedModel("lumakey") }
  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    try gstLaunch(["videotestsrc", "num-buffers=1", "pattern=smpte", "!", "video/x-raw,width=\(Self.width),height=\(Self.height)", "!",
                   "jpegenc", "quality=95", "!", "filesink", "location=\(path("photo.jpg"))"])
    try gstLaunch(["videotestsrc", "num-buffers=1", "pattern=smpte", "!", "video/x-raw,width=\(Self.width),height=\(Self.height)", "!",
                   "videoconvert", "!", "pngenc", "!", "filesink", "location=\(path("photo.png"))"])
    let webp = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg", ["-v", "error", "-i", path("photo.png"), path("photo.webp")])
    XCTAssertEqual(webp.status, 0, webp.stderr)
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func backdrop(_ arguments: [String]) throws -> RunResult {
    try runProgram(Launcher.executable, arguments, environment: Launcher.environment(cache: directory.appendingPathComponent("cache")))
  }

  /// The PNG's pixels as ffmpeg decodes them (`pixelFormat` rgba or rgb24) and its own pixel format.
  func pixels(_ png: String, _ pixelFormat: String) throws -> (format: String, bytes: [UInt8]) {
    let probe = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe",
                               ["-v", "error", "-show_entries", "stream=pix_fmt,width,height", "-of", "csv=p=0", png])
    let raw = path(UUID().uuidString + ".raw")
    let result = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg", ["-v", "error", "-i", png, "-f", "rawvideo", "-pix_fmt", pixelFormat, raw])
    XCTAssertEqual(result.status, 0, result.stderr)
    return (probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines), [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw))))
  }

  func testAPhotoBecomesOneCutoutPicture() throws {
    for input in ["photo.jpg", "photo.png", "photo.webp"] {
      let cutout = path("cutout-\(input).png")
      let result = try backdrop(["compose", path(input), "-o", cutout, "--model", model, "-q"])
      XCTAssertEqual(result.status, 0, "\(input): \(result.stderr)")
      let (format, rgba) = try pixels(cutout, "rgba")
      XCTAssertEqual(format, "\(Self.width),\(Self.height),rgba", input)
      XCTAssertEqual(rgba.count, Self.width * Self.height * 4, "\(input): one picture")
      func pixel(_ x: Int, _ y: Int) -> [Int] { (0..<4).map { Int(rgba[(y * Self.width + x) * 4 + $0]) } }
      XCTAssertEqual(pixel(10, 30)[3], 255, "\(input): the white bar is kept: \(pixel(10, 30))")
      XCTAssertTrue(pixel(10, 30)[0...2].allSatisfy { $0 > 220 }, "\(input): in its colour: \(pixel(10, 30))")
      XCTAssertEqual(pixel(150, 30)[3], 0, "\(input): the blue bar is cut away: \(pixel(150, 30))")
      XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".partial") }, [])
    }
    // With a backdrop: the composite, RGB.
    let green = path("green.png")
    let result = try backdrop(["compose", path("photo.jpg"), "-o", green, "--model", model, "--background", "green", "-q"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let (format, rgb) = try pixels(green, "rgb24")
    XCTAssertEqual(format, "\(Self.width),\(Self.height),rgb24")
    let blueBar = (30 * Self.width + 150) * 3
    XCTAssertEqual(Array(rgb[blueBar..<blueBar + 3]).map(Int.init), [0, 255, 0], "the background is green")
  }

  /// --model-output probability: a model that ends with its own sigmoid (probkey.pt returns the
  /// soft key's probability) is read as it is meant; without it, the launcher passes on the
  /// element's warning in its own words and the matte keeps everything.
  func testModelOutputProbabilityReadsAModelWithItsOwnSigmoid() throws {
    let probkey = Launcher.designedModel("probkey")
    func alphas(_ extra: [String]) throws -> (blue: Int, white: Int, stderr: String) {
      let cutout = path("cutout-\(extra.count).png")
      let result = try backdrop(["compose", path("photo.png"), "-o", cutout, "--model", probkey] + extra)
      XCTAssertEqual(result.status, 0, result.stderr)
      let (_, rgba) = try pixels(cutout, "rgba")
      return (Int(rgba[(30 * Self.width + 150) * 4 + 3]), Int(rgba[(30 * Self.width + 10) * 4 + 3]), result.stderr)
    }
    let meant = try alphas(["--model-output", "probability"])
    XCTAssertEqual([meant.white, meant.blue], [255, 0], "the white bar kept, the blue one cut away")
    XCTAssertFalse(meant.stderr.contains("warning"), meant.stderr)
    let misread = try alphas([])
    XCTAssertEqual([misread.white, misread.blue], [255, 255], "read as logits, every pixel is unsure foreground")
    XCTAssertTrue(misread.stderr.contains("backdrop: warning: matte: model-file \(probkey) returned values between 0 and 1 only, "
                                          + "in all 1 frame(s) so far"), misread.stderr)
    XCTAssertTrue(misread.stderr.contains("If the model ends with a sigmoid, pass --model-output probability."), misread.stderr)
    let typo = try backdrop(["compose", path("photo.png"), "-o", path("x.png"), "--model", probkey, "--model-output", "probabilty"])
    XCTAssertEqual(typo.status, 64)
    XCTAssertTrue(typo.stderr.contains("--model-output probabilty: expected logits or probability"), typo.stderr)
  }

  /// A phone photo stored sideways says how to show it in its EXIF orientation (6: turn 90°
  /// clockwise), which viewers apply: the cutout is upright as a viewer showed the photo. decodebin
  /// alone (jpegdec without jpegparse) never read it, and the cutout stayed sideways.
  func testAPhotosEXIFOrientationIsApplied() throws {
    let sideways = path("sideways.jpg")
    try gstLaunch(["videotestsrc", "num-buffers=1", "pattern=smpte", "!", "video/x-raw,width=\(Self.width),height=\(Self.height)", "!",
                   "jpegenc", "quality=95", "!", "taginject", "tags=image-orientation=rotate-90", "!", "jifmux", "!",
                   "filesink", "location=\(sideways)"])
    let cutout = path("upright.png")
    let result = try backdrop(["compose", sideways, "-o", cutout, "--model", model, "-q"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let (format, rgba) = try pixels(cutout, "rgba")
    XCTAssertEqual(format, "\(Self.height),\(Self.width),rgba", "portrait, as a viewer shows it")
    // Stored (x, y) is shown at (95 - y, x): the white bar (10, 30) at (65, 10), the blue bar (150, 30) at (65, 150).
    func alpha(_ x: Int, _ y: Int) -> Int { Int(rgba[(y * Self.height + x) * 4 + 3]) }
    XCTAssertEqual(alpha(65, 10), 255, "the white bar, kept, at the top")
    XCTAssertEqual(alpha(65, 150), 0, "the blue bar, cut away, at the bottom")
  }

  /// A contact sheet of a photo has one row, not the same row --frames times.
  func testAPhotosContactSheetHasOneRow() throws {
    let sheet = path("sheet.png")
    let result = try backdrop(["preview", path("photo.jpg"), "-o", sheet, "--model", model, "--frames", "3"])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertTrue(result.stderr.contains("1 frame (original | matte | composite) → \(sheet)"), result.stderr)
    let probe = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe",
                               ["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", sheet])
    let size = probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
    XCTAssertEqual(size.count, 2, probe.stdout)
    // Three tiles side by side, each 160:96: one row is far wider than tall.
    XCTAssertGreaterThan(size[0], 4 * size[1], "one row: \(size)")
  }

  func testAPhotoIsNotMadeIntoAVideoAndAVideoNotIntoOnePicture() throws {
    for output in ["still.mp4", "still.webm", "still.mov"] {
      let result = try backdrop(["compose", path("photo.jpg"), "-o", path(output), "--model", model])
      XCTAssertEqual(result.status, 64, "\(output): \(result.stderr)")
      XCTAssertTrue(result.stderr.contains("photo.jpg is a single picture: write the cutout as a picture, -o NAME.png"), result.stderr)
      XCTAssertFalse(FileManager.default.fileExists(atPath: path(output)))
    }
    try ComposeTests.makeClip(path("clip.webm"), frames: 3, width: Self.width, height: Self.height, fps: 10, pattern: "smpte")
    let video = try backdrop(["compose", path("clip.webm"), "-o", path("frame.png"), "--model", model])
    XCTAssertEqual(video.status, 64, video.stderr)
    XCTAssertTrue(video.stderr.contains("frame.png: PNG output of a video is a frame sequence: name the files with one number pattern, "
                                        + "e.g. frames/%05d.png"), video.stderr)
  }

  func testAGIFIsRefusedWithWhatToDo() throws {
    let gif = path("anim.gif")
    let made = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x96:rate=10:d=1", gif])
    XCTAssertEqual(made.status, 0, made.stderr)
    let result = try backdrop(["compose", gif, "-o", path("anim.webm"), "--model", model])
    XCTAssertEqual(result.status, 65, result.stderr)
    XCTAssertTrue(result.stderr.contains("anim.gif is a GIF, which GStreamer 1.22 here cannot read to its end"), result.stderr)
    XCTAssertTrue(result.stderr.contains("convert it first, e.g. ffmpeg -i anim.gif -pix_fmt yuv420p anim.mp4"), result.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: path("anim.webm")))
  }
}
