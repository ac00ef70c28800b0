// Caps helpers shared by the elements.
import CGStreamer

/// Raw video caps for the given formats with any size and framerate (like GST_VIDEO_CAPS_MAKE), in
/// system memory or with a caps feature such as memory:CUDAMemory.
func rawVideoCapsString(_ formats: [String], feature: String? = nil) -> String {
  let list = formats.count == 1 ? formats[0] : "{ " + formats.joined(separator: ", ") + " }"
  return "video/x-raw\(feature.map { "(\($0))" } ?? ""), format=(string)\(list), width=(int)[ 1, 2147483647 ], "
    + "height=(int)[ 1, 2147483647 ], framerate=(fraction)[ 0/1, 2147483647/1 ]"
}

func makeCaps(_ description: String) -> UnsafeMutablePointer<GstCaps> {
  guard let caps = gst_caps_from_string(description) else {
    fatalError("invalid caps string in the plugin itself: \(description)")
  }
  return caps
}

func addPadTemplate(
  _ klass: gpointer?, name: String, direction: GstPadDirection, presence: GstPadPresence,
  caps: String
) {
  let capsObject = makeCaps(caps)
  let template = gst_pad_template_new(name, direction, presence, capsObject)
  gst_caps_unref(capsObject)
  gst_element_class_add_pad_template(klass?.assumingMemoryBound(to: GstElementClass.self), template)
}

func capsDescription(_ caps: UnsafeMutablePointer<GstCaps>?) -> String {
  guard let caps, let text = gst_caps_to_string(caps) else { return "(none)" }
  defer { g_free(text) }
  return String(cString: text)
}
