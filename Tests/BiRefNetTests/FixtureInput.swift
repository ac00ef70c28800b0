// The model input of a fixture case. The repository's copy of the fixtures drops `input` where the
// fixture README's image formula makes it ("Input images"; scripts/birefnet_fixtures.py trims the
// shared set and checks the formula bit for bit first): the file's metadata `input_images` names
// the images, `logits` gives the size. The frame case keeps its stored input (it comes out of
// torch's antialiased resize).
import Foundation

enum FixtureImage {
  /// Image k: (phase, disc (cx, cy, r), rectangle (x0, y0, x1, y1)).
  private static let table: [Int: (phase: Double, disc: (Double, Double, Double), rect: (Double, Double, Double, Double))] = [
    0: (0, (0.38, 0.42, 0.22), (0.62, 0.15, 0.90, 0.55)),
    1: (1, (0.60, 0.62, 0.18), (0.10, 0.10, 0.35, 0.80)),
    2: (2, (0.50, 0.45, 0.25), (0.08, 0.60, 0.30, 0.92)),
  ]
  private static let mean: [Float] = [0.485, 0.456, 0.406]
  private static let std: [Float] = [0.229, 0.224, 0.225]

  /// Image k at h x w, rounded to float32 and ImageNet-normalised in float32, planar (CHW).
  static func normalised(_ k: Int, height h: Int, width w: Int) throws -> [Float] {
    guard let spec = table[k] else { throw TestError("the fixture README has no image \(k)") }
    let (cx, cy, r) = spec.disc
    let (x0, y0, x1, y1) = spec.rect
    var out = [Float](repeating: 0, count: 3 * h * w)
    for y in 0..<h {
      let v = (Double(y) + 0.5) / Double(h)
      for x in 0..<w {
        let u = (Double(x) + 0.5) / Double(w)
        var rgb = (0.2 + 0.6 * u, 0.2 + 0.6 * v, 0.5 + 0.3 * sin(2 * Double.pi * (u + v) + spec.phase))
        let dx = (u - cx) * Double(w), dy = (v - cy) * Double(h)
        if (dx * dx + dy * dy).squareRoot() / Double(min(h, w)) < r { rgb = (0.95, 0.85, 0.30) }
        if x0 <= u && u <= x1 && y0 <= v && v <= y1 { rgb = (0.15, 0.35, 0.85) }
        for (c, value) in [rgb.0, rgb.1, rgb.2].enumerated() {
          out[(c * h + y) * w + x] = (Float(value) - mean[c]) / std[c]
        }
      }
    }
    return out
  }
}

extension SafeTensorsFile {
  /// The case's model input: the stored `input`, or the images its metadata names.
  func modelInput() throws -> Tensor {
    if entries["input"] != nil { return try floats("input") }
    guard let names = metadata["input_images"], let logits = entries["logits"], logits.shape.count == 4 else {
      throw TestError("fixture has neither `input` nor `input_images` metadata with `logits`")
    }
    let images = try names.split(separator: ",").map { part -> Int in
      guard let k = Int(part) else { throw TestError("bad input_images metadata: \(names)") }
      return k
    }
    let (h, w) = (logits.shape[2], logits.shape[3])
    return Tensor(shape: [images.count, 3, h, w],
                  values: try images.flatMap { try FixtureImage.normalised($0, height: h, width: w) })
  }
}
