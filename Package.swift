// swift-tools-version:6.0
// Backdrop: AI video background removal as a GStreamer plugin (see README.md).
//
// Products:
//   libgstbackdrop.so     the GStreamer plugin "backdrop" (Swift + a thin C shim); light, no libtorch
//   libbackdrop-torch.so  the inference engine (C++ over libtorch, C ABI in backdrop_engine.h),
//                         dlopened by birefnetmatte when it starts
import PackageDescription

// Release builds of both shared libraries carry the Swift runtime inside them so that they load in
// any process (gst-launch-1.0, gst-plugin-scanner) without the toolchain installed. Debug builds
// link it dynamically: the flag propagates to dependents, and the XCTest bundle cannot link a
// static Foundation next to the toolchain's XCTest.
let staticSwiftRuntime: [LinkerSetting] = [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]

let package = Package(
  name: "Backdrop",
  products: [
    .library(name: "gstbackdrop", type: .dynamic, targets: ["GstBackdrop"]),
    .library(name: "backdrop-torch", type: .dynamic, targets: ["BackdropEngine"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    // `backdrop serve`: the HTTP server (issue 11).
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
  ],
  targets: [
    // GStreamer core, base and video (the video pkg-config pulls in base and core).
    .systemLibrary(name: "CGStreamer", path: "Sources/CGStreamer", pkgConfig: "gstreamer-video-1.0"),
    // gstreamer-check (GstHarness), for tests only.
    .systemLibrary(name: "CGStreamerCheck", path: "Sources/CGStreamerCheck", pkgConfig: "gstreamer-check-1.0"),
    // SQLite (Debian's libsqlite3-dev): the job table of `backdrop serve`.
    .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3"),
    // libvpx (VP9 encoder) for vp9alphaenc.
    .systemLibrary(name: "CVPX", path: "Sources/CVPX", pkgConfig: "vpx"),
    // What Swift cannot import by itself: variadic calls, macros, the plugin descriptor, GEnums.
    .target(name: "CBackdropShim", dependencies: ["CGStreamer", "CBackdropEngineABI"]),
    // Header-only: the engine's C ABI, shared by the plugin (dlopen side) and the engine.
    .target(name: "CBackdropEngineABI"),
    .target(
      name: "BackdropEngine",
      dependencies: ["CBackdropEngineABI"],
      cxxSettings: [
        // OpenCV (Debian libopencv-dev): only DIS optical flow for the temporal stage (issue 9).
        .unsafeFlags(["-I/usr/include/torch/csrc/api/include", "-I/usr/include/opencv4", "-O2", "-fvisibility=hidden"]),
        .define("BD_WITH_OPENCV"),
        // oneDNN (Debian libdnnl-dev), the one Debian's libtorch links: called directly for the
        // CPU convolutions (birefnet/onednn_conv.h).
        .define("BD_WITH_ONEDNN"),
      ],
      linkerSettings: [
        .linkedLibrary("torch"), .linkedLibrary("torch_cpu"), .linkedLibrary("c10"), .linkedLibrary("dnnl"),
        .linkedLibrary("opencv_video"), .linkedLibrary("opencv_core"),
        .linkedLibrary("m"),
      ] + staticSwiftRuntime
    ),
    // The one Swift wrapper of the engine ABI (dlopen, entry points, model and session owners),
    // shared by the plugin, the launcher and the benchmarks. No static-runtime flag here.
    .target(
      name: "BackdropEngineClient",
      dependencies: ["CBackdropEngineABI"],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .target(
      name: "GstBackdrop",
      dependencies: ["CGStreamer", "CBackdropShim", "CBackdropEngineABI", "BackdropEngineClient", "CVPX"],
      swiftSettings: [.swiftLanguageMode(.v6)],
      linkerSettings: [.linkedLibrary("dl")] + staticSwiftRuntime
    ),
    // The bdrand weight rule and safetensors writer (tests, benches), optimised even in debug builds.
    .target(name: "CBDRand", cSettings: [.unsafeFlags(["-O2"])]),
    // Native BiRefNet CPU benchmark over the engine (issue 4); also builds with CMake elsewhere.
    .executableTarget(
      name: "birefnet-bench",
      dependencies: ["CBackdropEngineABI", "CBDRand"],
      cxxSettings: [.unsafeFlags(["-O2"])],
      linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("m")] + staticSwiftRuntime
    ),
    // Per-stage cost of edge refinement, foreground colour and the cascade (issue 9); also CMake.
    .executableTarget(
      name: "spatial-bench",
      dependencies: ["CBackdropEngineABI"],
      cxxSettings: [.unsafeFlags(["-O2"])],
      linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("m")] + staticSwiftRuntime
    ),
    .testTarget(
      name: "BiRefNetTests",
      dependencies: ["CBDRand", "CBackdropEngineABI"],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // Element overhead and 1080p pre/post-processing benchmark (release build).
    .executableTarget(
      name: "matte-bench",
      dependencies: ["GstBackdrop", "BackdropEngineClient", "CGStreamer", "CBackdropShim", "CBackdropEngineABI"],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .testTarget(
      name: "BackdropTests",
      dependencies: ["GstBackdrop", "BackdropEngineClient", "CGStreamer", "CGStreamerCheck", "CBackdropShim", "CBackdropEngineABI"],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // vp9alphaenc / webmalphamux round trips, seeking, audio, streaming and real browsers (issue 3).
    .testTarget(
      name: "WebMAlphaTests",
      dependencies: ["GstBackdrop", "CGStreamer", "CGStreamerCheck", "CBackdropShim"],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // The launcher `backdrop` (issue 6). Drives GStreamer through its C API and loads the plugin at
    // run time; it must not link GstBackdrop (a release build of it carries a static Swift runtime).
    .executableTarget(
      name: "backdrop",
      dependencies: [
        "CGStreamer", "CBackdropEngineABI", "BackdropEngineClient", "CBDRand", "CSQLite",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Hummingbird", package: "hummingbird"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // `backdrop serve` driven over HTTP and in headless Chromium, as a script and a person would (issue 11).
    // Running programs from tests (RunResult, runProgram, which), shared by ServeTests and LauncherTests.
    .target(name: "ProgramSupport", path: "Tests/ProgramSupport", swiftSettings: [.swiftLanguageMode(.v6)]),
    .testTarget(
      name: "ServeTests",
      dependencies: ["ProgramSupport"],
      exclude: ["serve_page.py"],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // Runs the built `backdrop` as a user would (Process), on generated clips and a local HTTP server.
    .testTarget(
      name: "LauncherTests",
      dependencies: ["ProgramSupport"],
      exclude: ["range_server.py"],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
  ],
  cxxLanguageStandard: .cxx17
)
