// GStreamer debug logging from Swift (GST_CAT_* are variadic macros, so the shim formats nothing:
// Swift builds the message and the shim hands it to gst_debug_log).
import CBackdropShim
import CGStreamer

/// A GStreamer debug category, e.g. `GST_DEBUG=birefnetmatte:5`.
struct DebugCategory: @unchecked Sendable {
  // GstDebugCategory pointers live for the whole process and are safe to share between threads.
  let raw: UnsafeMutablePointer<GstDebugCategory>

  init(_ name: String, _ description: String) {
    raw = bd_debug_category_new(name, description)
  }

  var threshold: GstDebugLevel { gst_debug_category_get_threshold(raw) }

  func log(
    _ level: GstDebugLevel, _ object: gpointer?, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, function: StaticString = #function, line: Int = #line
  ) {
    guard level.rawValue <= threshold.rawValue else { return }
    bd_log(
      raw, level, object?.assumingMemoryBound(to: GObject.self), file.description,
      function.description, Int32(line), message())
  }

  func error(
    _ object: gpointer?, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, function: StaticString = #function, line: Int = #line
  ) {
    log(GST_LEVEL_ERROR, object, message(), file: file, function: function, line: line)
  }
  func warning(
    _ object: gpointer?, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, function: StaticString = #function, line: Int = #line
  ) {
    log(GST_LEVEL_WARNING, object, message(), file: file, function: function, line: line)
  }
  func info(
    _ object: gpointer?, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, function: StaticString = #function, line: Int = #line
  ) {
    log(GST_LEVEL_INFO, object, message(), file: file, function: function, line: line)
  }
  func debug(
    _ object: gpointer?, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, function: StaticString = #function, line: Int = #line
  ) {
    log(GST_LEVEL_DEBUG, object, message(), file: file, function: function, line: line)
  }
}
