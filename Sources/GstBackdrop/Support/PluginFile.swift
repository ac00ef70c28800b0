// Where this plugin's own file is (through symlinks): the engine is looked for beside it.
import CBackdropShim
import CGStreamer

/// The real path of the file that holds this code (libgstbackdrop.so, or an executable that links
/// the plugin statically), or nil when the loader cannot tell.
public func pluginFilePath() -> String? {
  guard let path = bd_plugin_file_path() else { return nil }
  defer { g_free(path) }
  return String(cString: path)
}
