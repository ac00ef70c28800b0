// vp9alphaenc's properties: names and meanings follow vp9enc where it has them; the alpha-*
// ones tune the second (alpha) encoder, which sees a mostly flat matte and can be much cheaper.
// Settings are read when the encoders are created (start / caps change); cpu-used and the
// bitrates are also applied to running encoders.
import CBackdropShim
import CGStreamer

struct VP9AlphaSettings: Sendable {
  var targetBitrate = 4_000_000  // bit/s
  var endUsage = BD_VP9_END_USAGE_VBR
  var cqLevel = 10
  var minQuantizer = 4
  var maxQuantizer = 63
  var keyframeMaxDist = 128
  var deadline = 1  // realtime
  var cpuUsed = 8
  var threads = 0  // 0 = one per core
  var rowMT = true
  var tileColumns = 2  // log2: 4 tile columns where the width allows
  var lagInFrames = 0
  var errorResilient = false
  var aqMode = 0
  var alphaTargetBitrate = 0  // 0 = a quarter of target-bitrate
  var alphaCqLevel = -1  // -1 = cq-level
  var alphaCpuUsed = 9
  var alphaLossless = false
  var alphaStaticThreshold = 0  // SAD per 16x16 block; -1 = code every block
  var skipTransparent = true

  var effectiveAlphaBitrate: Int { alphaTargetBitrate > 0 ? alphaTargetBitrate : max(targetBitrate / 4, 1000) }
  var effectiveAlphaCqLevel: Int { alphaCqLevel >= 0 ? alphaCqLevel : cqLevel }
}

enum VP9AlphaProperty: UInt32, CaseIterable {
  case targetBitrate = 1, endUsage, cqLevel, minQuantizer, maxQuantizer, keyframeMaxDist
  case deadline, cpuUsed, threads, rowMT, tileColumns, lagInFrames, errorResilient, aqMode
  case alphaTargetBitrate, alphaCqLevel, alphaCpuUsed, alphaLossless, alphaStaticThreshold
  case skipTransparent

  func paramSpec() -> UnsafeMutablePointer<GParamSpec>? {
    let anytime = bd_param_flags_mutable_playing()
    let atStart = bd_param_flags_mutable_ready()
    let d = VP9AlphaSettings()
    switch self {
    case .targetBitrate:
      return g_param_spec_int(
        "target-bitrate", "Target bitrate",
        "Target bitrate of the colour stream in bit/s (end-usage vbr/cbr/cq)", 0, Int32.max,
        Int32(d.targetBitrate), anytime)
    case .endUsage:
      return g_param_spec_enum(
        "end-usage", "Rate control mode", "Rate control mode of both encoders",
        bd_vp9_end_usage_get_type(), Int32(d.endUsage.rawValue), atStart)
    case .cqLevel:
      return g_param_spec_int(
        "cq-level", "Constrained quality level", "Quality level of the colour stream for end-usage cq/q (0-63, lower is better)",
        0, 63, Int32(d.cqLevel), atStart)
    case .minQuantizer:
      return g_param_spec_int(
        "min-quantizer", "Minimum quantizer", "Minimum (best) quantizer of both encoders", 0, 63,
        Int32(d.minQuantizer), atStart)
    case .maxQuantizer:
      return g_param_spec_int(
        "max-quantizer", "Maximum quantizer", "Maximum (worst) quantizer of both encoders", 0, 63,
        Int32(d.maxQuantizer), atStart)
    case .keyframeMaxDist:
      return g_param_spec_int(
        "keyframe-max-dist", "Keyframe max distance",
        "Maximum distance between keyframes in frames (0 = every frame). Keyframes are forced on "
          + "both streams at the same frames", 0, Int32.max, Int32(d.keyframeMaxDist), atStart)
    case .deadline:
      return g_param_spec_int64(
        "deadline", "Deadline",
        "Deadline per frame in microseconds (0 = best, 1 = realtime, 1000000 = good quality)",
        0, Int.max, d.deadline, anytime)
    case .cpuUsed:
      return g_param_spec_int(
        "cpu-used", "CPU used", "Speed of the colour encoder (-9..9, higher is faster)", -9, 9,
        Int32(d.cpuUsed), anytime)
    case .threads:
      return g_param_spec_int(
        "threads", "Threads", "Threads per encoder (0 = one per core)", 0, 64, Int32(d.threads),
        atStart)
    case .rowMT:
      return g_param_spec_boolean(
        "row-mt", "Row-based multithreading", "Encode rows of superblocks in parallel",
        d.rowMT ? 1 : 0, atStart)
    case .tileColumns:
      return g_param_spec_int(
        "tile-columns", "Tile columns", "Number of tile columns, log2 (limited by the width)",
        0, 6, Int32(d.tileColumns), atStart)
    case .lagInFrames:
      return g_param_spec_int(
        "lag-in-frames", "Lag in frames", "Frames the encoders may look ahead (0 = none, adds latency)",
        0, 25, Int32(d.lagInFrames), atStart)
    case .errorResilient:
      return g_param_spec_boolean(
        "error-resilient", "Error resilient", "Make the streams resilient to lost frames",
        d.errorResilient ? 1 : 0, atStart)
    case .aqMode:
      return g_param_spec_int(
        "aq-mode", "Adaptive quantization mode",
        "Adaptive quantization of the colour encoder (0 off, 1 variance, 2 complexity, 3 cyclic refresh, 4 equator360)",
        0, 4, Int32(d.aqMode), atStart)
    case .alphaTargetBitrate:
      return g_param_spec_int(
        "alpha-target-bitrate", "Alpha target bitrate",
        "Target bitrate of the alpha stream in bit/s (0 = a quarter of target-bitrate)", 0,
        Int32.max, Int32(d.alphaTargetBitrate), anytime)
    case .alphaCqLevel:
      return g_param_spec_int(
        "alpha-cq-level", "Alpha quality level",
        "Quality level of the alpha stream for end-usage cq/q (-1 = cq-level)", -1, 63,
        Int32(d.alphaCqLevel), atStart)
    case .alphaCpuUsed:
      return g_param_spec_int(
        "alpha-cpu-used", "Alpha CPU used", "Speed of the alpha encoder (-9..9, higher is faster)",
        -9, 9, Int32(d.alphaCpuUsed), anytime)
    case .alphaLossless:
      return g_param_spec_boolean(
        "alpha-lossless", "Lossless alpha", "Encode the alpha plane losslessly (larger files)",
        d.alphaLossless ? 1 : 0, atStart)
    case .alphaStaticThreshold:
      return g_param_spec_int(
        "alpha-static-threshold", "Alpha static threshold",
        "Skip 16x16 alpha blocks whose sum of absolute differences to the alpha last coded there "
          + "is at most this (0 = only unchanged blocks, -1 = code every block). Mattes are mostly "
          + "flat and still, so this makes the alpha stream cheap. Off with lag-in-frames > 0",
        -1, 16 * 16 * 255, Int32(d.alphaStaticThreshold), atStart)
    case .skipTransparent:
      return g_param_spec_boolean(
        "skip-transparent", "Skip transparent colour",
        "Do not code the colour of 16x16 blocks that are fully transparent (alpha 0) in this frame: "
          + "it stays as in an earlier frame. Saves time and bits; players that ignore alpha show "
          + "stale colour there. Off with lag-in-frames > 0",
        d.skipTransparent ? 1 : 0, atStart)
    }
  }
}

extension VP9AlphaSettings {
  mutating func set(_ property: VP9AlphaProperty, from value: UnsafePointer<GValue>) {
    switch property {
    case .targetBitrate: targetBitrate = Int(g_value_get_int(value))
    case .endUsage: endUsage = BdVp9EndUsage(UInt32(g_value_get_enum(value)))
    case .cqLevel: cqLevel = Int(g_value_get_int(value))
    case .minQuantizer: minQuantizer = Int(g_value_get_int(value))
    case .maxQuantizer: maxQuantizer = Int(g_value_get_int(value))
    case .keyframeMaxDist: keyframeMaxDist = Int(g_value_get_int(value))
    case .deadline: deadline = g_value_get_int64(value)
    case .cpuUsed: cpuUsed = Int(g_value_get_int(value))
    case .threads: threads = Int(g_value_get_int(value))
    case .rowMT: rowMT = g_value_get_boolean(value) != 0
    case .tileColumns: tileColumns = Int(g_value_get_int(value))
    case .lagInFrames: lagInFrames = Int(g_value_get_int(value))
    case .errorResilient: errorResilient = g_value_get_boolean(value) != 0
    case .aqMode: aqMode = Int(g_value_get_int(value))
    case .alphaTargetBitrate: alphaTargetBitrate = Int(g_value_get_int(value))
    case .alphaCqLevel: alphaCqLevel = Int(g_value_get_int(value))
    case .alphaCpuUsed: alphaCpuUsed = Int(g_value_get_int(value))
    case .alphaLossless: alphaLossless = g_value_get_boolean(value) != 0
    case .alphaStaticThreshold: alphaStaticThreshold = Int(g_value_get_int(value))
    case .skipTransparent: skipTransparent = g_value_get_boolean(value) != 0
    }
  }

  func get(_ property: VP9AlphaProperty, into value: UnsafeMutablePointer<GValue>) {
    switch property {
    case .targetBitrate: g_value_set_int(value, Int32(targetBitrate))
    case .endUsage: g_value_set_enum(value, Int32(endUsage.rawValue))
    case .cqLevel: g_value_set_int(value, Int32(cqLevel))
    case .minQuantizer: g_value_set_int(value, Int32(minQuantizer))
    case .maxQuantizer: g_value_set_int(value, Int32(maxQuantizer))
    case .keyframeMaxDist: g_value_set_int(value, Int32(keyframeMaxDist))
    case .deadline: g_value_set_int64(value, deadline)
    case .cpuUsed: g_value_set_int(value, Int32(cpuUsed))
    case .threads: g_value_set_int(value, Int32(threads))
    case .rowMT: g_value_set_boolean(value, rowMT ? 1 : 0)
    case .tileColumns: g_value_set_int(value, Int32(tileColumns))
    case .lagInFrames: g_value_set_int(value, Int32(lagInFrames))
    case .errorResilient: g_value_set_boolean(value, errorResilient ? 1 : 0)
    case .aqMode: g_value_set_int(value, Int32(aqMode))
    case .alphaTargetBitrate: g_value_set_int(value, Int32(alphaTargetBitrate))
    case .alphaCqLevel: g_value_set_int(value, Int32(alphaCqLevel))
    case .alphaCpuUsed: g_value_set_int(value, Int32(alphaCpuUsed))
    case .alphaLossless: g_value_set_boolean(value, alphaLossless ? 1 : 0)
    case .alphaStaticThreshold: g_value_set_int(value, Int32(alphaStaticThreshold))
    case .skipTransparent: g_value_set_boolean(value, skipTransparent ? 1 : 0)
    }
  }
}
