// deploy/kubernetes is checked against the Kubernetes schemas (kubernetes-validate carries them,
// so this runs offline; no cluster runs here), strictly: an unknown or misplaced field fails.
import Foundation
import XCTest

final class KubernetesManifestTests: XCTestCase {
  let folder = Launcher.packageRoot.appendingPathComponent("deploy/kubernetes")

  func validator() throws -> String {
    for candidate in [which("kubernetes-validate"), "/usr/local/bin/kubernetes-validate"].compactMap({ $0 })
    where FileManager.default.isExecutableFile(atPath: candidate) {
      return candidate
    }
    throw XCTSkip("kubernetes-validate is not installed (scripts/install-deps.sh installs it with pip)")
  }

  func validate(_ files: [String]) throws -> RunResult {
    try runProgram(try validator(), ["--strict", "--kubernetes-version", "1.30.0"] + files)
  }

  func testManifestsMatchTheKubernetesSchema() throws {
    let files = ["volume.yaml", "parts-job.yaml", "join-job.yaml"].map { folder.appendingPathComponent($0).path }
    let result = try validate(files)
    XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    for resource in ["job/backdrop-parts", "job/backdrop-join", "persistentvolumeclaim/backdrop-work"] {
      XCTAssertTrue(result.stdout.contains("passed for resource \(resource)") || result.stderr.contains("passed for resource \(resource)"),
                    "\(resource): \(result.stdout)\(result.stderr)")
    }
  }

  func testTheIndexedJobAndTheLauncherAgreeOnTheParts() throws {
    let parts = try String(contentsOf: folder.appendingPathComponent("parts-job.yaml"), encoding: .utf8)
    XCTAssertTrue(parts.contains("completionMode: Indexed"))
    XCTAssertTrue(parts.contains("completions: 4"))
    XCTAssertTrue(parts.contains("--segment auto --parts 4"), "--parts equals completions")
    XCTAssertTrue(parts.contains("nvidia.com/gpu: 1"), "one GPU per part")
    let join = try String(contentsOf: folder.appendingPathComponent("join-job.yaml"), encoding: .utf8)
    XCTAssertTrue(join.contains("-ge 4 ]"), "the join waits for the 4 parts")
  }

  /// The check can fail: a misspelt field and a wrong type are refused.
  func testTheValidatorRefusesABrokenJob() throws {
    let directory = try Launcher.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let original = try String(contentsOf: folder.appendingPathComponent("parts-job.yaml"), encoding: .utf8)
    for (name, broken) in [
      ("misspelt.yaml", original.replacingOccurrences(of: "completionMode: Indexed", with: "completionMod: Indexed")),
      ("wrong-type.yaml", original.replacingOccurrences(of: "completions: 4", with: "completions: four")),
    ] {
      XCTAssertNotEqual(broken, original)
      let file = directory.appendingPathComponent(name)
      try broken.write(to: file, atomically: true, encoding: .utf8)
      let result = try validate([file.path])
      XCTAssertNotEqual(result.status, 0, "\(name) must fail: \(result.stdout)")
    }
  }
}
