// Which libtorch an engine file links, read from its ELF dynamic section without loading it.
// One process can hold only one libtorch build: dlopen of an engine on a second build (a CUDA engine
// from a pip torch beside Debian's, say) aborts the process in libtorch's static initialisers,
// before any code of ours runs. So the choice must be made from the file, before dlopen.
import Glibc

/// The libtorch libraries (`libtorch*`, `libc10*`) an engine names and where it looks for them.
struct LibtorchLinkage: Sendable {
  let libraries: [String]  // DT_NEEDED names, in file order
  let runpath: String  // DT_RUNPATH (else DT_RPATH), "" when none

  /// Whether the two can share a process. The loader shares a library between objects by its name,
  /// so the same names mean the same libtorch, except unversioned names (a pip torch's
  /// `libtorch_cpu.so`), which two torch installs share: those must also come from the same place.
  func conflicts(with other: LibtorchLinkage) -> Bool {
    if libraries != other.libraries { return true }
    return libraries.contains { $0.hasSuffix(".so") } && runpath != other.runpath
  }

  var description: String {
    libraries.joined(separator: ", ") + (runpath.isEmpty ? "" : " (runpath \(runpath))")
  }

  /// Nil when the file is not a readable 64-bit little-endian ELF file with a dynamic section.
  static func read(path: String) -> LibtorchLinkage? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return ElfFile(fd: fd).linkage()
  }
}

/// Bounds-checked reads of the few ELF64 structures needed (every offset comes from the file).
private struct ElfFile {
  let fd: Int32

  func bytes(_ offset: UInt64, _ count: Int) -> [UInt8]? {
    guard count >= 0, count <= 1 << 24, offset <= UInt64(Int64.max) else { return nil }
    var buffer = [UInt8](repeating: 0, count: count)
    let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
    return got == count ? buffer : nil
  }

  func integer(_ bytes: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in (0..<size).reversed() { value = value << 8 | UInt64(bytes[at + i]) }
    return value
  }

  func linkage() -> LibtorchLinkage? {
    guard let header = bytes(0, 64), header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46,
      header[4] == 2, header[5] == 1  // ELFCLASS64, little-endian
    else { return nil }
    let phoff = integer(header, 32, 8), phentsize = Int(integer(header, 54, 2)), phnum = Int(integer(header, 56, 2))
    guard phentsize >= 56, phnum > 0, let table = bytes(phoff, phentsize * phnum) else { return nil }
    var loads: [(vaddr: UInt64, offset: UInt64, size: UInt64)] = []
    var dynamic: (offset: UInt64, size: UInt64)?
    for i in 0..<phnum {
      let base = i * phentsize
      let type = integer(table, base, 4)
      let offset = integer(table, base + 8, 8), vaddr = integer(table, base + 16, 8), size = integer(table, base + 32, 8)
      if type == 1 { loads.append((vaddr, offset, size)) }  // PT_LOAD
      if type == 2 { dynamic = (offset, size) }  // PT_DYNAMIC
    }
    guard let dynamic, dynamic.size >= 16, dynamic.size <= 1 << 20, let entries = bytes(dynamic.offset, Int(dynamic.size))
    else { return nil }
    var needed: [UInt64] = [], runpath: UInt64?, rpath: UInt64?, strtab: UInt64?, strsz: UInt64 = 0
    for base in stride(from: 0, to: entries.count - 15, by: 16) {
      let tag = integer(entries, base, 8), value = integer(entries, base + 8, 8)
      switch tag {
      case 0: break  // DT_NULL
      case 1: needed.append(value)
      case 5: strtab = value
      case 10: strsz = value
      case 15: rpath = value
      case 29: runpath = value
      default: continue
      }
      if tag == 0 { break }
    }
    // DT_STRTAB is an address: the PT_LOAD segment holding it gives its place in the file.
    guard let strtab, strsz > 0, strsz <= 1 << 24,
      let segment = loads.first(where: { strtab >= $0.vaddr && strtab - $0.vaddr < $0.size }),
      case let (place, overflow) = segment.offset.addingReportingOverflow(strtab - segment.vaddr), !overflow,
      let strings = bytes(place, Int(strsz))
    else { return nil }
    func string(_ at: UInt64) -> String? {
      guard at < UInt64(strings.count) else { return nil }
      let start = Int(at)
      let end = strings[start...].firstIndex(of: 0) ?? strings.count
      return String(decoding: strings[start..<end], as: UTF8.self)
    }
    let libraries = needed.compactMap(string).filter { $0.hasPrefix("libtorch") || $0.hasPrefix("libc10") }
    return LibtorchLinkage(libraries: libraries, runpath: (runpath ?? rpath).flatMap(string) ?? "")
  }
}
