// EBML (the binary format under Matroska/WebM): element IDs, variable-length sizes and typed
// element payloads, written into a byte array. Master elements are built child-first so their
// size is known; the muxer writes unknown sizes itself for live output.
struct EBMLWriter {
  private(set) var bytes: [UInt8] = []

  var count: Int { bytes.count }

  /// An element ID as stored: its bytes already carry the length marker (e.g. 0x1A45DFA3).
  mutating func id(_ id: UInt32) {
    if id > 0xFF_FFFF { bytes.append(UInt8(id >> 24)) }
    if id > 0xFFFF { bytes.append(UInt8((id >> 16) & 0xFF)) }
    if id > 0xFF { bytes.append(UInt8((id >> 8) & 0xFF)) }
    bytes.append(UInt8(id & 0xFF))
  }

  /// A data size in the fewest bytes (all-ones values are reserved for "unknown").
  mutating func size(_ value: UInt64) {
    var length = 1
    while length < 8 && value >= (UInt64(1) << (7 * UInt64(length))) - 1 { length += 1 }
    size(value, length: length)
  }

  /// A data size in exactly `length` bytes (1...8).
  mutating func size(_ value: UInt64, length: Int) {
    let marked = value | (UInt64(1) << (7 * UInt64(length)))
    for index in stride(from: length - 1, through: 0, by: -1) {
      bytes.append(UInt8((marked >> (8 * UInt64(index))) & 0xFF))
    }
  }

  /// The 8-byte "unknown size" of live Segments and Clusters.
  mutating func unknownSize() {
    bytes += [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
  }

  mutating func append(_ data: [UInt8]) { bytes += data }
  mutating func append(_ data: UnsafeRawBufferPointer) { bytes += data }

  mutating func uint(_ elementID: UInt32, _ value: UInt64) {
    var payload: [UInt8] = []
    var rest = value
    repeat {
      payload.insert(UInt8(rest & 0xFF), at: 0)
      rest >>= 8
    } while rest != 0
    binary(elementID, payload)
  }

  mutating func sint(_ elementID: UInt32, _ value: Int64) {
    var length = 1
    while length < 8 {
      let bits = Int64(8 * length - 1)
      if value >= -(Int64(1) << bits) && value < (Int64(1) << bits) { break }
      length += 1
    }
    let raw = UInt64(bitPattern: value)
    let payload = (0..<length).reversed().map { UInt8((raw >> (8 * UInt64($0))) & 0xFF) }
    binary(elementID, payload)
  }

  mutating func float(_ elementID: UInt32, _ value: Double) {
    binary(elementID, EBMLWriter.float64Bytes(value))
  }

  static func float64Bytes(_ value: Double) -> [UInt8] {
    let raw = value.bitPattern
    return (0..<8).reversed().map { UInt8((raw >> (8 * UInt64($0))) & 0xFF) }
  }

  mutating func string(_ elementID: UInt32, _ value: String) {
    binary(elementID, Array(value.utf8))
  }

  mutating func binary(_ elementID: UInt32, _ payload: [UInt8]) {
    id(elementID)
    size(UInt64(payload.count))
    bytes += payload
  }

  /// A master element whose children `body` writes.
  mutating func master(_ elementID: UInt32, _ body: (inout EBMLWriter) -> Void) {
    var child = EBMLWriter()
    body(&child)
    binary(elementID, child.bytes)
  }

  /// A Void element filling exactly `total` bytes (total >= 2).
  mutating func void(total: Int) {
    precondition(total >= 2, "an EBML Void needs at least 2 bytes")
    id(EBMLID.void)
    // Size field of 1 byte up to 126 payload bytes, else 8 bytes.
    if total - 2 <= 126 {
      size(UInt64(total - 2), length: 1)
      bytes += [UInt8](repeating: 0, count: total - 2)
    } else {
      size(UInt64(total - 9), length: 8)
      bytes += [UInt8](repeating: 0, count: total - 9)
    }
  }
}

/// The EBML/Matroska element IDs webmalphamux writes.
enum EBMLID {
  static let ebml: UInt32 = 0x1A45_DFA3
  static let ebmlVersion: UInt32 = 0x4286
  static let ebmlReadVersion: UInt32 = 0x42F7
  static let ebmlMaxIDLength: UInt32 = 0x42F2
  static let ebmlMaxSizeLength: UInt32 = 0x42F3
  static let docType: UInt32 = 0x4282
  static let docTypeVersion: UInt32 = 0x4287
  static let docTypeReadVersion: UInt32 = 0x4285
  static let void: UInt32 = 0xEC

  static let segment: UInt32 = 0x1853_8067
  static let seekHead: UInt32 = 0x114D_9B74
  static let seek: UInt32 = 0x4DBB
  static let seekID: UInt32 = 0x53AB
  static let seekPosition: UInt32 = 0x53AC

  static let info: UInt32 = 0x1549_A966
  static let timestampScale: UInt32 = 0x2AD7B1
  static let duration: UInt32 = 0x4489
  static let muxingApp: UInt32 = 0x4D80
  static let writingApp: UInt32 = 0x5741
  static let title: UInt32 = 0x7BA9

  static let tracks: UInt32 = 0x1654_AE6B
  static let trackEntry: UInt32 = 0xAE
  static let trackNumber: UInt32 = 0xD7
  static let trackUID: UInt32 = 0x73C5
  static let trackType: UInt32 = 0x83
  static let flagLacing: UInt32 = 0x9C
  static let language: UInt32 = 0x22B59C
  static let codecID: UInt32 = 0x86
  static let codecPrivate: UInt32 = 0x63A2
  static let codecDelay: UInt32 = 0x56AA
  static let seekPreRoll: UInt32 = 0x56BB
  static let defaultDuration: UInt32 = 0x23E383
  static let video: UInt32 = 0xE0
  static let pixelWidth: UInt32 = 0xB0
  static let pixelHeight: UInt32 = 0xBA
  static let displayWidth: UInt32 = 0x54B0
  static let displayHeight: UInt32 = 0x54BA
  static let alphaMode: UInt32 = 0x53C0
  static let audio: UInt32 = 0xE1
  static let samplingFrequency: UInt32 = 0xB5
  static let channels: UInt32 = 0x9F

  static let cluster: UInt32 = 0x1F43_B675
  static let timestamp: UInt32 = 0xE7
  static let simpleBlock: UInt32 = 0xA3
  static let blockGroup: UInt32 = 0xA0
  static let block: UInt32 = 0xA1
  static let blockAdditions: UInt32 = 0x75A1
  static let blockMore: UInt32 = 0xA6
  static let blockAddID: UInt32 = 0xEE
  static let blockAdditional: UInt32 = 0xA5
  static let referenceBlock: UInt32 = 0xFB

  static let cues: UInt32 = 0x1C53_BB6B
  static let cuePoint: UInt32 = 0xBB
  static let cueTime: UInt32 = 0xB3
  static let cueTrackPositions: UInt32 = 0xB7
  static let cueTrack: UInt32 = 0xF7
  static let cueClusterPosition: UInt32 = 0xF1
}
