// A WebM track described from a sink pad's caps: VP9 video (with or without alpha), Opus or
// Vorbis audio. Writes its TrackEntry (with VP9's CodecPrivate, see VP9CodecPrivate.swift).
import CGStreamer

struct WebMTrack {
  enum Kind { case video, audio }

  let number: UInt64
  let kind: Kind
  let codecID: String
  var hasAlpha = false
  var width = 0
  var height = 0
  /// The size to show the picture at, where its pixels are not square (pixel-aspect-ratio in the
  /// caps: anamorphic DV, broadcast or phone footage); nil for square pixels.
  var displaySize: (width: Int, height: Int)?
  var defaultDurationNs: UInt64 = 0
  var sampleRate = 0
  var channels = 0
  var codecPrivate: [UInt8] = []
  var codecDelayNs: UInt64 = 0
  var seekPreRollNs: UInt64 = 0

  /// Reads the track from caps; throws a message naming what cannot be written.
  init(number: UInt64, caps: UnsafeMutablePointer<GstCaps>) throws {
    self.number = number
    guard let structure = gst_caps_get_structure(caps, 0) else {
      throw WebMError("empty caps")
    }
    let name = String(cString: gst_structure_get_name(structure))
    func int(_ field: String) -> Int {
      var value: Int32 = 0
      return gst_structure_get_int(structure, field, &value) != 0 ? Int(value) : 0
    }
    switch name {
    case "video/x-vp9":
      kind = .video
      codecID = "V_VP9"
      var alpha: gboolean = 0
      hasAlpha = gst_structure_get_boolean(structure, "codec-alpha", &alpha) != 0 && alpha != 0
      width = int("width")
      height = int("height")
      var fpsN: Int32 = 0
      var fpsD: Int32 = 0
      if gst_structure_get_fraction(structure, "framerate", &fpsN, &fpsD) != 0, fpsN > 0, fpsD > 0 {
        defaultDurationNs = UInt64(gst_util_uint64_scale_round(1_000_000_000, UInt(fpsD), UInt(fpsN)))
      }
      guard width > 0, height > 0 else {
        throw WebMError("VP9 caps without width and height (\(capsDescription(caps))); put vp9parse in front")
      }
      var parN: Int32 = 1
      var parD: Int32 = 1
      if gst_structure_get_fraction(structure, "pixel-aspect-ratio", &parN, &parD) != 0 {
        displaySize = WebMTrack.displaySize(width: width, height: height, parN: Int(parN), parD: Int(parD))
      }
      func string(_ field: String) -> String? { gst_structure_get_string(structure, field).map { String(cString: $0) } }
      let depth = int("bit-depth-luma")
      codecPrivate = VP9CodecPrivate(
        profile: string("profile"), bitDepth: depth > 0 ? depth : nil, chromaFormat: string("chroma-format"),
        chromaSite: string("chroma-site"), width: width, height: height,
        framesPerSecond: fpsN > 0 && fpsD > 0 ? Double(fpsN) / Double(fpsD) : nil
      ).bytes
    case "audio/x-opus":
      kind = .audio
      codecID = "A_OPUS"
      sampleRate = 48000  // Opus in WebM always decodes at 48 kHz
      channels = max(1, int("channels"))
      codecPrivate = WebMTrack.streamHeaders(structure).first ?? WebMTrack.opusHead(channels: channels, inputRate: int("rate"))
      guard codecPrivate.count >= 19, codecPrivate.starts(with: Array("OpusHead".utf8)) else {
        throw WebMError("Opus caps whose stream header is not an OpusHead")
      }
      let preSkip = UInt64(codecPrivate[10]) | UInt64(codecPrivate[11]) << 8
      codecDelayNs = preSkip * 1_000_000_000 / 48000
      seekPreRollNs = 80_000_000
    case "audio/x-vorbis":
      kind = .audio
      codecID = "A_VORBIS"
      sampleRate = int("rate")
      channels = max(1, int("channels"))
      let headers = WebMTrack.streamHeaders(structure)
      guard headers.count == 3 else {
        throw WebMError("Vorbis caps need the three stream headers (got \(headers.count))")
      }
      codecPrivate = WebMTrack.xiphLaced(headers)
    default:
      throw WebMError("cannot write \(name) to WebM (VP9, Opus and Vorbis only)")
    }
  }

  /// The buffers of the caps' `streamheader` array.
  static func streamHeaders(_ structure: UnsafeMutablePointer<GstStructure>) -> [[UInt8]] {
    guard let array = gst_structure_get_value(structure, "streamheader"),
      g_type_check_value_holds(array, gst_value_array_get_type()) != 0
    else { return [] }
    var headers: [[UInt8]] = []
    for index in 0..<gst_value_array_get_size(array) {
      guard let value = gst_value_array_get_value(array, index),
        let boxed = g_value_get_boxed(value)
      else { continue }
      let buffer = boxed.assumingMemoryBound(to: GstBuffer.self)
      let size = gst_buffer_get_size(buffer)
      var bytes = [UInt8](repeating: 0, count: Int(size))
      _ = bytes.withUnsafeMutableBytes { gst_buffer_extract(buffer, 0, $0.baseAddress, size) }
      headers.append(bytes)
    }
    return headers
  }

  /// A minimal OpusHead (mapping family 0) for caps without stream headers.
  static func opusHead(channels: Int, inputRate: Int) -> [UInt8] {
    var head = Array("OpusHead".utf8)
    let rate = UInt32(inputRate > 0 ? inputRate : 48000)
    head += [1, UInt8(min(channels, 2)), 0x38, 0x01]  // version, channels, pre-skip 312
    head += [UInt8(rate & 0xFF), UInt8((rate >> 8) & 0xFF), UInt8((rate >> 16) & 0xFF), UInt8(rate >> 24)]
    head += [0, 0, 0]  // output gain, mapping family 0
    return head
  }

  /// Matroska's Xiph lacing of the codec headers: count − 1, the sizes but the last, the data.
  static func xiphLaced(_ packets: [[UInt8]]) -> [UInt8] {
    var out: [UInt8] = [UInt8(packets.count - 1)]
    for packet in packets.dropLast() {
      var size = packet.count
      while size >= 255 {
        out.append(255)
        size -= 255
      }
      out.append(UInt8(size))
    }
    for packet in packets { out += packet }
    return out
  }

  /// Matroska gives non-square pixels as a display size (DisplayWidth/DisplayHeight, in pixels):
  /// the width stretched when the pixels are wide, the height when they are tall, as players and
  /// matroskamux read and write it. nil for square pixels or a ratio that is not one.
  static func displaySize(width: Int, height: Int, parN: Int, parD: Int) -> (width: Int, height: Int)? {
    guard parN > 0, parD > 0, parN != parD else { return nil }
    if parN > parD {
      return (Int(gst_util_uint64_scale_round(UInt(width), UInt(parN), UInt(parD))), height)
    }
    return (width, Int(gst_util_uint64_scale_round(UInt(height), UInt(parD), UInt(parN))))
  }

  func writeEntry(_ w: inout EBMLWriter) {
    w.master(EBMLID.trackEntry) { e in
      e.uint(EBMLID.trackNumber, number)
      e.uint(EBMLID.trackUID, number)
      e.uint(EBMLID.flagLacing, 0)
      e.string(EBMLID.language, "und")
      e.string(EBMLID.codecID, codecID)
      if !codecPrivate.isEmpty { e.binary(EBMLID.codecPrivate, codecPrivate) }
      switch kind {
      case .video:
        e.uint(EBMLID.trackType, 1)
        if defaultDurationNs > 0 { e.uint(EBMLID.defaultDuration, defaultDurationNs) }
        e.master(EBMLID.video) { v in
          v.uint(EBMLID.pixelWidth, UInt64(width))
          v.uint(EBMLID.pixelHeight, UInt64(height))
          if let displaySize {
            v.uint(EBMLID.displayWidth, UInt64(displaySize.width))
            v.uint(EBMLID.displayHeight, UInt64(displaySize.height))
          }
          if hasAlpha { v.uint(EBMLID.alphaMode, 1) }
        }
      case .audio:
        e.uint(EBMLID.trackType, 2)
        if codecDelayNs > 0 { e.uint(EBMLID.codecDelay, codecDelayNs) }
        if seekPreRollNs > 0 { e.uint(EBMLID.seekPreRoll, seekPreRollNs) }
        e.master(EBMLID.audio) { a in
          a.float(EBMLID.samplingFrequency, Double(sampleRate))
          a.uint(EBMLID.channels, UInt64(channels))
        }
      }
    }
  }
}

struct WebMError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
