// Decodes the background-image file with GStreamer itself (no image library): a small
// filesrc ! decodebin ! videoconvert ! videoscale pipeline prerolls one RGB frame at the stream size.
// background-fit picks how an image of another shape meets the frame: cover crops it to the
// frame's aspect ratio first (aspectratiocrop, centred), contain lets videoscale add black bars,
// stretch scales it as it is.
import CBackdropShim
import CGStreamer

struct BackgroundImageError: Error {
  let message: String
}

/// Packed RGB pixels of an image fitted to width × height.
struct RGBImage {
  var pixels: [UInt8]
  var stride: Int
  var width: Int
  var height: Int
}

func decodeBackgroundImage(path: String, width: Int, height: Int, fit: BdMatteBackgroundFit = BD_MATTE_BACKGROUND_FIT_STRETCH)
  throws(BackgroundImageError) -> RGBImage
{
  let divisor = greatestCommonDivisor(width, height)
  let fitting: String
  switch fit {
  case BD_MATTE_BACKGROUND_FIT_COVER:
    fitting = "aspectratiocrop aspect-ratio=\(width / divisor)/\(height / divisor) ! videoscale add-borders=false"
  case BD_MATTE_BACKGROUND_FIT_CONTAIN: fitting = "videoscale add-borders=true"
  default: fitting = "videoscale add-borders=false"
  }
  let description =
    "filesrc name=src ! decodebin ! videoconvert ! \(fitting) ! "
    + "video/x-raw,format=RGB,width=\(width),height=\(height),pixel-aspect-ratio=1/1 ! "
    + "fakesink name=sink enable-last-sample=true"
  var parseError: UnsafeMutablePointer<GError>?
  guard let pipeline = gst_parse_launch(description, &parseError) else {
    let reason = parseError.map { String(cString: $0.pointee.message) } ?? "unknown"
    g_clear_error(&parseError)
    throw BackgroundImageError(message: "Could not build the image decoder for background-image: \(reason)")
  }
  defer {
    gst_element_set_state(pipeline, GST_STATE_NULL)
    gst_object_unref(pipeline)
  }
  let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
  guard let source = gst_bin_get_by_name(bin, "src"), let sink = gst_bin_get_by_name(bin, "sink") else {
    throw BackgroundImageError(message: "background-image decoder is missing its elements")
  }
  defer {
    gst_object_unref(source)
    gst_object_unref(sink)
  }
  bd_object_set_string(source, "location", path)

  gst_element_set_state(pipeline, GST_STATE_PAUSED)
  let result = gst_element_get_state(pipeline, nil, nil, 20 * 1_000_000_000)
  if result != GST_STATE_CHANGE_SUCCESS {
    throw BackgroundImageError(
      message: "Could not decode background-image \"\(path)\": \(busErrorText(pipeline) ?? "the file is not an image GStreamer can decode"). "
        + "Give a readable PNG or JPEG file.")
  }
  guard let sample = bd_sink_last_sample(sink) else {
    throw BackgroundImageError(message: "background-image \"\(path)\" decoded to no picture")
  }
  defer { gst_sample_unref(sample) }
  guard let buffer = gst_sample_get_buffer(sample) else {
    throw BackgroundImageError(message: "background-image \"\(path)\" decoded to no picture")
  }
  var info = GstVideoInfo()
  guard gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) != 0 else {
    throw BackgroundImageError(message: "background-image \"\(path)\" decoded to unexpected caps")
  }
  var frame = GstVideoFrame()
  guard gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ) != 0 else {
    throw BackgroundImageError(message: "background-image \"\(path)\": cannot map the decoded picture")
  }
  defer { gst_video_frame_unmap(&frame) }
  let stride = Int(frame.info.stride.0)
  let bytes = UnsafeRawBufferPointer(start: frame.data.0, count: stride * height)
  return RGBImage(pixels: Array(bytes), stride: stride, width: width, height: height)
}

func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int { b == 0 ? max(a, 1) : greatestCommonDivisor(b, a % b) }

/// The text of the first ERROR message on a pipeline's bus, if any.
func busErrorText(_ pipeline: UnsafeMutablePointer<GstElement>) -> String? {
  guard let bus = gst_element_get_bus(pipeline) else { return nil }
  defer { gst_object_unref(bus) }
  guard let message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) else { return nil }
  defer { gst_message_unref(message) }
  var error: UnsafeMutablePointer<GError>?
  var debug: UnsafeMutablePointer<gchar>?
  gst_message_parse_error(message, &error, &debug)
  defer {
    g_clear_error(&error)
    g_free(debug)
  }
  return error.map { String(cString: $0.pointee.message) }
}
