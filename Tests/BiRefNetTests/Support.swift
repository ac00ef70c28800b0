// Shared helpers of the BiRefNet parity tests: where things are, the engine opened with dlopen
// (the tests never link it), a small safetensors reader, manifests, bdrand weight files written
// by CBDRand, and the error metrics of the fixture README.
import CBackdropEngineABI
import CBDRand
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

enum Paths {
  /// The package root, derived from this file's path (Tests/BiRefNetTests/Support.swift).
  static let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  /// The reference fixtures live in the repository (a copy of the shared ones), so a plain clone
  /// runs every parity test.
  static let fixtures: URL = packageRoot.appendingPathComponent("Tests/Fixtures/birefnet")

  static var engineLibrary: String {
    if let env = ProcessInfo.processInfo.environment["BACKDROP_ENGINE"], !env.isEmpty { return env }
    return packageRoot.appendingPathComponent(".build/debug/libbackdrop-torch.so").path
  }

  /// Throws XCTSkip (printing why) when the reference fixtures are not there.
  static func requireFixtures(_ files: [String] = []) throws {
    let fm = FileManager.default
    var missing = [String]()
    if !fm.fileExists(atPath: fixtures.path) { missing.append(fixtures.path) }
    for f in files where !fm.fileExists(atPath: fixtures.appendingPathComponent(f).path) {
      missing.append(fixtures.appendingPathComponent(f).path)
    }
    if !missing.isEmpty {
      let reason = "BiRefNet reference fixtures not found (\(missing.joined(separator: ", "))); skipping"
      print("SKIP: \(reason)")
      throw XCTSkip(reason)
    }
  }
}

struct TestError: Error, CustomStringConvertible {
  let description: String
  init(_ d: String) { description = d }
}

/// The engine library opened like the plugin opens it, and the entry points the tests use.
final class Engine: @unchecked Sendable {
  let handle: UnsafeMutableRawPointer
  let path: String
  let modelOpen: bd_model_open_fn
  let modelRelease: bd_model_release_fn
  let modelGetInfo: bd_model_get_info_fn
  let sessionCreate: bd_session_create_fn
  let sessionDestroy: bd_session_destroy_fn
  let sessionProcess: bd_session_process_fn
  let testingForward: bd_testing_birefnet_forward_fn

  private static let lock = NSLock()
  nonisolated(unsafe) private static var shared: Engine?
  nonisolated(unsafe) private static var failure: String?

  /// The engine, or XCTSkip/failure when it cannot be opened.
  static func get() throws -> Engine {
    lock.lock()
    defer { lock.unlock() }
    if let e = shared { return e }
    if let f = failure { throw TestError(f) }
    let path = Paths.engineLibrary
    guard FileManager.default.fileExists(atPath: path) else {
      failure = "engine library not found at \(path) (build it with `swift build --product backdrop-torch` or set BACKDROP_ENGINE)"
      throw TestError(failure!)
    }
    // As the element does: idle OpenMP workers must not spin against OpenBLAS (libgomp reads this
    // when libtorch is loaded).
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0)
    guard let h = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
      failure = "dlopen(\(path)) failed: \(String(cString: dlerror()))"
      throw TestError(failure!)
    }
    func sym<T>(_ name: String, _: T.Type) throws -> T {
      guard let p = dlsym(h, name) else {
        failure = "\(path) has no symbol \(name)"
        throw TestError(failure!)
      }
      return unsafeBitCast(p, to: T.self)
    }
    let e = Engine(
      handle: h, path: path,
      modelOpen: try sym("bd_model_open", bd_model_open_fn.self),
      modelRelease: try sym("bd_model_release", bd_model_release_fn.self),
      modelGetInfo: try sym("bd_model_get_info", bd_model_get_info_fn.self),
      sessionCreate: try sym("bd_session_create", bd_session_create_fn.self),
      sessionDestroy: try sym("bd_session_destroy", bd_session_destroy_fn.self),
      sessionProcess: try sym("bd_session_process", bd_session_process_fn.self),
      testingForward: try sym("bd_testing_birefnet_forward", bd_testing_birefnet_forward_fn.self))
    shared = e
    return e
  }

  private init(handle: UnsafeMutableRawPointer, path: String, modelOpen: bd_model_open_fn,
               modelRelease: bd_model_release_fn, modelGetInfo: bd_model_get_info_fn,
               sessionCreate: bd_session_create_fn, sessionDestroy: bd_session_destroy_fn,
               sessionProcess: bd_session_process_fn, testingForward: bd_testing_birefnet_forward_fn) {
    self.handle = handle
    self.path = path
    self.modelOpen = modelOpen
    self.modelRelease = modelRelease
    self.modelGetInfo = modelGetInfo
    self.sessionCreate = sessionCreate
    self.sessionDestroy = sessionDestroy
    self.sessionProcess = sessionProcess
    self.testingForward = testingForward
  }

  /// Opens a model on the CPU (FP32 unless told). Returns the handle or the status and error text.
  func open(_ path: String, patchOrder: bd_patch_order = BD_PATCH_ORDER_AUTO, precision: bd_precision = BD_PRECISION_FP32)
    -> (model: OpaquePointer?, status: bd_status, message: String)
  {
    var model: OpaquePointer?
    var err = [CChar](repeating: 0, count: 8192)
    let status = path.withCString { cpath -> bd_status in
      var o = bd_model_options()
      o.path = cpath
      o.device = BD_DEVICE_CPU
      o.precision = precision
      o.patch_order = patchOrder
      o.threads = 0
      return modelOpen(&o, &model, &err, err.count)
    }
    return (model, status, String(cString: err))
  }

  /// Runs the native forward pass through the test-only entry point; returns every named tensor.
  func forward(_ path: String, input: Tensor, patchOrder: bd_patch_order = BD_PATCH_ORDER_AUTO,
               precision: bd_precision = BD_PRECISION_FP32) throws -> [String: Tensor] {
    final class Box { var tensors: [String: Tensor] = [:] }
    let box = Box()
    var err = [CChar](repeating: 0, count: 8192)
    let ctx = Unmanaged.passUnretained(box).toOpaque()
    let callback: bd_testing_tensor_fn = { user, name, data, shape, ndim in
      let box = Unmanaged<Box>.fromOpaque(user!).takeUnretainedValue()
      let dims = (0..<Int(ndim)).map { Int(shape![$0]) }
      let count = dims.reduce(1, *)
      box.tensors[String(cString: name!)] = Tensor(shape: dims, values: Array(UnsafeBufferPointer(start: data, count: count)))
    }
    let status = path.withCString { cpath -> bd_status in
      var o = bd_model_options()
      o.path = cpath
      o.device = BD_DEVICE_CPU
      o.precision = precision
      o.patch_order = patchOrder
      return input.values.withUnsafeBufferPointer { buf in
        testingForward(&o, buf.baseAddress, Int32(input.shape[0]), Int32(input.shape[2]), Int32(input.shape[3]),
                       callback, ctx, &err, err.count)
      }
    }
    withExtendedLifetime(box) {}
    if status != BD_OK { throw TestError("bd_testing_birefnet_forward: status \(status.rawValue): \(String(cString: err))") }
    return box.tensors
  }
}

struct Tensor {
  var shape: [Int]
  var values: [Float]
}

/// A minimal safetensors reader for the fixtures (F32, U8, I64 as raw bytes).
struct SafeTensorsFile {
  struct Entry { let dtype: String; let shape: [Int]; let begin: Int; let end: Int }
  let data: Data
  let dataStart: Int
  let entries: [String: Entry]
  let metadata: [String: String]

  init(_ url: URL) throws {
    data = try Data(contentsOf: url, options: .alwaysMapped)
    guard data.count >= 8 else { throw TestError("\(url.path): too short") }
    let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    guard n < UInt64(data.count - 8) else { throw TestError("\(url.path): bad header length") }
    let header = data.subdata(in: 8..<(8 + Int(n)))
    guard let json = try JSONSerialization.jsonObject(with: header) as? [String: Any] else {
      throw TestError("\(url.path): header is not an object")
    }
    var entries = [String: Entry]()
    var metadata = [String: String]()
    for (k, v) in json {
      if k == "__metadata__" { metadata = v as? [String: String] ?? [:]; continue }
      guard let o = v as? [String: Any], let dt = o["dtype"] as? String, let sh = o["shape"] as? [Int],
        let off = o["data_offsets"] as? [Int], off.count == 2
      else { throw TestError("\(url.path): bad entry \(k)") }
      entries[k] = Entry(dtype: dt, shape: sh, begin: off[0], end: off[1])
    }
    self.dataStart = 8 + Int(n)
    self.entries = entries
    self.metadata = metadata
  }

  func floats(_ name: String) throws -> Tensor {
    guard let e = entries[name], e.dtype == "F32" else { throw TestError("fixture has no F32 tensor \(name)") }
    let count = (e.end - e.begin) / 4
    var out = [Float](repeating: 0, count: count)
    out.withUnsafeMutableBytes { dst in
      data.copyBytes(to: dst, from: (dataStart + e.begin)..<(dataStart + e.end))
    }
    return Tensor(shape: e.shape, values: out)
  }

  func bytes(_ name: String) throws -> (shape: [Int], values: [UInt8]) {
    guard let e = entries[name], e.dtype == "U8" else { throw TestError("fixture has no U8 tensor \(name)") }
    return (e.shape, [UInt8](data[(dataStart + e.begin)..<(dataStart + e.end)]))
  }
}

/// One manifest key: what the official state_dict holds.
struct ManifestKey {
  let key: String
  let shape: [Int64]
  let dtype: String  // "F32" or "I64"
  let usedInInference: Bool
}

enum Manifest {
  static func load(_ backbone: String) throws -> [ManifestKey] {
    let url = Paths.fixtures.appendingPathComponent("manifest_\(backbone).json")
    let data = try Data(contentsOf: url)
    guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
      let keys = root["keys"] as? [[String: Any]]
    else { throw TestError("\(url.path): no keys") }
    return try keys.map { k in
      guard let key = k["key"] as? String, let shape = k["shape"] as? [Int], let dt = k["dtype"] as? String else {
        throw TestError("\(url.path): bad key entry")
      }
      return ManifestKey(key: key, shape: shape.map(Int64.init), dtype: dt == "int64" ? "I64" : "F32",
                         usedInInference: (k["used_in_inference"] as? Bool) ?? true)
    }
  }
}

/// A tensor to write: manifest key plus what a test changes about it.
struct WeightSpec {
  var key: String
  var ruleKey: String? = nil
  var dtype: String
  var shape: [Int64]
  var zeros: Bool = false

  init(_ m: ManifestKey) { key = m.key; dtype = m.dtype; shape = m.shape }
  init(key: String, dtype: String, shape: [Int64]) { self.key = key; self.dtype = dtype; self.shape = shape }
}

enum Weights {
  /// Writes a safetensors file with bdrand values (CBDRand, in C).
  static func write(_ specs: [WeightSpec], to url: URL, metadata: [String: String]? = nil) throws {
    var cstrings = [UnsafeMutablePointer<CChar>]()
    defer { cstrings.forEach { free($0) } }
    func c(_ s: String) -> UnsafePointer<CChar> {
      let p = strdup(s)!
      cstrings.append(p)
      return UnsafePointer(p)
    }
    var cs = [bdr_tensor_spec]()
    for s in specs {
      var t = bdr_tensor_spec()
      t.key = c(s.key)
      t.rule_key = s.ruleKey.map { c($0) }
      t.dtype = c(s.dtype)
      t.ndim = Int32(s.shape.count)
      withUnsafeMutableBytes(of: &t.shape) { raw in
        let p = raw.bindMemory(to: Int64.self)
        for (i, d) in s.shape.enumerated() where i < 8 { p[i] = d }
      }
      t.fill = s.zeros ? BDR_FILL_ZEROS : BDR_FILL_BDRAND
      cs.append(t)
    }
    var meta: String? = nil
    if let m = metadata {
      let d = try JSONSerialization.data(withJSONObject: m, options: [.sortedKeys])
      meta = String(data: d, encoding: .utf8)
    }
    var err = [CChar](repeating: 0, count: 1024)
    let rc = cs.withUnsafeBufferPointer { buf -> Int32 in
      if let meta {
        return meta.withCString { bdr_write_safetensors(url.path, buf.baseAddress, buf.count, $0, &err, err.count) }
      }
      return bdr_write_safetensors(url.path, buf.baseAddress, buf.count, nil, &err, err.count)
    }
    if rc != 0 { throw TestError("writing \(url.path): \(String(cString: err))") }
  }

  /// A fresh scratch directory for this test process.
  static let scratch: URL = {
    let u = FileManager.default.temporaryDirectory
      .appendingPathComponent("backdrop-birefnet-tests-\(getpid())", isDirectory: true)
    try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
  }()

  private static let lock = NSLock()
  nonisolated(unsafe) private static var made: [String: URL] = [:]

  /// The bdrand weights of a backbone's full manifest, written once per process.
  static func manifestFile(_ backbone: String) throws -> URL {
    lock.lock()
    defer { lock.unlock() }
    if let u = made[backbone] { return u }
    let url = scratch.appendingPathComponent("bdrand_\(backbone).safetensors")
    let start = Date()
    try write(try Manifest.load(backbone).map(WeightSpec.init), to: url)
    print("wrote \(url.lastPathComponent) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
    made[backbone] = url
    return url
  }

  static func remove(_ backbone: String) {
    lock.lock()
    defer { lock.unlock() }
    if let u = made.removeValue(forKey: backbone) { try? FileManager.default.removeItem(at: u) }
  }
}

/// err = max|a - r| / max|r| and RMS(a - r) / RMS(r), as the fixture README defines them.
func relativeErrors(_ a: Tensor, _ r: Tensor) -> (max: Double, rms: Double) {
  precondition(a.values.count == r.values.count)
  var maxDiff = 0.0, maxRef = 0.0, sumD = 0.0, sumR = 0.0
  for i in 0..<r.values.count {
    let d = Double(a.values[i]) - Double(r.values[i])
    maxDiff = max(maxDiff, abs(d))
    maxRef = max(maxRef, abs(Double(r.values[i])))
    sumD += d * d
    sumR += Double(r.values[i]) * Double(r.values[i])
  }
  return (maxDiff / max(maxRef, 1e-30), (sumD / max(sumR, 1e-30)).squareRoot())
}

/// The tolerance the fixture README requires for a tensor name.
func tolerance(for name: String) -> Double {
  if name.hasPrefix("features.") || name.hasPrefix("debug.features_half.") { return 1e-4 }
  if name == "logits" { return 1e-3 }
  return 3e-4
}
