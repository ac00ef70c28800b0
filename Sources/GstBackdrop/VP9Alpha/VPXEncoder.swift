// One libvpx VP9 encoder: configuration, encode calls and the packets they produce. vp9alphaenc
// runs two of these in lock-step (colour and alpha). The unsafe libvpx interop lives here.
import CBackdropShim
import CGStreamer
import CVPX

struct VPXError: Error, CustomStringConvertible {
  let description: String
}

/// What one encoder is configured with (derived from VP9AlphaSettings for each stream).
struct VPXStreamConfig {
  var width: Int
  var height: Int
  var timebase: (num: Int32, den: Int32)
  var endUsage: BdVp9EndUsage
  var bitrate: Int  // bit/s
  var cqLevel: Int
  var minQuantizer: Int
  var maxQuantizer: Int
  var cpuUsed: Int
  var threads: Int
  var rowMT: Bool
  var tileColumns: Int
  var lagInFrames: Int
  var errorResilient: Bool
  var aqMode: Int
  var lossless: Bool
  var name: String
}

/// A compressed frame taken out of libvpx (copied into a GstBuffer).
struct VPXPacket {
  let buffer: UnsafeMutablePointer<GstBuffer>
  let pts: Int64
  let isKeyframe: Bool
}

final class VPXEncoder {
  private let context: UnsafeMutablePointer<vpx_codec_ctx_t>
  private var open = false
  let config: VPXStreamConfig

  init(_ config: VPXStreamConfig) throws {
    self.config = config
    context = .allocate(capacity: 1)
    context.initialize(to: vpx_codec_ctx_t())
    var cfg = vpx_codec_enc_cfg_t()
    var status = bd_vpx_vp9_config_default(&cfg)
    // Every stored property is set, so deinit runs (and frees the context) if init throws.
    guard status == 0 else {
      throw VPXError(description: "libvpx has no VP9 encoder configuration (error \(status))")
    }
    cfg.g_w = UInt32(config.width)
    cfg.g_h = UInt32(config.height)
    cfg.g_timebase = vpx_rational(num: config.timebase.num, den: config.timebase.den)
    cfg.g_threads = UInt32(config.threads)
    cfg.g_lag_in_frames = UInt32(config.lagInFrames)
    cfg.g_error_resilient = config.errorResilient ? UInt32(VPX_ERROR_RESILIENT_DEFAULT) : 0
    cfg.g_pass = VPX_RC_ONE_PASS
    cfg.rc_dropframe_thresh = 0  // never drop: colour and alpha packets must stay paired
    cfg.rc_resize_allowed = 0
    switch config.endUsage {
    case BD_VP9_END_USAGE_CBR: cfg.rc_end_usage = VPX_CBR
    case BD_VP9_END_USAGE_CQ: cfg.rc_end_usage = VPX_CQ
    case BD_VP9_END_USAGE_Q: cfg.rc_end_usage = VPX_Q
    default: cfg.rc_end_usage = VPX_VBR
    }
    cfg.rc_target_bitrate = UInt32(max(1, config.bitrate / 1000))
    cfg.rc_min_quantizer = UInt32(config.lossless ? 0 : config.minQuantizer)
    cfg.rc_max_quantizer = UInt32(config.lossless ? 0 : config.maxQuantizer)
    // Keyframes are placed by the element (the same frames on both streams), never by libvpx.
    cfg.kf_mode = VPX_KF_DISABLED
    cfg.kf_min_dist = 0
    cfg.kf_max_dist = UInt32.max >> 1
    status = bd_vpx_vp9_enc_init(context, &cfg)
    guard status == 0 else {
      let detail = vpx_codec_error_detail(context).map { String(cString: $0) } ?? ""
      let text = String(cString: vpx_codec_err_to_string(vpx_codec_err_t(UInt32(status))))
      throw VPXError(description: "cannot open the \(config.name) VP9 encoder (\(config.width)x\(config.height)): \(text) \(detail)")
    }
    open = true
    try control(VP8E_SET_CPUUSED, config.cpuUsed, "cpu-used")
    try control(VP9E_SET_ROW_MT, config.rowMT ? 1 : 0, "row-mt")
    try control(VP9E_SET_TILE_COLUMNS, config.tileColumns, "tile-columns")
    try control(VP9E_SET_FRAME_PARALLEL_DECODING, 1, "frame-parallel-decoding")
    try control(VP9E_SET_AQ_MODE, config.aqMode, "aq-mode")
    if config.endUsage == BD_VP9_END_USAGE_CQ || config.endUsage == BD_VP9_END_USAGE_Q {
      try control(VP8E_SET_CQ_LEVEL, config.cqLevel, "cq-level")
    }
    if config.lossless { try control(VP9E_SET_LOSSLESS, 1, "lossless") }
  }

  deinit {
    if open { vpx_codec_destroy(context) }
    context.deallocate()
  }

  var rawContext: UnsafeMutableRawPointer { UnsafeMutableRawPointer(context) }

  func control(_ id: vp8e_enc_control_id, _ value: Int, _ name: String) throws {
    let status = bd_vpx_control_int(context, Int32(id.rawValue), Int32(value))
    guard status == 0 else {
      throw VPXError(description: "the \(config.name) VP9 encoder rejects \(name)=\(value): \(lastError)")
    }
  }

  /// Sets which 16x16 blocks the next frame codes (1) or keeps from the previous frame (0).
  func setActiveMap(_ map: UnsafeMutablePointer<UInt8>, rows: Int, columns: Int) {
    if bd_vpx_set_active_map(context, map, UInt32(rows), UInt32(columns)) != 0 {
      vp9AlphaDebug.warning(nil, "the \(config.name) encoder rejects an active map: \(lastError)")
    }
  }

  /// Changes the target bitrate of a running encoder.
  func setBitrate(_ bitsPerSecond: Int) {
    var cfg = context.pointee.config.enc.pointee
    cfg.rc_target_bitrate = UInt32(max(1, bitsPerSecond / 1000))
    vpx_codec_enc_config_set(context, &cfg)
  }

  var lastError: String {
    let text = vpx_codec_error(context).map { String(cString: $0) } ?? "unknown error"
    let detail = vpx_codec_error_detail(context).map { String(cString: $0) }
    return detail.map { "\(text) (\($0))" } ?? text
  }

  /// vpx_codec_encode; `image` nil drains. Returns the vpx_codec_err_t.
  func encode(_ image: UnsafePointer<vpx_image_t>?, pts: Int64, flags: Int, deadline: UInt) -> Int32 {
    Int32(bitPattern: vpx_codec_encode(context, image, pts, 1, flags, deadline).rawValue)
  }

  /// Takes every compressed frame out of the encoder.
  func takePackets() -> [VPXPacket] {
    var packets: [VPXPacket] = []
    var iterator: UnsafeRawPointer? = nil
    var data: UnsafeRawPointer? = nil
    var size = 0
    var pts: Int64 = 0
    var flags: UInt32 = 0
    while bd_vpx_next_frame(context, &iterator, &data, &size, &pts, &flags) != 0 {
      guard let data, let buffer = gst_buffer_new_memdup(data, UInt(size)) else { continue }
      packets.append(VPXPacket(buffer: buffer, pts: pts, isKeyframe: flags & UInt32(VPX_FRAME_IS_KEY) != 0))
    }
    return packets
  }

  func check(_ status: Int32, _ what: String) throws {
    guard status == 0 else {
      throw VPXError(description: "the \(config.name) VP9 encoder failed to \(what): \(lastError)")
    }
  }
}
