// ERROR/WARNING messages on the bus, as GST_ELEMENT_ERROR / GST_ELEMENT_WARNING post them.
import CBackdropShim
import CGStreamer

enum ErrorDomain {
  case resource, stream, core, library

  var quark: GQuark {
    switch self {
    case .resource: gst_resource_error_quark()
    case .stream: gst_stream_error_quark()
    case .core: gst_core_error_quark()
    case .library: gst_library_error_quark()
    }
  }
}

func postError(
  _ element: UnsafeMutablePointer<GstElement>, _ domain: ErrorDomain, code: Int32,
  _ text: String, debug: String? = nil, file: StaticString = #fileID,
  function: StaticString = #function, line: Int = #line
) {
  bd_element_message(
    element, GST_MESSAGE_ERROR, domain.quark, code, text, debug, file.description,
    function.description, Int32(line))
}

func postWarning(
  _ element: UnsafeMutablePointer<GstElement>, _ domain: ErrorDomain, code: Int32,
  _ text: String, debug: String? = nil, file: StaticString = #fileID,
  function: StaticString = #function, line: Int = #line
) {
  bd_element_message(
    element, GST_MESSAGE_WARNING, domain.quark, code, text, debug, file.description,
    function.description, Int32(line))
}

func postInfo(
  _ element: UnsafeMutablePointer<GstElement>, _ domain: ErrorDomain, code: Int32,
  _ text: String, debug: String? = nil, file: StaticString = #fileID,
  function: StaticString = #function, line: Int = #line
) {
  bd_element_message(
    element, GST_MESSAGE_INFO, domain.quark, code, text, debug, file.description,
    function.description, Int32(line))
}

// Error codes as GStreamer numbers them (GstResourceError, GstStreamError, GstCoreError).
enum ResourceError {
  static let notFound = Int32(GST_RESOURCE_ERROR_NOT_FOUND.rawValue)
  static let openRead = Int32(GST_RESOURCE_ERROR_OPEN_READ.rawValue)  // a model file that cannot be used
  static let read = Int32(GST_RESOURCE_ERROR_READ.rawValue)
  static let settings = Int32(GST_RESOURCE_ERROR_SETTINGS.rawValue)
  static let failed = Int32(GST_RESOURCE_ERROR_FAILED.rawValue)
}

enum StreamError {
  static let failed = Int32(GST_STREAM_ERROR_FAILED.rawValue)
  static let format = Int32(GST_STREAM_ERROR_FORMAT.rawValue)
  static let encode = Int32(GST_STREAM_ERROR_ENCODE.rawValue)
  static let decode = Int32(GST_STREAM_ERROR_DECODE.rawValue)
}

enum LibraryError {
  static let initFailed = Int32(GST_LIBRARY_ERROR_INIT.rawValue)
}
