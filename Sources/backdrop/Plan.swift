// backdrop plan: prints the keyframe-aligned ranges of a clip as JSON, for any scheduler to hand
// out as `backdrop compose INPUT --segment K/N` (the same plan is computed again by each part).
import ArgumentParser
import Foundation

struct Plan: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print the keyframe-aligned time ranges of a clip cut into N parts (JSON).",
    discussion: """
      Each range starts at a keyframe of the input, so every part decodes on its own. Run \
      `backdrop compose INPUT -o part-K.webm --segment K/N` for K = 0..N-1 (anywhere, in any order), \
      then `backdrop join part-*.webm -o whole.webm`.
      """)

  @Argument(help: "Input video.")
  var input: String

  @Option(name: .long, help: "Number of parts.")
  var parts: Int

  func run() throws {
    try reportingErrors {
      let path = URL(fileURLWithPath: input).standardizedFileURL.path
      try checkInput(path)
      try GStreamer.setUp()
      var json = try SegmentPlan.make(path, parts: parts).json
      json["input"] = path
      let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
      FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
  }
}
