// How much of each frame the matte keeps, sampled on a coarse grid of the alpha (or matte) plane
// leaving birefnetmatte. A model that finds nobody — the head-and-shoulders `selfie` on full-body
// or distant people — otherwise fails silently with an empty, fully transparent file.
import CGStreamer
import Foundation
import Synchronization

final class MatteCoverage: @unchecked Sendable {
  private struct State { var frames = 0; var emptyFrames = 0 }
  private let state = Mutex(State())
  /// A frame is "empty" when less than this fraction of its samples is foreground (alpha ≥ 128).
  static let emptyFraction = 0.01

  var counts: (frames: Int, empty: Int) { state.withLock { ($0.frames, $0.emptyFrames) } }

  /// The warning to print at the end, when most frames (80 %, at least 5 frames) were empty.
  func warning(model: ResolvedModel) -> String? {
    let (frames, empty) = counts
    guard frames >= 5, Double(empty) >= 0.8 * Double(frames) else { return nil }
    var text = "the matte is empty on \(empty) of \(frames) frames: model \(model.name) found no subject"
    if model.name == "selfie" || model.path.hasSuffix("/selfie.pt") {
      text += "; selfie is \(ModelRegistry.selfieScope)"
    } else {
      text += "; try a BiRefNet model (`backdrop models fetch general`, then --model general)"
    }
    return text
  }

  /// Samples the buffers leaving `element`'s src pad. Outputs without alpha (composites) are not
  /// sampled: only RGBA/BGRA/ARGB/ABGR, A420/AYUV (alpha) and GRAY8 (the matte itself).
  func attach(to element: UnsafeMutablePointer<GstElement>) {
    guard let srcPad = gst_element_get_static_pad(element, "src") else { return }
    defer { gst_object_unref(srcPad) }
    gst_pad_add_probe(
      srcPad, GST_PAD_PROBE_TYPE_BUFFER,
      { pad, info, data in
        guard let pad, let info, let data, let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self),
          let caps = gst_pad_get_current_caps(pad)
        else { return GST_PAD_PROBE_OK }
        defer { gst_caps_unref(caps) }
        if let fraction = MatteCoverage.foregroundFraction(buffer, caps: caps) {
          Unmanaged<MatteCoverage>.fromOpaque(data).takeUnretainedValue().add(fraction)
        }
        return GST_PAD_PROBE_OK
      }, Unmanaged.passRetained(self).toOpaque(), { data in
        if let data { Unmanaged<MatteCoverage>.fromOpaque(data).release() }
      })
  }

  private func add(_ fraction: Double) {
    state.withLock {
      $0.frames += 1
      if fraction < MatteCoverage.emptyFraction { $0.emptyFrames += 1 }
    }
  }

  /// The fraction of about 32×18 grid samples whose alpha is at least 128; nil without alpha.
  static func foregroundFraction(_ buffer: UnsafeMutablePointer<GstBuffer>, caps: UnsafeMutablePointer<GstCaps>) -> Double? {
    var info = GstVideoInfo()
    guard gst_video_info_from_caps(&info, caps) != 0, let formatInfo = info.finfo else { return nil }
    let component: Int
    switch formatInfo.pointee.format {
    case GST_VIDEO_FORMAT_GRAY8: component = 0
    case GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_ARGB, GST_VIDEO_FORMAT_ABGR,
      GST_VIDEO_FORMAT_A420, GST_VIDEO_FORMAT_AYUV:
      component = 3
    default: return nil
    }
    var frame = GstVideoFrame()
    guard gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ) != 0 else { return nil }
    defer { gst_video_frame_unmap(&frame) }
    func element<T>(_ tuple: T, _ index: Int) -> Int32 {
      withUnsafeBytes(of: tuple) { $0.load(fromByteOffset: index * 4, as: Int32.self) }
    }
    let finfo = formatInfo.pointee
    let plane = Int(withUnsafeBytes(of: finfo.plane) { $0.load(fromByteOffset: component * 4, as: UInt32.self) })
    let offset = Int(withUnsafeBytes(of: finfo.poffset) { $0.load(fromByteOffset: component * 4, as: UInt32.self) })
    let pixelStride = Int(element(finfo.pixel_stride, component))
    let stride = Int(element(frame.info.stride, plane))
    guard let base = withUnsafeBytes(of: frame.data, { $0.load(fromByteOffset: plane * MemoryLayout<UnsafeMutableRawPointer?>.stride, as: UnsafeMutableRawPointer?.self) })
    else { return nil }
    let width = Int(info.width), height = Int(info.height)
    let columns = min(32, width), rows = min(18, height)
    var foreground = 0
    for row in 0..<rows {
      let y = (row * height + height / 2) / rows
      for column in 0..<columns {
        let x = (column * width + width / 2) / columns
        if base.load(fromByteOffset: y * stride + x * pixelStride + offset, as: UInt8.self) >= 128 { foreground += 1 }
      }
    }
    return Double(foreground) / Double(rows * columns)
  }
}
