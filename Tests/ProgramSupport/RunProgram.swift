// Running a program to completion from a test, as the launcher and serve tests do with `backdrop`,
// gst-launch-1.0 and ffprobe: one implementation for both test targets (they re-export it).
import Foundation

public struct RunResult: Sendable {
  public var status: Int32
  public var stdout: String
  public var stderr: String
  public var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }

  public init(status: Int32, stdout: String, stderr: String) {
    self.status = status
    self.stdout = stdout
    self.stderr = stderr
  }
}

/// Runs a program to completion, collecting both outputs; after `timeout` seconds it is killed
/// (the result then says so in stderr and the status is the signal's).
public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                       timeout: TimeInterval = 300) throws -> RunResult {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  if let environment { process.environment = environment }
  let out = Pipe(), err = Pipe()
  process.standardOutput = out
  process.standardError = err
  try process.run()
  // Both pipes are drained while the program runs, so a chatty program never blocks on a full pipe.
  nonisolated(unsafe) var stdoutData = Data(), stderrData = Data()
  let readers = [
    Thread { stdoutData = out.fileHandleForReading.readDataToEndOfFile() },
    Thread { stderrData = err.fileHandleForReading.readDataToEndOfFile() },
  ]
  readers.forEach { $0.start() }
  let deadline = Date().addingTimeInterval(timeout)
  var timedOut = false
  while process.isRunning {
    if Date() > deadline {
      timedOut = true
      kill(process.processIdentifier, SIGKILL)
      break
    }
    usleep(10_000)
  }
  process.waitUntilExit()
  while readers.contains(where: { !$0.isFinished }) { usleep(1000) }
  var stderr = String(decoding: stderrData, as: UTF8.self)
  if timedOut { stderr += "\n[killed after \(Int(timeout)) s]" }
  return RunResult(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self), stderr: stderr)
}

/// The first executable named `tool` on PATH.
public func which(_ tool: String) -> String? {
  for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
    let path = "\(directory)/\(tool)"
    if FileManager.default.isExecutableFile(atPath: path) { return path }
  }
  return nil
}

/// Where the package and its built products are, for tests that run `backdrop` as a user would.
public enum BuiltProducts {
  public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  /// The folder with the built `backdrop` (and libgstbackdrop.so, libbackdrop-torch.so beside it):
  /// BACKDROP_BUILD_DIR, else the nearest folder above the test bundle that holds `backdrop`.
  public static let directory: URL = {
    if let path = ProcessInfo.processInfo.environment["BACKDROP_BUILD_DIR"] { return URL(fileURLWithPath: path) }
    var url = Bundle.main.bundleURL
    while url.path != "/" && !FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("backdrop").path) {
      url = url.deletingLastPathComponent()
    }
    return url.path == "/" ? packageRoot.appendingPathComponent(".build/debug") : url
  }()
}
