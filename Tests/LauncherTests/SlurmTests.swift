// A real Slurm (Debian's slurm-wlm and munge) on this machine: deploy/slurm/local-cluster.sh
// starts munged, slurmctld and slurmd for one node; deploy/slurm/submit.sh runs the part array
// and the join that depends on it, exactly as on a cluster (CPU instead of GPUs).
import Foundation
import XCTest

final class SlurmTests: XCTestCase {
  var directory: URL!

  override func setUpWithError() throws {
    for tool in ["munged", "slurmctld", "slurmd", "sbatch", "squeue"] where which(tool) == nil && !FileManager.default.isExecutableFile(atPath: "/usr/sbin/\(tool)") {
      throw XCTSkip("\(tool) is not installed (Debian packages slurmctld slurmd slurm-client munge; scripts/install-deps.sh)")
    }
    directory = try Launcher.temporaryDirectory()
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  func testArrayOfFourPartsAndTheDependentJoin() throws {
    let deploy = Launcher.packageRoot.appendingPathComponent("deploy/slurm")
    let cluster = path("cluster")
    var environment = Launcher.environment(cache: directory.appendingPathComponent("cache"))
    environment["PATH"] = (environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    let start = try runProgram(deploy.appendingPathComponent("local-cluster.sh").path, ["start", cluster, "2"],
                               environment: environment, timeout: 60)
    defer { _ = try? runProgram(deploy.appendingPathComponent("local-cluster.sh").path, ["stop", cluster], environment: environment) }
    XCTAssertEqual(start.status, 0, start.stderr)
    guard start.status == 0 else { return }
    environment["SLURM_CONF"] = cluster + "/slurm.conf"

    let clip = path("clip.webm")
    try ScaleFixture.makeClip(clip)
    let single = try runProgram(Launcher.executable, ["compose", clip, "-o", path("single.webm"), "--alpha-lossless", "-q"] + ScaleFixture.modelArguments,
                                environment: environment)
    XCTAssertEqual(single.status, 0, single.stderr)

    environment["BACKDROP"] = Launcher.executable
    environment["BACKDROP_DEVICE"] = "cpu"
    environment["BACKDROP_SLURM_GRES"] = ""  // no GPUs here
    environment["BACKDROP_SLURM_OPTIONS"] = "--cpus-per-task=1"
    let output = path("whole.webm")
    let submit = try runProgram(deploy.appendingPathComponent("submit.sh").path,
                                [clip, output, "4", "--alpha-lossless"] + ScaleFixture.modelArguments, environment: environment)
    XCTAssertEqual(submit.status, 0, submit.stderr)
    let ids = submit.stdout.split(separator: " ").map(String.init)
    XCTAssertEqual(ids.count, 4, submit.stdout)  // "array ID join ID"
    guard ids.count == 4 else { return }
    let (arrayJob, joinJob) = (ids[1], ids[3].trimmingCharacters(in: .whitespacesAndNewlines))

    // The join waits for the array (Dependency) and then runs; both leave the queue.
    let deadline = Date().addingTimeInterval(300)
    var sawJoinWaiting = false
    while true {
      let queue = try runProgram(which("squeue") ?? "/usr/bin/squeue", ["-h", "-o", "%i %T %r"], environment: environment)
      if queue.stdoutLines.contains(where: { $0.hasPrefix("\(joinJob) PENDING Dependency") }) { sawJoinWaiting = true }
      if queue.stdout.isEmpty { break }
      guard Date() < deadline else { return XCTFail("jobs still queued after 300 s:\n\(queue.stdout)") }
      usleep(200_000)
    }
    XCTAssertTrue(sawJoinWaiting, "the join job waited for the array")
    for job in ["\(arrayJob)_0", "\(arrayJob)_3", joinJob] {
      let shown = try runProgram(which("scontrol") ?? "/usr/bin/scontrol", ["show", "job", job], environment: environment)
      XCTAssertTrue(shown.stdout.contains("JobState=COMPLETED"), "\(job): \(shown.stdout)\(shown.stderr)")
    }
    let parts = try FileManager.default.contentsOfDirectory(atPath: path("whole.parts")).sorted()
    XCTAssertEqual(parts, ["part-0000.webm", "part-0001.webm", "part-0002.webm", "part-0003.webm"])

    let probed = try ffprobe(output)
    XCTAssertEqual(probed.video?.frames, ScaleFixture.frames)
    XCTAssertEqual(probed.audio?.codec, "opus")
    XCTAssertEqual(try ScaleFixture.videoPackets(output).map(\.pts), (0..<40).map { Double($0) / 10 })
    let expected = try ScaleFixture.alphaPlanes(path("single.webm"), in: directory)
    let joined = try ScaleFixture.alphaPlanes(output, in: directory)
    XCTAssertEqual(joined.count, 40)
    XCTAssertTrue(expected == joined, "every frame's alpha equals the single pass")
  }
}
