// Options shared by the commands that run birefnetmatte, mapped onto the element's properties.
import ArgumentParser
import Foundation

extension Background {
  /// birefnetmatte properties, as gst-launch-1.0 writes them.
  var properties: [String] {
    switch self {
    case .none: return ["background=none"]
    case .green: return ["background=green"]
    case .color(let argb): return ["background=color", "background-color=\(String(format: "0x%08X", argb))"]
    case .image(let path): return ["background=image", "background-image=\(gstQuote(path))"]
    case .blur(let strength): return ["background=blur"] + (strength.map { ["blur-radius=\($0)"] } ?? [])
    }
  }
}

struct MatteOptions: ParsableArguments {
  @Option(name: .long, help: ArgumentHelp("Model: a registry name (see `backdrop models list`) or a file (.pt TorchScript, .safetensors BiRefNet).", valueName: "NAME|PATH"))
  var model: String = "selfie"

  @Option(name: .long, help: "Compute precision: auto, fp32, fp16 or bf16 (the last two need CUDA).")
  var precision: String = "auto"

  @Option(name: .long, help: "Frames per inference call (1-64; default 4, live sources 1).")
  var batchSize: Int?

  @Option(name: .long, help: ArgumentHelp("Size the model sees (default: the model's native size, 512x512 for a file).", valueName: "WxH"))
  var size: String?

  @Option(name: .long, help: "Binary matte: foreground where the probability is at least this (0-1, default 0.5).")
  var threshold: Double?

  @Flag(name: .long, help: "Soft matte: alpha is the model's probability instead of a threshold.")
  var soft = false

  @Option(name: .long, help: "CPU threads for inference (default: one per core).")
  var threads: Int?

  func validateValues() throws {
    if !["auto", "fp32", "fp16", "bf16"].contains(precision) {
      throw LauncherError.usage("--precision \(precision): expected auto, fp32, fp16 or bf16")
    }
    if let batchSize, !(1...64).contains(batchSize) {
      throw LauncherError.usage("--batch-size \(batchSize): expected 1 to 64")
    }
    if let threshold, !(0...1).contains(threshold) {
      throw LauncherError.usage("--threshold \(threshold): expected a number from 0 to 1")
    }
    if soft && threshold != nil { throw LauncherError.usage("--soft and --threshold exclude each other") }
    if let threads, threads < 0 { throw LauncherError.usage("--threads \(threads): expected 0 or more") }
    _ = try parsedSize()
  }

  func parsedSize() throws -> (Int, Int)? {
    try size.map(parseInferenceSize)
  }

  /// The element's properties for these options and a resolved model.
  func properties(model resolved: ResolvedModel, device: String, batchTimeoutMs: Int? = nil) throws -> [String] {
    let (width, height) = try parsedSize() ?? (resolved.width, resolved.height)
    var list = ["model-file=\(gstQuote(resolved.path))", "inference-width=\(width)", "inference-height=\(height)"]
    if device != "auto" { list.append("device=\(device)") }
    if precision != "auto" { list.append("precision=\(precision)") }
    if let batchSize { list.append("batch-size=\(batchSize)") }
    if let threads { list.append("threads=\(threads)") }
    if let order = resolved.patchOrder, ["current", "legacy"].contains(order) { list.append("patch-order=\(order)") }
    if soft { list.append("matte-mode=soft") }
    if let threshold { list.append("threshold=\(threshold)") }
    if let batchTimeoutMs { list.append("batch-timeout=\(batchTimeoutMs)") }
    return list
  }
}

/// The inference device (`camera` calls it --inference-device: there --device is the camera).
func validateInferenceDevice(_ device: String, option: String = "--device") throws {
  if !["auto", "cpu", "cuda"].contains(device) && !(device.hasPrefix("cuda:") && Int(device.dropFirst(5)) != nil) {
    throw LauncherError.usage("\(option) \(device): expected auto, cpu, cuda or cuda:N")
  }
}

/// Progress and output options shared by the commands that run a pipeline.
struct OutputOptions: ParsableArguments {
  @Flag(name: .shortAndLong, help: "No progress and no summary line (errors are still printed).")
  var quiet = false

  @Flag(name: .long, help: "Progress as JSON events on stdout, one object per line (start, progress, warning, done, error).")
  var json = false

  @Flag(name: .long, help: "Print the equivalent gst-launch-1.0 command line and exit.")
  var printPipeline = false
}
