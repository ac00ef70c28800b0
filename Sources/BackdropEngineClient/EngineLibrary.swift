// Finding and loading libbackdrop-torch.so: the one Swift wrapper of the engine's C ABI, used by
// the element, the launcher and the benchmarks. Nobody links libtorch: the engine is dlopened when
// it is needed (for the element: when it starts), so gst-inspect-1.0 and the registry scanner stay
// fast and work where libtorch is not installed. This target carries no static-runtime flag, so
// both the plugin (static Swift runtime) and the launcher (Foundation) can link it.
import CBackdropEngineABI
import Glibc
import Synchronization

public struct EngineLoadError: Error {
  public let message: String
}

/// The engine's entry points, resolved once per library path and kept for the process lifetime
/// (libtorch cannot be unloaded safely, so the library is never dlclosed).
public final class EngineLibrary: Sendable {
  static let fileName = "libbackdrop-torch.so"

  public let path: String
  public let version: String
  let linkage: LibtorchLinkage?  // nil where the file could not be read (e.g. found through the library path)
  package let modelOpen: bd_model_open_fn
  package let modelGetInfo: bd_model_get_info_fn
  package let modelRelease: bd_model_release_fn
  package let sessionCreate: bd_session_create_fn
  package let sessionDestroy: bd_session_destroy_fn
  package let sessionSetBackgroundImage: bd_session_set_background_image_fn
  package let sessionProcess: bd_session_process_fn
  package let sessionGetStats: bd_session_get_stats_fn
  package let sessionReset: bd_session_reset_fn
  package let sessionDrain: bd_session_drain_fn
  /// CUDA devices the engine sees (0 when built without CUDA): where device=auto will run.
  package let cudaDeviceCount: bd_cuda_device_count_fn

  private static let loaded = Mutex<[String: EngineLibrary]>([:])

  /// Loads the engine from the first place that has one (see `searchOrder`); `besideFile` is the
  /// plugin's real file (for the launcher: the plugin it loads).
  public static func load(explicitPath: String?, besideFile: String?) throws(EngineLoadError) -> EngineLibrary {
    // Idle OpenMP workers (libtorch) otherwise spin against OpenBLAS's threads between batches:
    // measured 2.9 s → 1.9 s per BiRefNet-lite frame at 512² on 2 cores. A user's value wins.
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0)
    var attempts: [String] = []
    for (candidate, origin) in candidates(explicitPath: explicitPath, besideFile: besideFile) {
      if let library = loaded.withLock({ $0[candidate] }) { return library }
      if candidate.hasPrefix("/") && access(candidate, F_OK) != 0 {
        attempts.append("\(candidate) (\(origin)): no such file")
        // An explicit path that does not exist is an error, not a reason to look elsewhere.
        if origin == "engine-library property" || origin == "BACKDROP_ENGINE" { break } else { continue }
      }
      // Read from the file first: an engine on a second libtorch build aborts the process in dlopen.
      let linkage = candidate.hasPrefix("/") ? LibtorchLinkage.read(path: candidate) : nil
      if let linkage, !linkage.libraries.isEmpty,
        let other = loaded.withLock({ $0.values.first { $0.linkage?.conflicts(with: linkage) == true } })
      {
        throw EngineLoadError(
          message: "The engine \(candidate) (\(origin)) links \(linkage.description), but the engine \(other.path), "
            + "already loaded in this process, links \(other.linkage?.description ?? "?"): one process can hold only "
            + "one libtorch build (loading a second one aborts it). Give every birefnetmatte in the process the same "
            + "engine-library (or set BACKDROP_ENGINE and leave engine-library unset).")
      }
      guard let handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) else {
        let reason = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
        attempts.append("\(candidate) (\(origin)): \(reason)")
        if origin == "engine-library property" || origin == "BACKDROP_ENGINE" { break }
        continue
      }
      let library = try EngineLibrary(handle: handle, path: candidate, linkage: linkage)
      loaded.withLock { $0[candidate] = library }
      return library
    }
    throw EngineLoadError(
      message: "Could not load the inference engine \(fileName). Tried: "
        + attempts.joined(separator: "; ")
        + ". Build it with `swift build -c release` or set the engine-library property "
        + "(or BACKDROP_ENGINE) to its path.")
  }

  private static func candidates(explicitPath: String?, besideFile: String?) -> [(String, String)] {
    searchOrder(
      explicitPath: explicitPath, environmentPath: getenv("BACKDROP_ENGINE").map { String(cString: $0) },
      pluginFile: besideFile
    ).map { ($0.path, $0.origin) }
  }

  /// Where the engine is looked for, in order: a path the user gave (the `engine-library`
  /// property, else BACKDROP_ENGINE) is the only place tried; otherwise the private engine folder
  /// of an installed plugin (`../backdrop/` from the plugin's folder: the engine must not sit in
  /// a plugin folder, where gst-plugin-scanner would load libtorch), then the plugin's own folder
  /// (a build folder), then the system library path. `pluginFile` is the plugin's real file.
  public static func searchOrder(explicitPath: String?, environmentPath: String?, pluginFile: String?)
    -> [(path: String, origin: String)]
  {
    if let explicitPath, !explicitPath.isEmpty { return [(explicitPath, "engine-library property")] }
    if let environmentPath, !environmentPath.isEmpty { return [(environmentPath, "BACKDROP_ENGINE")] }
    var list: [(path: String, origin: String)] = []
    if let pluginFile, let slash = pluginFile.lastIndex(of: "/") {
      let folder = String(pluginFile[..<slash])
      let parent = folder.lastIndex(of: "/").map { String(folder[..<$0]) } ?? ""
      list.append((parent + "/backdrop/" + fileName, "private engine folder"))
      list.append((folder + "/" + fileName, "plugin directory"))
    }
    list.append((fileName, "system library path"))
    return list
  }

  private init(handle: UnsafeMutableRawPointer, path: String, linkage: LibtorchLinkage?) throws(EngineLoadError) {
    func symbol<T>(_ name: String, _ type: T.Type) throws(EngineLoadError) -> T {
      guard let pointer = dlsym(handle, name) else {
        throw EngineLoadError(message: "\(path) is not a Backdrop engine: it has no symbol \(name).")
      }
      return unsafeBitCast(pointer, to: T.self)
    }
    let abiVersion = try symbol("bd_abi_version", bd_abi_version_fn.self)()
    guard abiVersion == BD_ABI_VERSION else {
      throw EngineLoadError(
        message: "The engine \(path) has ABI version \(abiVersion) but this plugin needs "
          + "version \(BD_ABI_VERSION): rebuild the engine and the plugin from the same sources.")
    }
    self.path = path
    self.linkage = linkage
    self.version = (try symbol("bd_engine_version", bd_engine_version_fn.self)()).map { String(cString: $0) } ?? "?"
    modelOpen = try symbol("bd_model_open", bd_model_open_fn.self)
    modelGetInfo = try symbol("bd_model_get_info", bd_model_get_info_fn.self)
    modelRelease = try symbol("bd_model_release", bd_model_release_fn.self)
    sessionCreate = try symbol("bd_session_create", bd_session_create_fn.self)
    sessionDestroy = try symbol("bd_session_destroy", bd_session_destroy_fn.self)
    sessionSetBackgroundImage = try symbol(
      "bd_session_set_background_image", bd_session_set_background_image_fn.self)
    sessionProcess = try symbol("bd_session_process", bd_session_process_fn.self)
    sessionGetStats = try symbol("bd_session_get_stats", bd_session_get_stats_fn.self)
    sessionReset = try symbol("bd_session_reset", bd_session_reset_fn.self)
    sessionDrain = try symbol("bd_session_drain", bd_session_drain_fn.self)
    cudaDeviceCount = try symbol("bd_cuda_device_count", bd_cuda_device_count_fn.self)
  }
}

/// Calls an engine entry point with an error buffer and turns a failure into a Swift error.
package func withEngineError(_ body: (UnsafeMutablePointer<CChar>, Int) -> bd_status) throws(EngineCallError) {
  var buffer = [CChar](repeating: 0, count: 4096)
  let status = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
  if status != BD_OK {
    throw EngineCallError(status: status, message: String(cString: buffer))
  }
}

public struct EngineCallError: Error {
  public let status: bd_status
  public let message: String
}
