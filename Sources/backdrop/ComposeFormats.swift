// The files editors and players import, as pipeline fragments for `compose`: ProRes 4444 with
// alpha in QuickTime (.mov), RGBA PNG sequences (frames/%05d.png) and "stacked alpha" H.264 (the
// colour on top, the alpha as grey below, for players without alpha such as Safari). Also the
// output quality options (--crf, --bitrate) that map onto each encoder.
import Foundation

/// What the user asked of the encoder's rate control.
enum VideoQuality: Equatable {
  case automatic            // a bitrate from the picture's size and rate
  case crf(Int)             // constant quality: x264 quantizer (1-50), VP9 cq-level (0-63)
  case bitrate(Int)         // bit/s

  /// From --crf and --bitrate (which exclude each other) for a container.
  static func parse(crf: Int?, bitrate: String?, container: Compose.Container) throws -> VideoQuality {
    if crf != nil && bitrate != nil { throw LauncherError.usage("--crf and --bitrate exclude each other") }
    if (crf != nil || bitrate != nil) && (container == .mov || container == .png) {
      throw LauncherError.usage(
        "--crf and --bitrate set a lossy encoder's quality: ProRes 4444 (.mov) and PNG have no such setting here")
    }
    if let crf {
      // x264's 0 is lossless, which the High profile players need does not allow.
      let range = container == .mp4 ? 1...50 : 0...63
      guard range.contains(crf) else {
        throw LauncherError.usage("--crf \(crf): expected \(range.lowerBound) to \(range.upperBound) for \(container == .mp4 ? "H.264" : "VP9") (lower is better)")
      }
      return .crf(crf)
    }
    if let bitrate {
      guard let value = parseBitrate(bitrate), value >= 10_000, value <= 1_000_000_000 else {
        throw LauncherError.usage("--bitrate \(bitrate): expected bits per second from 10k to 1000M, e.g. 4M or 800k")
      }
      return .bitrate(value)
    }
    return .automatic
  }

  /// "4M", "800k", "2.5m", "1500000" → bit/s.
  static func parseBitrate(_ text: String) -> Int? {
    let lower = text.lowercased()
    let scale: Double = lower.hasSuffix("k") ? 1e3 : lower.hasSuffix("m") ? 1e6 : 1
    let digits = scale == 1 ? lower : String(lower.dropLast())
    guard let number = Double(digits), number > 0 else { return nil }
    return Int(number * scale)
  }
}

/// A printf-style frame pattern for image sequences: one %d or %0Nd, nothing else after a %.
enum FramePattern {
  static func isPattern(_ path: String) -> Bool {
    let characters = Array(path)
    var conversions = 0
    var index = 0
    while index < characters.count {
      if characters[index] == "%" {
        index += 1
        guard index < characters.count else { return false }
        if characters[index] == "%" { index += 1; continue }
        while index < characters.count, characters[index].isNumber { index += 1 }
        guard index < characters.count, characters[index] == "d" else { return false }
        conversions += 1
      }
      index += 1
    }
    return conversions == 1
  }

  /// The file name of frame `index`.
  static func file(_ pattern: String, _ index: Int) -> String { String(format: pattern, Int32(index)) }
}

extension ComposeGraph {
  /// ProRes 4444 keeps 10-bit (and more) 4:4:4 with an alpha channel; editors (Resolve,
  /// Premiere, Final Cut) import it with transparency. Composites and mattes have no alpha, so
  /// they are ProRes 422 HQ.
  func proresEncoder(alpha: Bool) -> String {
    alpha
      ? "videoconvert ! video/x-raw,format=A444_10LE,colorimetry=bt709 ! avenc_prores_ks profile=4444 vendor=apl0"
      : "videoconvert ! video/x-raw,format=I422_10LE,colorimetry=bt709 ! avenc_prores_ks profile=hq vendor=apl0"
  }

  /// The stacked-alpha video: the matte's RGBA frame made twice as tall by alphaview, the colour on
  /// top and the alpha copied into R, G and B below, one output frame per frame (a variable frame
  /// rate is kept). The one RGB → YUV conversion maps the alpha to studio range, which players map
  /// back (GRAY8 → AYUV would copy it into Y unscaled, and a player would stretch it). The queue
  /// gives the stacking and conversion (several ms a 1080p frame) a thread of their own, beside
  /// the matte's. Returns the description up to and including the muxer.
  func stackedAlphaVideo(encoder: String) -> String {
    "\(decodedVideo) ! birefnetmatte name=matte \(matteProperties.joined(separator: " ")) ! video/x-raw,format=RGBA "
      + "! queue ! alphaview layout=stacked ! videoconvert ! video/x-raw,format=I420,colorimetry=bt709 ! \(encoder) ! mp4mux name=mux"
  }
}
