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

  @Option(name: .long, help: "Compute precision: auto, fp32, fp16 (CUDA) or bf16 (CUDA, or a CPU with AVX512-BF16).")
  var precision: String = "auto"

  @Option(name: .long, help: ArgumentHelp("What a TorchScript model returns: logits (the default, as BiRefNet) or probability (0-1: the model ends with its own sigmoid).", valueName: "logits|probability"))
  var modelOutput: String?

  @Option(name: .long, help: "Frames per inference call (1-64; default 4, live sources 1).")
  var batchSize: Int?

  @Option(name: .long, help: ArgumentHelp("Size the model sees (default: the registry's size for a name; for a file, the size it records, else 512x512).", valueName: "WxH"))
  var size: String?

  @Option(name: .long, help: "Binary matte: foreground where the probability is at least this (0-1, default 0.5).")
  var threshold: Double?

  @Flag(name: .long, help: "Soft matte: alpha is the model's probability instead of a threshold.")
  var soft = false

  @Option(name: .long, help: "CPU threads for inference (default: one per core).")
  var threads: Int?

  @Option(name: .long, help: ArgumentHelp("How --background image:PATH meets another shape: cover (fill, crop; the default), contain (black bars) or stretch.", valueName: "FIT"))
  var backgroundFit: String?

  // temporal (issue 9)
  @Option(name: .long, help: ArgumentHelp("Weight (0-0.95) of the previous matte, carried by optical flow, in each new one: steadier mattes on video; 0 = off (default per model: selfie 0.8, BiRefNet 0.6).", valueName: "W"))
  var temporalSmooth: Double?

  @Option(name: .long, help: ArgumentHelp("Run the model on every K-th frame only; the frames between get its matte carried by optical flow (default 1).", valueName: "K"))
  var inferInterval: Int?

  @Option(name: .long, help: ArgumentHelp("Skip the model while a frame is at least this similar (PSNR in dB) to the last one it ran on; ~35 for a fixed camera; 0 = off (default).", valueName: "DB"))
  var skipSimilar: Double?

  @Option(name: .long, help: ArgumentHelp("Grey-histogram change (0-1) that counts as a scene cut: the model runs and the temporal state restarts; 0 = off (default 0.3).", valueName: "T"))
  var sceneCutThreshold: Double?

  @Flag(name: .long, help: "Hold each frame until the next has arrived and replace a matte that changes for one frame only (one frame more latency; default: off).")
  var temporalLookahead = false

  // spatial refinement (issue 9)
  @Option(name: .long, help: ArgumentHelp("How the matte reaches the frame size: guided (a guided filter steered by the frame, in the uncertain band; default) or none (bilinear).", valueName: "none|guided"))
  var edgeRefine: String?

  @Flag(name: .long, inversion: .prefixedNo, help: "Estimate the subject's own colour at soft edges, so composites and transparent output carry no halo of the old background (default: on).")
  var foregroundEstimate: Bool?

  @Option(name: .long, help: ArgumentHelp("Resolution cascade: auto re-infers the uncertain band in tiles at a higher resolution when the frame is larger than the model's size (default: auto for BiRefNet on CUDA, otherwise off; selfie sees whole people, not tiles).", valueName: "off|auto"))
  var cascade: String?

  @Option(name: .long, help: ArgumentHelp("Side of the cascade's square tiles in frame pixels, 64-4096 (default 512).", valueName: "PIXELS"))
  var cascadeSize: Int?

  func validateValues() throws {
    if !["auto", "fp32", "fp16", "bf16"].contains(precision) {
      throw LauncherError.usage("--precision \(precision): expected auto, fp32, fp16 or bf16")
    }
    if let modelOutput, !["logits", "probability"].contains(modelOutput) {
      throw LauncherError.usage("--model-output \(modelOutput): expected logits or probability")
    }
    if let batchSize, !(1...64).contains(batchSize) {
      throw LauncherError.usage("--batch-size \(batchSize): expected 1 to 64")
    }
    if let threshold, !(0...1).contains(threshold) {
      throw LauncherError.usage("--threshold \(threshold): expected a number from 0 to 1")
    }
    if soft && threshold != nil { throw LauncherError.usage("--soft and --threshold exclude each other") }
    if let threads, threads < 0 { throw LauncherError.usage("--threads \(threads): expected 0 or more") }
    if let backgroundFit, !["cover", "contain", "stretch"].contains(backgroundFit) {
      throw LauncherError.usage("--background-fit \(backgroundFit): expected cover, contain or stretch")
    }
    if let temporalSmooth, !(0...0.95).contains(temporalSmooth) {
      throw LauncherError.usage("--temporal-smooth \(temporalSmooth): expected a number from 0 to 0.95")
    }
    if let inferInterval, !(1...1000).contains(inferInterval) {
      throw LauncherError.usage("--infer-interval \(inferInterval): expected 1 to 1000")
    }
    if let skipSimilar, !(0...100).contains(skipSimilar) {
      throw LauncherError.usage("--skip-similar \(skipSimilar): expected a PSNR from 0 (off) to 100 dB")
    }
    if let sceneCutThreshold, !(0...1).contains(sceneCutThreshold) {
      throw LauncherError.usage("--scene-cut-threshold \(sceneCutThreshold): expected a number from 0 (off) to 1")
    }
    if let edgeRefine, !["none", "guided"].contains(edgeRefine) {
      throw LauncherError.usage("--edge-refine \(edgeRefine): expected none or guided")
    }
    if let cascade, !["off", "auto"].contains(cascade) {
      throw LauncherError.usage("--cascade \(cascade): expected off or auto")
    }
    if let cascadeSize, !(64...4096).contains(cascadeSize) {
      throw LauncherError.usage("--cascade-size \(cascadeSize): expected 64 to 4096 pixels")
    }
    _ = try parsedSize()
  }

  func parsedSize() throws -> (Int, Int)? {
    try size.map(parseInferenceSize)
  }

  /// The element's properties for these options and a resolved model.
  func properties(model resolved: ResolvedModel, device: String, batchTimeoutMs: Int? = nil) throws -> [String] {
    let (width, height) = try parsedSize() ?? (resolved.width, resolved.height)
    var list = ["model-file=\(gstQuote(resolved.path))"]
    if width > 0 && height > 0 { list += ["inference-width=\(width)", "inference-height=\(height)"] }
    if device != "auto" { list.append("device=\(device)") }
    if precision != "auto" { list.append("precision=\(precision)") }
    if let batchSize { list.append("batch-size=\(batchSize)") }
    if let threads { list.append("threads=\(threads)") }
    if let order = resolved.patchOrder, ["current", "legacy"].contains(order) { list.append("patch-order=\(order)") }
    if let modelOutput, modelOutput != "logits" { list.append("model-output=\(modelOutput)") }
    if soft { list.append("matte-mode=soft") }
    if let threshold { list.append("threshold=\(threshold)") }
    if let batchTimeoutMs { list.append("batch-timeout=\(batchTimeoutMs)") }
    if let backgroundFit { list.append("background-fit=\(backgroundFit)") }
    list += temporalProperties(model: resolved)
    list += spatialProperties(model: resolved, device: device)
    return list
  }

  /// Temporal history weight when --temporal-smooth is not given. selfie (a small, fast model whose
  /// binary matte shimmers at the boundary) gets the element's default 0.8, measured on synthetic
  /// clips and real footage (README); BiRefNet's band of uncertainty is narrower and its hair detail
  /// finer, so it keeps less history.
  static func defaultTemporalSmooth(model: ResolvedModel) -> Double {
    model.path.hasSuffix(".safetensors") ? 0.6 : 0.8
  }

  func temporalProperties(model: ResolvedModel) -> [String] {
    var list = ["temporal-smooth=\(temporalSmooth ?? MatteOptions.defaultTemporalSmooth(model: model))"]
    if let inferInterval { list.append("infer-interval=\(inferInterval)") }
    if let skipSimilar { list.append("skip-similar=\(skipSimilar)") }
    if let sceneCutThreshold { list.append("scene-cut-threshold=\(sceneCutThreshold)") }
    if temporalLookahead { list.append("temporal-lookahead=true") }
    return list
  }

  /// Edge refinement, foreground colour and cascade (issue 9). Only what differs from the
  /// element's defaults (edge-refine=guided, foreground-estimate=true, cascade=off) is written.
  /// The cascade suits BiRefNet, which segments whatever salient object a tile shows, and costs
  /// extra forwards: on by default only for BiRefNet weights on CUDA. The selfie model looks for a
  /// whole person and would misread a tile of hair, so it keeps one pass.
  func spatialProperties(model resolved: ResolvedModel, device: String) -> [String] {
    var list: [String] = []
    if let edgeRefine, edgeRefine != "guided" { list.append("edge-refine=\(edgeRefine)") }
    if foregroundEstimate == false { list.append("foreground-estimate=false") }
    let isBiRefNet = resolved.path.hasSuffix(".safetensors")
    let cascadeMode = cascade ?? (isBiRefNet && device.hasPrefix("cuda") ? "auto" : "off")
    if cascadeMode != "off" { list.append("cascade=\(cascadeMode)") }
    if let cascadeSize { list.append("cascade-size=\(cascadeSize)") }
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
