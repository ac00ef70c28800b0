// Progress while a pipeline runs: a refreshed line on a terminal's stderr, JSON events for scripts,
// and the summary line at the end.
import Foundation

final class ProgressReporter {
  let quiet: Bool
  let json: Bool
  let showLine: Bool
  let durationNs: UInt64?
  let frameDurationNs: UInt64?
  let start = Date()

  init(options: OutputOptions, durationNs: UInt64?, frameDurationNs: UInt64?) {
    quiet = options.quiet
    json = options.json
    showLine = !options.quiet && !options.json && Console.stderrIsTerminal
    self.durationNs = durationNs
    self.frameDurationNs = frameDurationNs
  }

  var elapsed: Double { Date().timeIntervalSince(start) }

  func started(input: String, output: String, pipeline: String) {
    if json {
      var event: [String: Any] = ["event": "start", "input": input, "output": output, "pipeline": pipeline]
      if let durationNs { event["duration_s"] = Double(durationNs) / 1e9 }
      if let total = totalFrames { event["total_frames"] = total }
      Console.event(event)
    }
  }

  var totalFrames: Int? {
    guard let durationNs, let frameDurationNs, frameDurationNs > 0 else { return nil }
    return Int((Double(durationNs) / Double(frameDurationNs)).rounded())
  }

  func update(frames: Int, positionNs: UInt64) {
    guard showLine || json else { return }
    let elapsed = self.elapsed
    let fps = elapsed > 0 ? Double(frames) / elapsed : 0
    var percent: Double?
    var eta: Double?
    if let durationNs, durationNs > 0 {
      let fraction = min(1, Double(positionNs) / Double(durationNs))
      percent = fraction * 100
      if fraction > 0.001 { eta = elapsed * (1 - fraction) / fraction }
    }
    if json {
      var event: [String: Any] = [
        "event": "progress", "frames": frames, "fps": round2(fps), "elapsed_s": round2(elapsed),
        "position_s": round2(Double(positionNs) / 1e9),
      ]
      if let percent { event["percent"] = round2(percent) }
      if let eta { event["eta_s"] = round2(eta) }
      Console.event(event)
    } else {
      let percentText = percent.map { String(format: "%5.1f%%", $0) } ?? "   ?%"
      let framesText = totalFrames.map { "frame \(frames)/\($0)" } ?? "frame \(frames)"
      Console.status("\(percentText)  \(framesText)  \(String(format: "%.1f", fps)) fps  ETA \(eta.map(formatDuration) ?? "--:--")")
    }
  }

  func warning(_ text: String) {
    if json { Console.event(["event": "warning", "message": text]) } else if !quiet {
      if showLine { Console.clearStatus() }
      Console.note("backdrop: warning: \(text)")
    }
  }

  func note(_ text: String) {
    if json { Console.event(["event": "note", "message": text]) }
    if !quiet {
      if showLine { Console.clearStatus() }
      Console.note("backdrop: \(text)")
    }
  }

  /// Clears the progress line before the error is reported.
  func failed(_ text: String) {
    if showLine { Console.clearStatus() }
  }

  /// The summary: frames, wall time, fps and output size(s).
  func finished(frames: Int, outputs: [(String, Int64)], interrupted: Bool) {
    let elapsed = self.elapsed
    let fps = elapsed > 0 ? Double(frames) / elapsed : 0
    if showLine { Console.clearStatus() }
    if json {
      Console.event([
        "event": "done", "frames": frames, "elapsed_s": round2(elapsed), "fps": round2(fps),
        "outputs": outputs.map { ["path": $0.0, "bytes": $0.1] }, "interrupted": interrupted,
      ])
    }
    guard !quiet else { return }
    let files = outputs.map { "\($0.0) (\(formatBytes($0.1)))" }.joined(separator: ", ")
    Console.note(
      "\(interrupted ? "interrupted: " : "")\(frames) frames in \(String(format: "%.1f", elapsed)) s "
        + "(\(String(format: "%.1f", fps)) fps) → \(files)")
  }

  private func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}
