// Models by name: the registry of official weights in models/registry.json, the offline default
// `selfie` (made by scripts/setup-models.sh), and where each lives on this machine.
import Foundation

struct ModelEntry {
  var name: String
  var repository: String?     // source repository, e.g. ZhengPeng7/BiRefNet
  var file: String            // file name in that repository, and in the cache
  var backbone: String?
  var width: Int              // native input size
  var height: Int
  var bytes: Int64?
  var approximateMB: Double?  // published size, when the exact one is not recorded
  var sha256: String?
  var patchOrder: String?     // current | legacy (BiRefNet image-patch order)
  var url: String?            // explicit download address, when the registry gives one
  var local: Bool = false     // made on this machine (selfie), not downloaded

  /// Where the download goes: $XDG_CACHE_HOME/backdrop/models/NAME.EXT (official repositories all
  /// call their file model.safetensors).
  var cachePath: URL {
    let ext = (file as NSString).pathExtension
    return ModelRegistry.cacheFolder.appendingPathComponent(local ? file : "\(name).\(ext.isEmpty ? "safetensors" : ext)")
  }

  /// The download address: $BACKDROP_MODEL_BASE_URL (tests, mirrors), else the registry's base URL,
  /// followed by REPOSITORY/resolve/main/FILE; or the entry's own url.
  func downloadURL(base registryBase: String?) -> URL? {
    let environment = ProcessInfo.processInfo.environment
    if let override = environment["BACKDROP_MODEL_BASE_URL"], !override.isEmpty {
      return URL(string: override.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/" + remotePath)
    }
    if let url { return URL(string: url) }
    guard let registryBase else { return nil }
    return URL(string: registryBase.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/" + remotePath)
  }

  var remotePath: String { (repository.map { "\($0)/resolve/main/" } ?? "") + file }
}

struct ModelRegistry {
  var entries: [ModelEntry]
  var baseURL: String?
  var source: String  // where it was read from (for messages)

  static var cacheFolder: URL { cacheDirectory().appendingPathComponent("models") }

  /// models/ of the package this program was built from: $BACKDROP_MODELS, else the first folder
  /// above the executable holding models/registry.json or models/selfie (or, installed,
  /// share/backdrop/models: /usr/bin/backdrop reads /usr/share/backdrop/models), else the source tree.
  static func modelsFolder() -> URL? {
    let fm = FileManager.default
    if let path = ProcessInfo.processInfo.environment["BACKDROP_MODELS"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    func isModels(_ url: URL) -> Bool {
      fm.fileExists(atPath: url.appendingPathComponent("registry.json").path)
        || fm.fileExists(atPath: url.appendingPathComponent("selfie").path)
    }
    var directory = executableDirectory()
    while directory.path != "/" {
      let candidate = directory.appendingPathComponent("models")
      if isModels(candidate) { return candidate }
      let installed = directory.appendingPathComponent("share/backdrop/models")
      if isModels(installed) { return installed }
      directory = directory.deletingLastPathComponent()
    }
    let sourceTree = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("models")
    return isModels(sourceTree) ? sourceTree : nil
  }

  /// What the offline default is good for, said wherever a user picks a model.
  static let selfieScope = "a head-and-shoulders model (MediaPipe selfie segmentation) for people close to "
    + "the camera; it misses full-body and distant people: for those fetch a BiRefNet model "
    + "(`backdrop models fetch lite`, or `general` for the best quality) and pass --model lite"

  /// The selfie entry: local, 256×256, made by scripts/setup-models.sh.
  static let selfie = ModelEntry(
    name: "selfie", repository: nil, file: "selfie.pt",
    backbone: "mediapipe-selfie", width: 256, height: 256,
    bytes: nil, approximateMB: nil, sha256: nil, patchOrder: nil, url: nil, local: true)

  static func load() throws -> ModelRegistry {
    var registry = ModelRegistry(entries: [selfie], baseURL: nil, source: "built in")
    guard let folder = modelsFolder() else { return registry }
    let file = folder.appendingPathComponent("registry.json")
    guard let data = FileManager.default.contents(atPath: file.path) else { return registry }
    registry.source = file.path
    let json: Any
    do { json = try JSONSerialization.jsonObject(with: data) } catch {
      throw LauncherError.data("\(file.path) is not valid JSON: \(error.localizedDescription)")
    }
    var list: [[String: Any]] = []
    if let array = json as? [[String: Any]] {
      list = array
    } else if let object = json as? [String: Any] {
      list = (object["models"] as? [[String: Any]]) ?? []
      registry.baseURL = (object["base_url"] ?? object["baseURL"]) as? String
    }
    for item in list {
      guard let entry = parse(item) else { continue }
      if let index = registry.entries.firstIndex(where: { $0.name == entry.name }) {
        registry.entries[index] = entry
      } else {
        registry.entries.append(entry)
      }
    }
    return registry
  }

  /// Reads one entry, accepting the spellings a hand-written registry may use.
  private static func parse(_ item: [String: Any]) -> ModelEntry? {
    func string(_ keys: String...) -> String? { keys.lazy.compactMap { item[$0] as? String }.first }
    func int(_ keys: String...) -> Int64? {
      keys.lazy.compactMap { (item[$0] as? NSNumber)?.int64Value }.first
    }
    guard let name = string("name") else { return nil }
    let file = string("file", "filename") ?? (string("path").map { ($0 as NSString).lastPathComponent } ?? "\(name).safetensors")
    var width = 1024, height = 1024
    if let size = (item["native_size"] ?? item["size"] ?? item["input_size"]) as? [NSNumber], size.count == 2 {
      width = size[0].intValue
      height = size[1].intValue
    } else if let size = (item["native_size"] ?? item["size"] ?? item["input_size"]) as? NSNumber {
      width = size.intValue
      height = size.intValue
    } else if let text = string("native_size", "size", "input_size") {
      let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
      if parts.count == 2 { width = parts[0]; height = parts[1] } else if parts.count == 1 { width = parts[0]; height = parts[0] }
    }
    if let w = (item["native_width"] as? NSNumber)?.intValue, let h = (item["native_height"] as? NSNumber)?.intValue {
      width = w
      height = h
    }
    let local = (item["local"] as? Bool) ?? false
    return ModelEntry(
      name: name, repository: string("repo", "repository", "source_repo", "source"), file: file,
      backbone: string("backbone"), width: width, height: height, bytes: int("bytes", "size_bytes", "file_size"),
      approximateMB: (item["approx_size_mb"] as? NSNumber)?.doubleValue,
      sha256: string("sha256", "checksum")?.lowercased(), patchOrder: string("patch_order", "patchOrder"),
      url: string("url"), local: local || name == "selfie")
  }

  func entry(_ name: String) -> ModelEntry? { entries.first { $0.name == name } }

  /// Where a registry model is on this machine, or nil when it is not there yet.
  func installedPath(_ entry: ModelEntry) -> URL? {
    let fm = FileManager.default
    var candidates = [entry.cachePath]
    if entry.local, let folder = ModelRegistry.modelsFolder() {
      candidates.insert(folder.appendingPathComponent(entry.name).appendingPathComponent(entry.file), at: 0)
      candidates.append(folder.appendingPathComponent(entry.file))
    }
    return candidates.first { fm.fileExists(atPath: $0.path) }
  }
}

/// A model chosen on the command line: a path or a registry name, resolved to a file and the
/// inference size it wants (0×0 for a path: the element then uses the size the file itself
/// prefers, else its default 512×512).
struct ResolvedModel {
  var path: String
  var width: Int
  var height: Int
  var patchOrder: String?
  var name: String

  static func resolve(_ text: String) throws -> ResolvedModel {
    let fm = FileManager.default
    let looksLikePath = text.contains("/") || text.hasSuffix(".pt") || text.hasSuffix(".safetensors")
      || text.hasSuffix(".pth") || text.hasSuffix(".ts")
    if looksLikePath || fm.fileExists(atPath: text) {
      let path = URL(fileURLWithPath: text).standardizedFileURL.path
      try checkModelFile(path)
      return ResolvedModel(path: path, width: 0, height: 0, patchOrder: nil, name: text)
    }
    let registry = try ModelRegistry.load()
    guard let entry = registry.entry(text) else {
      let names = registry.entries.map(\.name).joined(separator: ", ")
      throw LauncherError.unavailable("unknown model '\(text)': known models are \(names) (or pass a file path)")
    }
    guard let path = registry.installedPath(entry) else {
      if entry.local {
        throw LauncherError.unavailable(
          "the default model '\(entry.name)' is not set up on this machine: run scripts/setup-models.sh "
            + "(or pass --model PATH)")
      }
      throw LauncherError.unavailable(
        "model '\(entry.name)' is not downloaded yet: run `backdrop models fetch \(entry.name)`")
    }
    try checkModelFile(path.path)
    return ResolvedModel(path: path.path, width: entry.width, height: entry.height, patchOrder: entry.patchOrder, name: entry.name)
  }

  /// A model file must exist and be readable (66 otherwise). Whether its contents are a model is
  /// the engine's call (65 with its cause, when the pipeline starts); `sniff` adds a quick check of
  /// the first bytes for a fresh download.
  static func checkModelFile(_ path: String, sniff: Bool = false) throws {
    guard FileManager.default.fileExists(atPath: path) else {
      throw LauncherError.noInput("model file not found: \(path)")
    }
    guard FileManager.default.isReadableFile(atPath: path) else {
      throw LauncherError.noInput("model file is not readable: \(path)")
    }
    guard sniff else { return }
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw LauncherError.noInput("model file is not readable: \(path)")
    }
    defer { try? handle.close() }
    let head = [UInt8](handle.readData(ofLength: 16))
    if head.count >= 4 && head[0] == 0x50 && head[1] == 0x4B && head[2] == 0x03 && head[3] == 0x04 { return }  // zip: TorchScript
    if head.count >= 9 {
      let length = head[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
      if head[8] == UInt8(ascii: "{") && length > 1 && length < 100_000_000 { return }  // safetensors
    }
    throw LauncherError.data(
      "\(path) is not a model file the engine loads (expected TorchScript .pt or BiRefNet .safetensors)")
  }
}
