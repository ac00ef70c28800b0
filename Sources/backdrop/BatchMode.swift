// `backdrop compose --batch list.txt --out-dir DIR`: many clips, one after another, each in its
// own child process (`backdrop compose INPUT -o DIR/NAME.EXT` with the same options), so that one
// bad file fails alone. Resumable: an output that exists is finished (compose writes under a
// temporary name and renames at the end), so it is skipped; a failed clip is tried once more.
// DIR/batch-summary.json says what happened to every line.
import ArgumentParser
import Foundation

struct BatchOptions: ParsableArguments {
  @Option(name: .long, help: ArgumentHelp("A text file with one input per line (blank lines and # comments skipped); needs --out-dir.", valueName: "LIST"))
  var batch: String?

  @Option(name: .long, help: ArgumentHelp("Folder for the outputs of --batch (NAME.webm for an input NAME.EXT).", valueName: "DIR"))
  var outDir: String?

  @Option(name: .long, help: ArgumentHelp("Output extension for --batch: webm or mp4, or png for a list of photos (one cutout each).", valueName: "EXT"))
  var batchFormat: String = "webm"
}

struct BatchItem {
  var line: Int
  var input: String
  var output: String
}

enum BatchMode {
  /// Reads the list, names the outputs and refuses two inputs that would write the same file.
  static func items(list: String, outDir: String, format: String) throws -> [BatchItem] {
    guard let text = try? String(contentsOfFile: list, encoding: .utf8) else {
      throw LauncherError.noInput("--batch \(list): cannot read the list")
    }
    let listDirectory = URL(fileURLWithPath: list).standardizedFileURL.deletingLastPathComponent()
    var items: [BatchItem] = []
    var byOutput: [String: Int] = [:]
    for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let entry = raw.trimmingCharacters(in: .whitespaces)
      if entry.isEmpty || entry.hasPrefix("#") { continue }
      // Relative inputs are relative to the list's folder, so a list travels with its clips.
      let input = URL(fileURLWithPath: entry, relativeTo: listDirectory).standardizedFileURL.path
      let name = URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent
      let output = URL(fileURLWithPath: outDir).standardizedFileURL.appendingPathComponent("\(name).\(format)").path
      if let other = byOutput[output] {
        throw LauncherError.usage(
          "--batch \(list): lines \(other) and \(number + 1) would both write \(output); rename one of the inputs")
      }
      byOutput[output] = number + 1
      items.append(BatchItem(line: number + 1, input: input, output: output))
    }
    guard !items.isEmpty else { throw LauncherError.usage("--batch \(list): the list names no input") }
    return items
  }

  /// This run's compose options without the batch ones (they apply to every clip).
  static func sharedArguments(_ arguments: [String]) -> [String] {
    var shared: [String] = []
    var skipNext = false
    for argument in arguments {
      if skipNext { skipNext = false; continue }
      if ["--batch", "--out-dir", "--batch-format"].contains(argument) { skipNext = true; continue }
      if ["--batch=", "--out-dir=", "--batch-format="].contains(where: { argument.hasPrefix($0) }) { continue }
      if argument == "--json" { continue }  // children report in text; the batch writes its summary
      shared.append(argument)
    }
    return shared
  }

  static func run(options: BatchOptions, quiet: Bool) throws {
    guard let list = options.batch, let outDir = options.outDir else {
      throw LauncherError.usage("--batch needs --out-dir (and --out-dir is only for --batch)")
    }
    guard ["webm", "mp4", "png"].contains(options.batchFormat) else {
      throw LauncherError.usage("--batch-format \(options.batchFormat): webm, mp4 or png (photos)")
    }
    var isDirectory: ObjCBool = false
    if !FileManager.default.fileExists(atPath: outDir, isDirectory: &isDirectory) {
      do { try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true) } catch {
        throw LauncherError.cannotCreate("--out-dir \(outDir): \(error.localizedDescription)")
      }
    } else if !isDirectory.boolValue {
      throw LauncherError.cannotCreate("--out-dir \(outDir) is a file, not a folder")
    }
    let items = try items(list: list, outDir: outDir, format: options.batchFormat)
    // CommandLine.arguments: [program, "compose", options..., (no positional input in batch mode)]
    let shared = sharedArguments(Array(CommandLine.arguments.dropFirst(2)))
    let executable = executableDirectory().appendingPathComponent("backdrop").path
    var results: [[String: Any]] = []
    var failed = 0
    for (position, item) in items.enumerated() {
      let label = "[\(position + 1)/\(items.count)] \(item.input)"
      if FileManager.default.fileExists(atPath: item.output) {
        if !quiet { Console.note("\(label): skipped, \(item.output) exists") }
        results.append(["line": item.line, "input": item.input, "output": item.output, "status": "skipped", "attempts": 0])
        continue
      }
      var attempts = 0
      var outcome: (status: Int32, message: String) = (0, "")
      let started = Date()
      while attempts < 2 {
        attempts += 1
        if !quiet { Console.note("\(label)\(attempts > 1 ? ": retrying" : "") → \(item.output)") }
        outcome = runChild(executable, ["compose", item.input, "-o", item.output, "--quiet"] + shared)
        if outcome.status == 0 { break }
        // Bad usage or a missing input fails the same way twice: no retry.
        if outcome.status == 64 || outcome.status == 66 || outcome.status == 130 { break }
      }
      var entry: [String: Any] = [
        "line": item.line, "input": item.input, "output": item.output, "attempts": attempts,
        "seconds": (Date().timeIntervalSince(started) * 100).rounded() / 100,
      ]
      if outcome.status == 0 {
        entry["status"] = "done"
      } else {
        failed += 1
        entry["status"] = "failed"
        entry["exit_status"] = Int(outcome.status)
        entry["error"] = outcome.message
        Console.error("\(label): \(outcome.message)")
      }
      results.append(entry)
      if outcome.status == 130 { break }  // interrupted: stop the batch (a rerun resumes)
    }
    let counts: [(String, Int)] = ["done", "skipped", "failed"].map { kind in
      (kind, results.filter { $0["status"] as? String == kind }.count)
    }
    var summary: [String: Any] = ["items": results, "total": items.count]
    for (kind, count) in counts { summary[kind] = count }
    let summaryPath = URL(fileURLWithPath: outDir).appendingPathComponent("batch-summary.json").path
    if let data = try? JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
      FileManager.default.createFile(atPath: summaryPath, contents: data + Data("\n".utf8))
    }
    if !quiet {
      Console.note("batch: " + counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ") + " of \(items.count) (\(summaryPath))")
    }
    if failed > 0 { throw LauncherError.failed("batch: \(failed) of \(items.count) input(s) failed (see \(summaryPath))") }
  }

  /// Runs a child to completion; its stderr's last line is the message of a failure.
  private static func runChild(_ executable: String, _ arguments: [String]) -> (status: Int32, message: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    do { try process.run() } catch { return (70, "cannot start \(executable): \(error.localizedDescription)") }
    let data = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
    let message = lines.last.map { String($0).replacingOccurrences(of: "backdrop: ", with: "") } ?? "exit status \(process.terminationStatus)"
    return (process.terminationStatus, message)
  }
}
