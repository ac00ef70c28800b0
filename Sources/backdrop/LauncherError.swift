// The launcher's errors: one clear sentence and an exit status a script can tell apart (the values
// follow BSD's sysexits.h where one fits). Foundation only, so that fuzz targets can build it.
import Foundation

struct LauncherError: Error, CustomStringConvertible {
  var message: String
  var status: Int32

  var description: String { message }

  /// A command line that cannot work (unknown output extension, bad option value).
  static func usage(_ message: String) -> LauncherError { LauncherError(message: message, status: 64) }
  /// Input or model data that is not what it should be (no video stream, wrong kind of model,
  /// checksum mismatch).
  static func data(_ message: String) -> LauncherError { LauncherError(message: message, status: 65) }
  /// A file that is missing or cannot be read.
  static func noInput(_ message: String) -> LauncherError { LauncherError(message: message, status: 66) }
  /// Something needed is not available (unknown model name, model not downloaded, plugin missing).
  static func unavailable(_ message: String) -> LauncherError { LauncherError(message: message, status: 69) }
  /// The pipeline failed while running (decoder, engine, encoder errors).
  static func failed(_ message: String) -> LauncherError { LauncherError(message: message, status: 70) }
  /// The output cannot be created (folder missing or not writable).
  static func cannotCreate(_ message: String) -> LauncherError { LauncherError(message: message, status: 73) }
  /// Input/output trouble while running (an interrupted download).
  static func io(_ message: String) -> LauncherError { LauncherError(message: message, status: 74) }
  /// Aborted by a second Ctrl-C.
  static func aborted(_ message: String) -> LauncherError { LauncherError(message: message, status: 130) }
}
