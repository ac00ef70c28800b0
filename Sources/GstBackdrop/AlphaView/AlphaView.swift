// alphaview: a picture with (straight) alpha made viewable where there is no transparency. stacked
// writes it twice as tall, the colour on top and the alpha as grey below, which players without
// alpha support composite in a shader; checkerboard shows it over a grey checkerboard, as image
// editors do. One output frame per input frame, its timestamps untouched: compositor, the stock
// way to build either, writes its output at a fixed frame rate and so repeats or drops frames of a
// variable-frame-rate clip.
import CBackdropShim
import CGStreamer
import Synchronization

final class AlphaView: @unchecked Sendable {
  let element: UnsafeMutablePointer<GstElement>
  /// Fixed once caps are negotiated (the property is writable in NULL and READY only).
  let layout = Mutex(BD_ALPHA_VIEW_STACKED)

  /// The checkerboard the contact sheets use too: 16-pixel squares of 204 and 153.
  static let square = 16
  static let light = 204, dark = 153

  init(element: UnsafeMutablePointer<GstElement>) { self.element = element }

  /// Caps on the other side of the element: RGBA in, RGBx out, and twice the height out when
  /// stacked (half of it in).
  func transformCaps(_ caps: UnsafeMutablePointer<GstCaps>, direction: GstPadDirection,
                     filter: UnsafeMutablePointer<GstCaps>?) -> UnsafeMutablePointer<GstCaps> {
    let stacked = layout.withLock { $0 } == BD_ALPHA_VIEW_STACKED
    let toSource = direction == GST_PAD_SINK
    let result = gst_caps_copy(caps)!
    for index in 0..<gst_caps_get_size(result) {
      guard let structure = gst_caps_get_structure(result, index) else { continue }
      var format = GValue()
      g_value_init(&format, GType(16 << 2))  // G_TYPE_STRING
      g_value_set_string(&format, toSource ? "RGBx" : "RGBA")
      gst_structure_set_value(structure, "format", &format)
      g_value_unset(&format)
      if stacked, let height = gst_structure_get_value(structure, "height") {
        var scaled = scaledHeight(height, doubled: toSource)
        gst_structure_set_value(structure, "height", &scaled)
        g_value_unset(&scaled)
      }
    }
    guard let filter else { return result }
    defer { gst_caps_unref(result) }
    return gst_caps_intersect_full(filter, result, GST_CAPS_INTERSECT_FIRST)
  }

  /// A height (an int or an int range) doubled, or halved (rounded up at the bottom of a range).
  private func scaledHeight(_ value: UnsafePointer<GValue>, doubled: Bool) -> GValue {
    let scale = { (height: Int32) -> Int32 in doubled ? Int32(clamping: Int64(height) * 2) : height / 2 }
    var scaled = GValue()
    if value.pointee.g_type == gst_int_range_get_type() {
      g_value_init(&scaled, gst_int_range_get_type())
      let low = gst_value_get_int_range_min(value), high = gst_value_get_int_range_max(value)
      gst_value_set_int_range(&scaled, max(1, doubled ? scale(low) : (low + 1) / 2), max(1, scale(high)))
    } else {
      g_value_init(&scaled, GType(6 << 2))  // G_TYPE_INT
      g_value_set_int(&scaled, max(1, scale(g_value_get_int(value))))
    }
    return scaled
  }

  /// Writes `output` from `input` (RGBA, straight alpha) in the layout. Rows are written as
  /// whole 32-bit pixels (the x byte of RGBx is set to 255, as players expect nothing else).
  func transform(_ input: UnsafeMutablePointer<GstVideoFrame>, _ output: UnsafeMutablePointer<GstVideoFrame>) -> GstFlowReturn {
    let width = Int(input.pointee.info.width), height = Int(input.pointee.info.height)
    guard let source = input.pointee.data.0, let target = output.pointee.data.0 else { return GST_FLOW_ERROR }
    let sourceStride = Int(input.pointee.info.stride.0), targetStride = Int(output.pointee.info.stride.0)
    let stacked = layout.withLock { $0 } == BD_ALPHA_VIEW_STACKED
    for y in 0..<height {
      let from = (source + y * sourceStride).assumingMemoryBound(to: UInt8.self)
      if stacked {
        let colour = (target + y * targetStride).assumingMemoryBound(to: UInt32.self)
        let alpha = (target + (height + y) * targetStride).assumingMemoryBound(to: UInt32.self)
        let pixels = UnsafeRawPointer(from).assumingMemoryBound(to: UInt32.self)
        for x in 0..<width {
          colour[x] = pixels[x] | 0xFF00_0000  // R, G, B, A in memory: A is the top byte (little-endian)
          alpha[x] = UInt32(from[x * 4 + 3]) &* 0x0001_0101 | 0xFF00_0000
        }
      } else {
        let to = (target + y * targetStride).assumingMemoryBound(to: UInt32.self)
        var x = 0
        while x < width {
          // One square's run of the row: the board's grey is the same for all of it.
          let board = UInt32((x / Self.square + y / Self.square) % 2 == 0 ? Self.light : Self.dark)
          let end = min(width, (x / Self.square + 1) * Self.square)
          while x < end {
            let a = UInt32(from[x * 4 + 3])
            let under = board &* (255 &- a) &+ 128
            // (v * a + board * (255 - a)) / 255, rounded: t / 255 is (t + t >> 8) >> 8 for t < 65536.
            func blend(_ v: UInt8) -> UInt32 {
              let t = UInt32(v) &* a &+ under
              return (t &+ (t >> 8)) >> 8
            }
            to[x] = blend(from[x * 4]) | blend(from[x * 4 + 1]) << 8 | blend(from[x * 4 + 2]) << 16 | 0xFF00_0000
            x += 1
          }
        }
      }
    }
    return GST_FLOW_OK
  }
}
