// Signals: Ctrl-C is counted from the moment a command starts (the bus loop finishes the file on
// the first press, aborts on the second, and aborts when no frame is out yet); SIGTERM and SIGHUP
// end the process at once, like a second Ctrl-C, after removing the unfinished output files.
//
// The SIGTERM/SIGHUP handler runs in signal context: it touches only C strings prepared before
// (the temporary paths) and async-signal-safe calls (unlink, write, _exit).
import Foundation
import Synchronization

/// Ctrl-C presses since `installSignalHandlers()` (read by the bus loop).
let interruptCount = Atomic<Int>(0)

/// Unfinished output files the termination handler removes: fixed slots of C strings.
enum TemporaryFiles {
  static let capacity = 8
  nonisolated(unsafe) static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
    let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
    slots.initialize(repeating: nil, count: capacity)
    return slots
  }()
  static let count = Atomic<Int>(0)

  /// Adds paths to remove if the process is terminated (before the files are even created).
  static func register(_ paths: [String]) {
    for path in paths {
      let index = count.load(ordering: .acquiring)
      guard index < capacity else { return }
      slots[index] = strdup(path)
      count.store(index + 1, ordering: .releasing)
    }
  }

  /// Removes every registered path (signal-safe: unlink only).
  static func removeAll() {
    let n = count.load(ordering: .acquiring)
    for index in 0..<n {
      if let path = slots[index] { unlink(path) }
    }
  }

  /// Forgets the registered paths (after the files were renamed into place).
  static func clear() { count.store(0, ordering: .releasing) }
}

/// What the handler writes on stderr for each signal, prepared outside signal context.
private nonisolated(unsafe) let terminationNotes: [Int32: UnsafeMutablePointer<CChar>] = [
  SIGTERM: strdup("\nbackdrop: terminated (SIGTERM): the unfinished output was removed\n")!,
  SIGHUP: strdup("\nbackdrop: hung up (SIGHUP): the unfinished output was removed\n")!,
]
private nonisolated(unsafe) let termNote = terminationNotes[SIGTERM]!
private nonisolated(unsafe) let hupNote = terminationNotes[SIGHUP]!

/// Installs the handlers; call first thing in a command that writes files or runs a pipeline.
/// SIGINT is counted; SIGTERM exits 143 and SIGHUP 129 (128 + the signal, the shell convention),
/// after removing the registered temporary files.
func installSignalHandlers() {
  // Initialise every global the handlers read before a signal can arrive.
  _ = interruptCount.load(ordering: .relaxed)
  _ = TemporaryFiles.slots
  _ = TemporaryFiles.count.load(ordering: .relaxed)
  _ = termNote
  _ = hupNote
  signal(SIGINT) { _ in interruptCount.add(1, ordering: .relaxed) }
  let terminate: @convention(c) (Int32) -> Void = { signal in
    TemporaryFiles.removeAll()
    let note = signal == SIGHUP ? hupNote : termNote
    _ = write(2, note, strlen(note))
    _exit(128 + signal)
  }
  signal(SIGTERM, terminate)
  signal(SIGHUP, terminate)
}
