// Comparing decoded RGBA frames with the synthetic alpha pattern.
import Foundation
import XCTest

struct AlphaComparison {
  var frames = 0
  var worstPointError = 0
  var worstPoint = ""
  var meanAbsoluteError = 0.0  // over every pixel of every frame
}

/// Compares tightly packed RGBA frames (frame t at t * w * h * 4) with the pattern's alpha.
func compareAlpha(_ rgba: Data, _ pattern: AlphaPattern, firstFrame: Int = 0) -> AlphaComparison {
  var result = AlphaComparison()
  let frameBytes = pattern.width * pattern.height * 4
  result.frames = rgba.count / frameBytes
  var totalError = 0
  rgba.withUnsafeBytes { raw in
    let bytes = raw.bindMemory(to: UInt8.self)
    for index in 0..<result.frames {
      let t = firstFrame + index
      let base = index * frameBytes
      for point in pattern.checkPoints(t) {
        let value = Int(bytes[base + (point.y * pattern.width + point.x) * 4 + 3])
        let error = abs(value - Int(point.alpha)) - point.tolerance
        if error + point.tolerance > result.worstPointError {
          result.worstPointError = error + point.tolerance
          result.worstPoint = "frame \(t) (\(point.x),\(point.y)): \(value), expected \(point.alpha)"
        }
        _ = error
      }
      for y in 0..<pattern.height {
        for x in 0..<pattern.width {
          totalError += abs(Int(bytes[base + (y * pattern.width + x) * 4 + 3]) - Int(pattern.alpha(x: x, y: y, t: t)))
        }
      }
    }
  }
  if result.frames > 0 {
    result.meanAbsoluteError = Double(totalError) / Double(result.frames * pattern.width * pattern.height)
  }
  return result
}

/// Asserts every check point within its tolerance (6 for flat regions, 10 on the gradient).
func assertAlphaMatches(_ rgba: Data, _ pattern: AlphaPattern, frames: Int, firstFrame: Int = 0,
                        maxMeanError: Double, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
  let comparison = compareAlpha(rgba, pattern, firstFrame: firstFrame)
  XCTAssertEqual(comparison.frames, frames, "\(label): decoded frame count", file: file, line: line)
  let frameBytes = pattern.width * pattern.height * 4
  rgba.withUnsafeBytes { raw in
    let bytes = raw.bindMemory(to: UInt8.self)
    for index in 0..<min(frames, rgba.count / frameBytes) {
      let t = firstFrame + index
      for point in pattern.checkPoints(t) {
        let value = Int(bytes[index * frameBytes + (point.y * pattern.width + point.x) * 4 + 3])
        if abs(value - Int(point.alpha)) > point.tolerance {
          XCTFail("\(label): frame \(t) alpha at (\(point.x),\(point.y)) is \(value), expected \(point.alpha) ± \(point.tolerance)", file: file, line: line)
          return
        }
      }
    }
  }
  XCTAssertLessThanOrEqual(comparison.meanAbsoluteError, maxMeanError, "\(label): mean |alpha error| over all pixels", file: file, line: line)
  print("\(label): \(comparison.frames) frames, worst check-point error \(comparison.worstPointError) (\(comparison.worstPoint)), mean |error| \(String(format: "%.3f", comparison.meanAbsoluteError))")
}
