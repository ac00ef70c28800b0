// libFuzzer target (Swift, -sanitize=fuzzer): the launcher's --background and --size parsers
// (Sources/backdrop/OptionParsers.swift) on arbitrary text. A value is either refused with a usage
// (64) or missing-file (66) LauncherError, or parsed into something that obeys the documented
// ranges and reads back the same; a trap, another error or a broken invariant is a finding.
import Foundation

private func check(_ condition: Bool, _ what: @autoclosure () -> String) {
  if !condition {
    FileHandle.standardError.write(Data("invariant broken: \(what())\n".utf8))
    abort()
  }
}

private func isASCIIHex(_ text: Substring) -> Bool {
  text.utf8.allSatisfy { (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) }
}

private func fuzzBackground(_ text: String) {
  do {
    let parsed = try Background.parse(text)
    let lower = text.lowercased()
    switch parsed {
    case .none: check(lower == "none" || lower == "transparent", "none from \(text.debugDescription)")
    case .green: check(lower == "green", "green from \(text.debugDescription)")
    case .blur(nil): check(lower == "blur", "blur from \(text.debugDescription)")
    case .blur(let strength?):
      check(strength.isFinite && strength >= 1 && strength <= 500, "blur strength \(strength) from \(text.debugDescription)")
    case .color(let argb):
      check(argb >> 24 == 0xFF, "opaque colour")
      var digits = text[text.index(after: text.firstIndex(of: ":")!)...]
      if digits.hasPrefix("#") { digits = digits.dropFirst() }
      check(digits.utf8.count == 6 && isASCIIHex(digits), "colour from non-hex digits \(text.debugDescription)")
      let hex = String(argb & 0xFF_FFFF, radix: 16, uppercase: true)
      let again = try Background.parse("color:#" + String(repeating: "0", count: 6 - hex.count) + hex)
      check(again == parsed, "colour round trip of \(text.debugDescription)")
    case .image(let path):
      check(path.hasPrefix("/") && FileManager.default.isReadableFile(atPath: path), "image path \(path.debugDescription)")
    }
  } catch let error as LauncherError {
    check(error.status == 64 || error.status == 66, "status \(error.status) for \(text.debugDescription)")
    // Compared as bytes: a combining mark in the value joins the space before it into one Character.
    check(error.message.utf8.starts(with: "--background ".utf8) || error.message.utf8.starts(with: "background image".utf8),
          "the message names the option: \(error.message)")
  } catch {
    check(false, "unexpected error \(error)")
  }
}

private func fuzzSize(_ text: String) {
  do {
    let (width, height) = try parseInferenceSize(text)
    check((32...4096).contains(width) && (32...4096).contains(height), "size \(width)x\(height) from \(text.debugDescription)")
    let again = try parseInferenceSize("\(width)x\(height)")
    check(again == (width, height), "size round trip of \(text.debugDescription)")
  } catch let error as LauncherError {
    check(error.status == 64 && error.message.utf8.starts(with: "--size ".utf8), "size error \(error.status): \(error.message)")
  } catch {
    check(false, "unexpected error \(error)")
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  fuzzBackground(text)
  fuzzSize(text)
  // The same text behind each prefix the parsers know, so the fuzzer reaches every branch.
  for prefix in ["color:", "color:#", "colour:", "blur:", "image:"] { fuzzBackground(prefix + text) }
  return 0
}
