// The offline default model `selfie` (MediaPipe's selfie segmentation converted to TorchScript by
// models/selfie/convert_selfie.py) through the real element, on a real photo of a person:
// scikit-image's public-domain astronaut, generated at test time. Its matte must agree with
// MediaPipe's own mask of that photo (models/selfie/astronaut_reference_mask.png, threshold 0.5).
import CBackdropShim
import CGStreamer
import Foundation
import XCTest

struct PhotoError: Error, CustomStringConvertible { let description: String }

final class SelfieModelTests: XCTestCase {
  static let size = 512
  var directory: URL!
  var modelPath: String { TestEnvironment.packageRoot.appendingPathComponent("models/selfie/selfie.pt").path }

  override func setUpWithError() throws {
    guard FileManager.default.fileExists(atPath: modelPath) else {
      throw XCTSkip("\(modelPath) is missing: run scripts/setup-models.sh (it runs models/selfie/convert_selfie.py)")
    }
    directory = try TestEnvironment.temporaryDirectory()
  }

  override func tearDown() {
    if let directory { try? FileManager.default.removeItem(at: directory) }
  }

  /// The astronaut photo as raw RGB (512×512×3 bytes), written by models/selfie/make_astronaut_input.py.
  func writeAstronaut() throws -> String {
    let path = directory.appendingPathComponent("astronaut.rgb").path
    let script = TestEnvironment.packageRoot.appendingPathComponent("models/selfie/make_astronaut_input.py").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [script, path]
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw PhotoError(description: "cannot make the astronaut photo with /usr/bin/python3 and scikit-image "
        + "(Debian: python3-skimage): \(message)")
    }
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    XCTAssertEqual(bytes.count, Self.size * Self.size * 3, "raw RGB 512×512")
    return path
  }

  /// MediaPipe's mask decoded with GStreamer: 0 or 255 per pixel.
  func referenceMask() throws -> [UInt8] {
    let png = TestEnvironment.packageRoot.appendingPathComponent("models/selfie/astronaut_reference_mask.png").path
    let raw = directory.appendingPathComponent("reference.gray").path
    let run = runPipeline("filesrc location=\(png) ! pngdec ! videoconvert ! video/x-raw,format=GRAY8 ! filesink location=\(raw)")
    XCTAssertTrue(run.reachedEOS, "decoding \(png): \(run.errors)")
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
    XCTAssertEqual(bytes.count, Self.size * Self.size, "the reference mask is 512×512")
    return bytes
  }

  /// Runs the photo through birefnetmatte with the selfie model and returns the binary matte.
  func matte(photo: String, inferenceSize: Int, precision: String = "auto") throws -> [UInt8] {
    let raw = directory.appendingPathComponent("matte-\(inferenceSize)-\(precision).gray").path
    let run = runPipeline(
      "filesrc location=\(photo) ! rawvideoparse format=rgb width=\(Self.size) height=\(Self.size) framerate=1/1 ! "
        + "videoconvert ! birefnetmatte model-file=\(modelPath) device=cpu precision=\(precision) batch-size=1 "
        + "inference-width=\(inferenceSize) inference-height=\(inferenceSize) matte-mode=binary threshold=0.5 ! "
        + "video/x-raw,format=GRAY8 ! filesink location=\(raw)")
    XCTAssertTrue(run.reachedEOS, "selfie matte at \(inferenceSize)², precision \(precision): \(run.errors)")
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
    XCTAssertEqual(bytes.count, Self.size * Self.size, "one 512×512 GRAY8 matte")
    return bytes
  }

  func intersectionOverUnion(_ a: [UInt8], _ b: [UInt8]) -> (iou: Double, personFraction: Double) {
    var intersection = 0, union = 0, person = 0
    for i in 0..<min(a.count, b.count) {
      let x = a[i] >= 128, y = b[i] >= 128
      if x && y { intersection += 1 }
      if x || y { union += 1 }
      if x { person += 1 }
    }
    return (union == 0 ? 1 : Double(intersection) / Double(union), Double(person) / Double(max(a.count, 1)))
  }

  /// The element's own path: antialiased downscale to the network's 256², probabilities resized back.
  func testAstronautAt256MatchesMediaPipe() throws {
    let photo = try writeAstronaut()
    let reference = try referenceMask()
    let result = intersectionOverUnion(try matte(photo: photo, inferenceSize: 256), reference)
    print("selfie on the astronaut, inference 256x256: IoU \(String(format: "%.4f", result.iou)) with MediaPipe's mask, "
      + "person \(String(format: "%.1f", result.personFraction * 100)) % of the frame")
    XCTAssertGreaterThanOrEqual(result.iou, 0.98, "IoU with MediaPipe's mask at inference 256x256")
    XCTAssertGreaterThan(result.personFraction, 0.3, "the astronaut fills about half of the frame")
  }

  /// Inference at the frame's size: the model resamples to 256² itself as MediaPipe does, so the
  /// mask is MediaPipe's to within rounding.
  func testAstronautAtFrameSizeMatchesMediaPipe() throws {
    let photo = try writeAstronaut()
    let reference = try referenceMask()
    let result = intersectionOverUnion(try matte(photo: photo, inferenceSize: Self.size), reference)
    print("selfie on the astronaut, inference 512x512 (MediaPipe's own resampling inside the model): "
      + "IoU \(String(format: "%.4f", result.iou)) with MediaPipe's mask")
    XCTAssertGreaterThanOrEqual(result.iou, 0.995, "IoU with MediaPipe's mask at inference 512x512")
  }

  /// BF16 on a CPU with native BF16, measured on the one trained network at hand: the matte of a
  /// real photo stays fp32's within the issue's bound (IoU >= 0.998; measured 0.9987 on an
  /// AVX512-BF16 EPYC). The BiRefNet tests can only use synthetic weights, which amplify rounding.
  func testBF16OnTheCPUKeepsTheMatteOfARealPhoto() throws {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    guard cpuinfo.contains(" avx512_bf16") || cpuinfo.contains(" amx_bf16") else {
      throw XCTSkip("this CPU has no native BF16 (AVX512-BF16 or AMX), where precision=bf16 is refused")
    }
    let photo = try writeAstronaut()
    let fp32 = try matte(photo: photo, inferenceSize: 256, precision: "fp32")
    let bf16 = try matte(photo: photo, inferenceSize: 256, precision: "bf16")
    let result = intersectionOverUnion(bf16, fp32)
    print("selfie on the astronaut, bf16 against fp32 on the CPU: IoU \(String(format: "%.4f", result.iou))")
    XCTAssertGreaterThanOrEqual(result.iou, 0.998, "bf16's matte against fp32's")
    XCTAssertNotEqual(bf16, fp32, "bf16 must really compute in bf16")
  }
}
