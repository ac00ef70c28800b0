// Which raw video formats birefnetmatte takes and writes, and how they map to the engine's.
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

enum MatteFormats {
  static let sinkFormats = ["I420", "NV12", "RGBA", "BGRA", "RGBx", "BGRx", "RGB", "BGR"]
  static let alphaFormats = ["RGBA", "BGRA", "A420", "GRAY8"]
  static let opaqueFormats = ["I420", "NV12", "RGBx", "BGRx", "RGB", "BGR"]
  static let sourceFormats = alphaFormats + opaqueFormats

  static func engineFormat(_ format: GstVideoFormat) -> bd_pixel_format? {
    switch format {
    case GST_VIDEO_FORMAT_I420: BD_FORMAT_I420
    case GST_VIDEO_FORMAT_NV12: BD_FORMAT_NV12
    case GST_VIDEO_FORMAT_RGBA: BD_FORMAT_RGBA
    case GST_VIDEO_FORMAT_BGRA: BD_FORMAT_BGRA
    case GST_VIDEO_FORMAT_RGBx: BD_FORMAT_RGBX
    case GST_VIDEO_FORMAT_BGRx: BD_FORMAT_BGRX
    case GST_VIDEO_FORMAT_RGB: BD_FORMAT_RGB
    case GST_VIDEO_FORMAT_BGR: BD_FORMAT_BGR
    case GST_VIDEO_FORMAT_A420: BD_FORMAT_A420
    case GST_VIDEO_FORMAT_GRAY8: BD_FORMAT_GRAY8
    default: nil
    }
  }

  static func isYUV(_ name: String) -> Bool { ["I420", "NV12", "A420"].contains(name) }

  /// Output formats in order of preference for an input format and background mode: with no
  /// backdrop an alpha format of the input's family first; with a backdrop the input's own
  /// format (no conversion), then the rest.
  static func preferredOutputs(input: String, background: BdMatteBackground) -> [String] {
    var order: [String]
    if background == BD_MATTE_BACKGROUND_NONE {
      order = isYUV(input) ? ["A420", "RGBA", "BGRA"] : (input.hasPrefix("B") ? ["BGRA", "RGBA", "A420"] : ["RGBA", "BGRA", "A420"])
      order += ["GRAY8", input]
    } else {
      order = [input]
    }
    for format in sourceFormats where !order.contains(format) { order.append(format) }
    return order
  }

  static func matrix(_ info: GstVideoInfo) -> bd_matrix {
    switch info.colorimetry.matrix {
    case GST_VIDEO_COLOR_MATRIX_BT709: BD_MATRIX_BT709
    case GST_VIDEO_COLOR_MATRIX_BT2020: BD_MATRIX_BT2020
    default: BD_MATRIX_BT601
    }
  }

  static func isFullRange(_ info: GstVideoInfo) -> Bool {
    info.colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255
  }
}
