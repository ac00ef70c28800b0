// birefnetmatte's properties: their definitions (names, blurbs, ranges, when they may change)
// and the settings value they read and write. Properties that shape the engine session take
// effect when the element starts; the compositing ones at the next batch.
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

struct MatteSettings: Sendable {
  var modelFile: String? = nil
  var device = "auto"
  var precision = BD_MATTE_PRECISION_AUTO
  var patchOrder = BD_MATTE_PATCH_ORDER_AUTO
  var modelOutput = BD_MATTE_MODEL_OUTPUT_LOGITS
  var batchSize = MatteSettings.defaultBatchSize
  var batchSizeWasSet = false
  var inferenceWidth = 512
  var inferenceHeight = 512
  var inferenceSizeWasSet = false
  var threads = 0
  var engineLibrary: String? = nil
  var threshold = 0.5
  var matteMode = BD_MATTE_MODE_BINARY
  var background = BD_MATTE_BACKGROUND_NONE
  var backgroundColor: UInt32 = 0xFF00_FF00  // ARGB, pure green
  var backgroundImage: String? = nil
  var backgroundFit = BD_MATTE_BACKGROUND_FIT_COVER
  var blurRadius = 12.0
  var batchTimeoutMs = 100
  var qos = true
  // temporal (issue 9)
  var temporalSmooth = MatteSettings.defaultTemporalSmooth
  var inferInterval = 1
  var skipSimilar = 0.0
  var sceneCutThreshold = MatteSettings.defaultSceneCutThreshold
  var temporalLookahead = false
  // spatial refinement (issue 9)
  var edgeRefine = BD_MATTE_EDGE_REFINE_GUIDED
  var foregroundEstimate = true
  var cascade = BD_MATTE_CASCADE_OFF
  var cascadeSize = 512
  // overlapped data path (issue 14)
  var inferenceQueue = MatteSettings.defaultInferenceQueue

  static let defaultBatchSize = 4
  /// Full batches that may wait for the inference thread (matte-bench, README).
  static let defaultInferenceQueue = 1
  /// History weight of the temporal stage: removes most boundary shimmer while the gates (flow
  /// confidence, certainty, agreement) keep moving edges on the current frame (see README).
  static let defaultTemporalSmooth = 0.8
  /// Histogram distance of a cut: half of the grey-level mass moved between two frames.
  static let defaultSceneCutThreshold = 0.3

  /// Batch size to use: live sources get batch 1 unless batch-size was set explicitly.
  func effectiveBatchSize(live: Bool) -> Int {
    live && !batchSizeWasSet ? 1 : batchSize
  }

  var compositeParams: bd_composite_params {
    var params = bd_composite_params()
    params.threshold = Float(threshold)
    params.soft = matteMode == BD_MATTE_MODE_SOFT ? 1 : 0
    switch background {
    case BD_MATTE_BACKGROUND_GREEN, BD_MATTE_BACKGROUND_COLOR: params.background = BD_BACKGROUND_COLOR
    case BD_MATTE_BACKGROUND_IMAGE: params.background = BD_BACKGROUND_IMAGE
    case BD_MATTE_BACKGROUND_BLUR: params.background = BD_BACKGROUND_BLUR
    default: params.background = BD_BACKGROUND_NONE
    }
    let color = backgroundColor
    params.color = (UInt8((color >> 16) & 0xFF), UInt8((color >> 8) & 0xFF), UInt8(color & 0xFF))
    params.blur_sigma = Float(blurRadius)
    params.temporal_smooth = Float(temporalSmooth)
    params.infer_interval = Int32(inferInterval)
    params.skip_similar_db = Float(skipSimilar)
    params.scene_cut_threshold = Float(sceneCutThreshold)
    // spatial refinement (issue 9)
    params.edge_refine = edgeRefine == BD_MATTE_EDGE_REFINE_GUIDED ? BD_EDGE_REFINE_GUIDED : BD_EDGE_REFINE_NONE
    params.foreground_estimate = foregroundEstimate ? 1 : 0
    params.cascade = cascade == BD_MATTE_CASCADE_AUTO ? BD_CASCADE_AUTO : BD_CASCADE_OFF
    params.cascade_size = Int32(cascadeSize)
    return params
  }
}

/// Parses the `device` property: auto, cpu, cuda or cuda:N.
func parseDevice(_ text: String) -> (bd_device_kind, Int32)? {
  switch text {
  case "auto": return (BD_DEVICE_AUTO, 0)
  case "cpu": return (BD_DEVICE_CPU, 0)
  case "cuda": return (BD_DEVICE_CUDA, 0)
  default:
    guard text.hasPrefix("cuda:"), let index = Int32(text.dropFirst(5)), index >= 0 else { return nil }
    return (BD_DEVICE_CUDA, index)
  }
}

enum MatteProperty: UInt32, CaseIterable {
  case modelFile = 1, device, precision, patchOrder, batchSize, inferenceWidth, inferenceHeight
  case threads, engineLibrary, threshold, matteMode, background, backgroundColor
  case backgroundImage, blurRadius, batchTimeout, qos, modelDescription, backgroundFit
  // temporal (issue 9)
  case temporalSmooth, inferInterval, skipSimilar, sceneCutThreshold, stats
  // spatial refinement (issue 9)
  case edgeRefine, foregroundEstimate, cascade, cascadeSize
  // overlapped data path (issue 14)
  case inferenceQueue
  // temporal (issue 9), after the spatial ones so that earlier property ids stay
  case temporalLookahead
  // models that end with a sigmoid, after the others so that earlier property ids stay
  case modelOutput

  func paramSpec() -> UnsafeMutablePointer<GParamSpec>? {
    let atStart = bd_param_flags_mutable_ready()
    let anytime = bd_param_flags_mutable_playing()
    let defaults = MatteSettings()
    switch self {
    case .modelFile:
      return g_param_spec_string(
        "model-file", "Model file",
        "Matting model: BiRefNet weights (.safetensors) or a TorchScript file taking "
          + "ImageNet-normalised RGB [B,3,H,W] and returning logits [B,1,H,W]. Required.",
        nil, atStart)
    case .device:
      return g_param_spec_string(
        "device", "Device",
        "Inference device: auto (CUDA when available, else CPU with a warning), cpu, cuda or cuda:N",
        defaults.device, atStart)
    case .precision:
      return g_param_spec_enum(
        "precision", "Precision", "Compute precision of the model (fp16 needs CUDA; bf16 needs CUDA or a CPU with AVX512-BF16/AMX)",
        bd_matte_precision_get_type(), Int32(defaults.precision.rawValue), atStart)
    case .patchOrder:
      return g_param_spec_enum(
        "patch-order", "Patch order",
        "Channel order of BiRefNet's image-patch inputs; weights trained before 2024-11 need legacy",
        bd_matte_patch_order_get_type(), Int32(defaults.patchOrder.rawValue), atStart)
    case .modelOutput:
      return g_param_spec_enum(
        "model-output", "Model output",
        "What a TorchScript model returns: logits (the contract; the element applies the sigmoid) or "
          + "probability (0-1, for models that end with their own sigmoid). A model whose output lies "
          + "within 0-1 while this is logits gets a WARNING",
        bd_matte_model_output_get_type(), Int32(defaults.modelOutput.rawValue), atStart)
    case .batchSize:
      return g_param_spec_uint(
        "batch-size", "Batch size",
        "Frames per inference call. Live sources use 1 unless this is set explicitly",
        1, 64, UInt32(defaults.batchSize), atStart)
    case .inferenceWidth:
      return g_param_spec_uint(
        "inference-width", "Inference width",
        "Width the model sees, in pixels (BiRefNet: a multiple of 32); unset: the size the model file prefers, else 512", 32, 4096,
        UInt32(defaults.inferenceWidth), atStart)
    case .inferenceHeight:
      return g_param_spec_uint(
        "inference-height", "Inference height",
        "Height the model sees, in pixels (BiRefNet: a multiple of 32); unset: the size the model file prefers, else 512", 32, 4096,
        UInt32(defaults.inferenceHeight), atStart)
    case .threads:
      return g_param_spec_uint(
        "threads", "Threads", "CPU threads for inference (0 = one per core)", 0, 1024,
        UInt32(defaults.threads), atStart)
    case .engineLibrary:
      return g_param_spec_string(
        "engine-library", "Engine library",
        "Path of libbackdrop-torch.so (default: $BACKDROP_ENGINE, then beside the plugin, "
          + "then the system library path)", nil, atStart)
    case .threshold:
      return g_param_spec_double(
        "threshold", "Threshold",
        "Binary matte: a pixel is foreground where the model's probability is at least this",
        0, 1, defaults.threshold, anytime)
    case .matteMode:
      return g_param_spec_enum(
        "matte-mode", "Matte mode", "Hard (thresholded) or soft (probability) matte",
        bd_matte_mode_get_type(), Int32(defaults.matteMode.rawValue), anytime)
    case .background:
      return g_param_spec_enum(
        "background", "Background",
        "What replaces the background. none writes the matte as alpha (RGBA, BGRA, A420) or "
          + "composites over black for formats without alpha",
        bd_matte_background_get_type(), Int32(defaults.background.rawValue), anytime)
    case .backgroundColor:
      return g_param_spec_uint(
        "background-color", "Background colour",
        "Colour for background=color and background=green, as 0xAARRGGBB (alpha ignored)",
        0, UInt32.max, defaults.backgroundColor, anytime)
    case .backgroundImage:
      return g_param_spec_string(
        "background-image", "Background image",
        "Image file for background=image (any format GStreamer decodes), fitted to the frame as background-fit says",
        nil, anytime)
    case .backgroundFit:
      return g_param_spec_enum(
        "background-fit", "Background fit",
        "How background-image meets a frame of another shape: cover (fill, crop the overflow), "
          + "contain (whole image, black bars) or stretch",
        bd_matte_background_fit_get_type(), Int32(defaults.backgroundFit.rawValue), anytime)
    case .blurRadius:
      return g_param_spec_double(
        "blur-radius", "Blur radius",
        "Strength of background=blur: Gaussian sigma in output pixels", 1, 500,
        defaults.blurRadius, anytime)
    case .batchTimeout:
      return g_param_spec_uint(
        "batch-timeout", "Batch timeout",
        "Live sources: process a partial batch once its oldest frame waited this many "
          + "milliseconds (0 = wait for a full batch)", 0, 60_000, UInt32(defaults.batchTimeoutMs),
        anytime)
    case .qos:
      return g_param_spec_boolean(
        "qos", "QoS", "Drop frames that would arrive too late downstream, before inference",
        defaults.qos ? 1 : 0, anytime)
    case .modelDescription:
      return g_param_spec_string(
        "model-description", "Model description",
        "What the engine loaded (kind, backbone, device, precision); empty until started", nil,
        bd_param_flags_read_only())
    // temporal (issue 9)
    case .temporalSmooth:
      return g_param_spec_double(
        "temporal-smooth", "Temporal smoothing",
        "Weight (0-0.95) of the previous matte, warped to the current frame by optical flow, in "
          + "each new matte; applied per pixel only where the flow is consistent and the new matte "
          + "differs by noise or is unsure, so still regions stop shimmering and moving edges do "
          + "not ghost. 0 = off",
        0, 0.95, defaults.temporalSmooth, anytime)
    case .inferInterval:
      return g_param_spec_uint(
        "infer-interval", "Inference interval",
        "Run the model on every k-th frame only; the frames between get the last matte carried "
          + "along by optical flow. A scene cut always runs the model. 1 = every frame",
        1, 1000, UInt32(defaults.inferInterval), anytime)
    case .skipSimilar:
      return g_param_spec_double(
        "skip-similar", "Skip similar frames",
        "Do not run the model while a frame is this similar (PSNR in dB of a small, block-averaged, "
          + "gain-normalised grey copy) to the last frame it ran on; the matte is carried by "
          + "optical flow. About 35 dB suits a fixed camera with a noisy sensor. 0 = off",
        0, 100, defaults.skipSimilar, anytime)
    case .sceneCutThreshold:
      return g_param_spec_double(
        "scene-cut-threshold", "Scene-cut threshold",
        "A frame whose gain-normalised grey-level histogram differs from the previous one by more "
          + "than this (0-1, half the L1 distance) is a scene cut: the model runs and the temporal state "
          + "starts afresh. Used when temporal-smooth, infer-interval or skip-similar is on. 0 = off",
        0, 1, defaults.sceneCutThreshold, anytime)
    case .temporalLookahead:
      return g_param_spec_boolean(
        "temporal-lookahead", "Temporal look-ahead",
        "Hold each frame until the next one has arrived and take, per pixel, the median of the "
          + "previous matte, this one and the next (both warped by optical flow, where the flow is "
          + "consistent): a matte that changes for a single frame only is replaced. Adds one frame "
          + "of latency",
        defaults.temporalLookahead ? 1 : 0, atStart)
    case .stats:
      return g_param_spec_boxed(
        "stats", "Statistics",
        "Counters since the element started, as a GstStructure \"stats\": frames, inferred "
          + "(frames the model ran on), skipped (mattes carried by optical flow), scene-cuts",
        gst_structure_get_type(), bd_param_flags_read_only())
    // spatial refinement (issue 9)
    case .edgeRefine:
      return g_param_spec_enum(
        "edge-refine", "Edge refinement",
        "How the inference-size matte is brought to the frame: guided (a guided filter steered by "
          + "the full-resolution frame, in the band where the matte is uncertain) or none (bilinear)",
        bd_matte_edge_refine_get_type(), Int32(defaults.edgeRefine.rawValue), anytime)
    case .foregroundEstimate:
      return g_param_spec_boolean(
        "foreground-estimate", "Foreground estimate",
        "Estimate the subject's own colour where it only partly covers a pixel (blur fusion), so that "
          + "composites and straight-alpha output carry no halo of the old background",
        defaults.foregroundEstimate ? 1 : 0, anytime)
    case .cascade:
      return g_param_spec_enum(
        "cascade", "Resolution cascade",
        "auto: on frames larger than the inference size, re-infer the tiles that hold the "
          + "uncertain band at a higher resolution in one extra batch and paste them in feathered",
        bd_matte_cascade_get_type(), Int32(defaults.cascade.rawValue), anytime)
    case .cascadeSize:
      return g_param_spec_uint(
        "cascade-size", "Cascade tile size",
        "Side of the cascade's square tiles in frame pixels; each is inferred at the inference "
          + "size (smaller tiles: finer detail, more tiles)", 64, 4096, UInt32(defaults.cascadeSize),
        anytime)
    case .inferenceQueue:
      return g_param_spec_uint(
        "inference-queue", "Inference queue",
        "Full batches that may wait for the element's inference thread, which runs the model and "
          + "pushes downstream while upstream decodes the next frames (upstream blocks when the "
          + "queue is full). 0 = no thread: the model runs on the upstream streaming thread",
        0, 16, UInt32(defaults.inferenceQueue), atStart)
    }
  }
}

extension MatteSettings {
  mutating func set(_ property: MatteProperty, from value: UnsafePointer<GValue>) {
    switch property {
    case .modelFile: modelFile = value.stringValue
    case .device: device = value.stringValue ?? "auto"
    case .precision: precision = BdMattePrecision(UInt32(g_value_get_enum(value)))
    case .patchOrder: patchOrder = BdMattePatchOrder(UInt32(g_value_get_enum(value)))
    case .modelOutput: modelOutput = BdMatteModelOutput(UInt32(g_value_get_enum(value)))
    case .batchSize:
      batchSize = Int(g_value_get_uint(value))
      batchSizeWasSet = true
    case .inferenceWidth:
      inferenceWidth = Int(g_value_get_uint(value))
      inferenceSizeWasSet = true
    case .inferenceHeight:
      inferenceHeight = Int(g_value_get_uint(value))
      inferenceSizeWasSet = true
    case .threads: threads = Int(g_value_get_uint(value))
    case .engineLibrary: engineLibrary = value.stringValue
    case .threshold: threshold = g_value_get_double(value)
    case .matteMode: matteMode = BdMatteMode(UInt32(g_value_get_enum(value)))
    case .background: background = BdMatteBackground(UInt32(g_value_get_enum(value)))
    case .backgroundColor: backgroundColor = g_value_get_uint(value)
    case .backgroundImage: backgroundImage = value.stringValue
    case .backgroundFit: backgroundFit = BdMatteBackgroundFit(UInt32(g_value_get_enum(value)))
    case .blurRadius: blurRadius = g_value_get_double(value)
    case .batchTimeout: batchTimeoutMs = Int(g_value_get_uint(value))
    case .qos: qos = g_value_get_boolean(value) != 0
    case .modelDescription: break
    case .temporalSmooth: temporalSmooth = g_value_get_double(value)
    case .inferInterval: inferInterval = Int(g_value_get_uint(value))
    case .skipSimilar: skipSimilar = g_value_get_double(value)
    case .sceneCutThreshold: sceneCutThreshold = g_value_get_double(value)
    case .temporalLookahead: temporalLookahead = g_value_get_boolean(value) != 0
    case .stats: break
    case .edgeRefine: edgeRefine = BdMatteEdgeRefine(UInt32(g_value_get_enum(value)))
    case .foregroundEstimate: foregroundEstimate = g_value_get_boolean(value) != 0
    case .cascade: cascade = BdMatteCascade(UInt32(g_value_get_enum(value)))
    case .cascadeSize: cascadeSize = Int(g_value_get_uint(value))
    case .inferenceQueue: inferenceQueue = Int(g_value_get_uint(value))
    }
  }

  func get(_ property: MatteProperty, into value: UnsafeMutablePointer<GValue>, modelDescription: String?) {
    switch property {
    case .modelFile: value.setString(modelFile)
    case .device: value.setString(device)
    case .precision: g_value_set_enum(value, Int32(precision.rawValue))
    case .patchOrder: g_value_set_enum(value, Int32(patchOrder.rawValue))
    case .modelOutput: g_value_set_enum(value, Int32(modelOutput.rawValue))
    case .batchSize: g_value_set_uint(value, UInt32(batchSize))
    case .inferenceWidth: g_value_set_uint(value, UInt32(inferenceWidth))
    case .inferenceHeight: g_value_set_uint(value, UInt32(inferenceHeight))
    case .threads: g_value_set_uint(value, UInt32(threads))
    case .engineLibrary: value.setString(engineLibrary)
    case .threshold: g_value_set_double(value, threshold)
    case .matteMode: g_value_set_enum(value, Int32(matteMode.rawValue))
    case .background: g_value_set_enum(value, Int32(background.rawValue))
    case .backgroundColor: g_value_set_uint(value, backgroundColor)
    case .backgroundImage: value.setString(backgroundImage)
    case .backgroundFit: g_value_set_enum(value, Int32(backgroundFit.rawValue))
    case .blurRadius: g_value_set_double(value, blurRadius)
    case .batchTimeout: g_value_set_uint(value, UInt32(batchTimeoutMs))
    case .qos: g_value_set_boolean(value, qos ? 1 : 0)
    case .modelDescription: value.setString(modelDescription)
    case .temporalSmooth: g_value_set_double(value, temporalSmooth)
    case .inferInterval: g_value_set_uint(value, UInt32(inferInterval))
    case .skipSimilar: g_value_set_double(value, skipSimilar)
    case .sceneCutThreshold: g_value_set_double(value, sceneCutThreshold)
    case .temporalLookahead: g_value_set_boolean(value, temporalLookahead ? 1 : 0)
    case .stats: break  // answered by the element (MatteStats.swift)
    case .edgeRefine: g_value_set_enum(value, Int32(edgeRefine.rawValue))
    case .foregroundEstimate: g_value_set_boolean(value, foregroundEstimate ? 1 : 0)
    case .cascade: g_value_set_enum(value, Int32(cascade.rawValue))
    case .cascadeSize: g_value_set_uint(value, UInt32(cascadeSize))
    case .inferenceQueue: g_value_set_uint(value, UInt32(inferenceQueue))
    }
  }
}
