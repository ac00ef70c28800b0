// The `backdrop` command: AI background removal for video files and cameras, over the
// birefnetmatte GStreamer element (see README.md and DESIGN §7).
import ArgumentParser

@main
struct Backdrop: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "backdrop",
    abstract: "Remove or replace video backgrounds with a matting network (GStreamer birefnetmatte).",
    subcommands: [Compose.self, Preview.self, Camera.self, Models.self, Bench.self, Serve.self, Plan.self, Join.self])

  /// compose and camera handle Ctrl-C, SIGTERM and SIGHUP themselves (finish or remove their
  /// output): from the first moment of the program, before the arguments are even parsed.
  static func main() {
    if let command = CommandLine.arguments.dropFirst().first, ["compose", "camera"].contains(command) {
      installSignalHandlers()
    }
    main(nil)
  }
}
