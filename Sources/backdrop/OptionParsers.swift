// The launcher's option values that are more than a word: --background and --size. Foundation
// only (no ArgumentParser, no GStreamer), so fuzz/launcher_options can build and fuzz them.
import Foundation

enum Background: Equatable {
  case none, green, color(UInt32), image(String), blur(Double?)

  static func parse(_ text: String) throws -> Background {
    let lower = text.lowercased()
    switch lower {
    case "none", "transparent": return .none
    case "green": return .green
    case "blur": return .blur(nil)
    default: break
    }
    if lower.hasPrefix("color:") || lower.hasPrefix("colour:") {
      var hex = String(text[text.index(after: text.firstIndex(of: ":")!)...])
      if hex.hasPrefix("#") { hex.removeFirst() }
      guard hex.count == 6, hex.allSatisfy(\.isHexDigit), let rgb = UInt32(hex, radix: 16) else {
        throw LauncherError.usage("--background \(text): a colour is written color:#RRGGBB, e.g. color:#00B140")
      }
      return .color(0xFF00_0000 | rgb)
    }
    if lower.hasPrefix("image:") {
      let path = String(text.dropFirst("image:".count))
      guard !path.isEmpty else { throw LauncherError.usage("--background image:PATH needs a file") }
      let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
      guard FileManager.default.isReadableFile(atPath: absolute) else {
        throw LauncherError.noInput("background image not found or not readable: \(path)")
      }
      return .image(absolute)
    }
    if lower.hasPrefix("blur:") {
      guard let strength = Double(lower.dropFirst("blur:".count)), strength >= 1, strength <= 500 else {
        throw LauncherError.usage("--background \(text): blur strength is a number of pixels from 1 to 500")
      }
      return .blur(strength)
    }
    throw LauncherError.usage(
      "--background \(text): expected none, green, color:#RRGGBB, image:PATH or blur[:STRENGTH]")
  }
}

/// --size WIDTHxHEIGHT, each 32 to 4096.
func parseInferenceSize(_ text: String) throws -> (Int, Int) {
  let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
  guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
    let w = Int(parts[0]), let h = Int(parts[1]), (32...4096).contains(w), (32...4096).contains(h)
  else {
    throw LauncherError.usage("--size \(text): expected WIDTHxHEIGHT, each 32 to 4096, e.g. 512x512")
  }
  return (w, h)
}
