// The CodecPrivate of a V_VP9 track (Matroska codec mapping): a list of features, each one byte
// ID, one byte length and the value — 1 profile, 2 level, 3 bit depth, 4 chroma subsampling.
// Profile, bit depth and subsampling come from the caps (vp9alphaenc and vp9parse say them); the
// level is the lowest VP9 level whose picture-size and sample-rate limits the stream fits.

struct VP9CodecPrivate: Equatable {
  var profile: Int        // 0-3
  var level: Int?         // 10, 11, 20 … 62; nil when the size or rate is unknown
  var bitDepth: Int       // 8, 10, 12
  var chromaSubsampling: Int  // 0 4:2:0 vertical (left siting), 1 4:2:0 co-sited, 2 4:2:2, 3 4:4:4

  /// From caps fields: `profile` ("0"-"3"), `bit-depth-luma`, `chroma-format` ("4:2:0" …),
  /// `chroma-site`, and the picture size and frame rate for the level.
  init(profile: String?, bitDepth: Int?, chromaFormat: String?, chromaSite: String?,
       width: Int, height: Int, framesPerSecond: Double?) {
    let profileNumber = profile.flatMap { Int($0) }.map { min(max($0, 0), 3) }
    // Profiles 0 and 1 are 8-bit, 2 and 3 are 10/12-bit; 0 and 2 are 4:2:0, 1 and 3 are 4:2:2/4:4:0/4:4:4.
    let format = chromaFormat ?? ((profileNumber ?? 0) % 2 == 0 ? "4:2:0" : "4:4:4")
    let depth = bitDepth ?? ((profileNumber ?? 0) >= 2 ? 10 : 8)
    self.profile = profileNumber ?? ((format == "4:2:0" ? 0 : 1) + (depth > 8 ? 2 : 0))
    self.bitDepth = depth
    switch format {
    case "4:4:4": chromaSubsampling = 3
    case "4:2:2": chromaSubsampling = 2
    default: chromaSubsampling = chromaSite == "cosited" ? 1 : 0
    }
    level = VP9CodecPrivate.level(width: width, height: height, framesPerSecond: framesPerSecond)
  }

  /// VP9 levels (VP9 bitstream specification, Annex A): the largest luma sample rate, luma
  /// picture size and picture side each level allows.
  static let levels: [(level: Int, sampleRate: Double, pictureSize: Int, side: Int)] = [
    (10, 829_440, 36_864, 512), (11, 2_764_800, 73_728, 768), (20, 4_608_000, 122_880, 960),
    (21, 9_216_000, 245_760, 1_344), (30, 20_736_000, 552_960, 2_048), (31, 36_864_000, 983_040, 2_752),
    (40, 83_558_400, 2_228_224, 4_160), (41, 160_432_128, 2_228_224, 4_160),
    (50, 311_951_360, 8_912_896, 8_384), (51, 588_251_136, 8_912_896, 8_384),
    (52, 1_176_502_272, 8_912_896, 8_384), (60, 1_176_502_272, 35_651_584, 16_832),
    (61, 2_353_004_544, 35_651_584, 16_832), (62, 4_706_009_088, 35_651_584, 16_832),
  ]

  static func level(width: Int, height: Int, framesPerSecond: Double?) -> Int? {
    guard width > 0, height > 0, let fps = framesPerSecond, fps > 0 else { return nil }
    let pictureSize = width * height
    let sampleRate = Double(pictureSize) * fps
    return levels.first {
      pictureSize <= $0.pictureSize && max(width, height) <= $0.side && sampleRate <= $0.sampleRate
    }?.level
  }

  /// The CodecPrivate bytes.
  var bytes: [UInt8] {
    var out: [UInt8] = [1, 1, UInt8(profile)]
    if let level { out += [2, 1, UInt8(level)] }
    out += [3, 1, UInt8(bitDepth), 4, 1, UInt8(chromaSubsampling)]
    return out
  }
}
