// What the launcher reports when it cannot do its job: one clear sentence on stderr and an exit
// status a script can tell apart (the values follow BSD's sysexits.h where one fits).
import ArgumentParser
import Foundation

/// Runs a command body, turning a LauncherError into its message on stderr (and an "error" event
/// on stdout with --json) and its exit status.
func reportingErrors(json: Bool = false, _ body: () throws -> Void) throws {
  do {
    try body()
  } catch let error as LauncherError {
    if json { Console.event(["event": "error", "message": error.message, "status": Int(error.status)]) }
    Console.error(error.message)
    throw ExitCode(error.status)
  }
}

/// Writing to the terminal: messages and progress on stderr, JSON events and results on stdout.
enum Console {
  static let stderrIsTerminal = isatty(2) != 0

  static func error(_ message: String) {
    FileHandle.standardError.write(Data("backdrop: \(message)\n".utf8))
  }

  static func note(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
  }

  /// Rewrites the current stderr line (progress on a terminal).
  static func status(_ line: String) {
    FileHandle.standardError.write(Data("\r\(line)\u{1B}[K".utf8))
  }

  static func clearStatus() {
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
  }

  /// One JSON object per line on stdout, keys sorted so that scripts and tests see stable text.
  static func event(_ fields: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
    FileHandle.standardOutput.write(data + Data("\n".utf8))
  }
}

/// 1.5 MB, 12.3 kB, 512 B.
func formatBytes(_ bytes: Int64) -> String {
  let value = Double(bytes)
  if value >= 1e9 { return String(format: "%.2f GB", value / 1e9) }
  if value >= 1e6 { return String(format: "%.1f MB", value / 1e6) }
  if value >= 1e3 { return String(format: "%.1f kB", value / 1e3) }
  return "\(bytes) B"
}

/// 0:07, 12:30, 1:02:03.
func formatDuration(_ seconds: Double) -> String {
  guard seconds.isFinite, seconds >= 0 else { return "--:--" }
  let total = Int(seconds.rounded())
  let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60)
  return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
}

/// Quotes a string for a POSIX shell.
func shellQuote(_ text: String) -> String {
  if !text.isEmpty && text.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) { return text }
  return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// A gst-launch description as gst-launch-1.0 arguments for a shell: gst-launch-1.0 escapes each
/// argument as one token, so the description is split at spaces outside double quotes and each
/// piece quoted for the shell.
func gstLaunchArguments(_ description: String) -> String {
  var tokens: [String] = []
  var current = ""
  var inQuotes = false
  var previous: Character = " "
  for character in description {
    if character == "\"" && previous != "\\" { inQuotes.toggle() }
    if character == " " && !inQuotes {
      if !current.isEmpty { tokens.append(current) }
      current = ""
    } else {
      current.append(character)
    }
    previous = character
  }
  if !current.isEmpty { tokens.append(current) }
  return tokens.map { $0 == "!" ? "!" : shellQuote($0) }.joined(separator: " ")
}

/// Quotes a property value for gst_parse_launch / gst-launch-1.0.
func gstQuote(_ text: String) -> String {
  "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
