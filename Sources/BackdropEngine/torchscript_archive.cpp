#include "torchscript_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "model.h"

namespace bd {
namespace {

constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64EndOfCentralDirectory = 0x06064b50;
constexpr uint32_t kCentralDirectoryEntry = 0x02014b50;
constexpr size_t kMaxCentralDirectory = size_t(64) << 20;  // a model has a few thousand records
const std::string kDebugSuffix = ".debug_pkl";

uint64_t little_endian(const uint8_t* p, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; i--) value = (value << 8) | p[i];
  return value;
}

bool read_exactly(int fd, uint64_t pos, void* buf, size_t n) {
  auto* out = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t got = ::pread(fd, out, n, static_cast<off_t>(pos));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    pos += static_cast<uint64_t>(got);
    n -= static_cast<size_t>(got);
  }
  return true;
}

// The file offsets of the last byte of every central-directory name that ends in ".debug_pkl".
// Empty when the file is not a zip this parser understands (libtorch then reports it as it would).
std::vector<uint64_t> debug_name_ends(int fd, uint64_t size) {
  // The end-of-central-directory record is in the last 22 + 65535 bytes (its comment is at most 64 KiB).
  const uint64_t tail_size = std::min<uint64_t>(size, 22 + 65535);
  std::vector<uint8_t> tail(tail_size);
  if (tail_size < 22 || !read_exactly(fd, size - tail_size, tail.data(), tail.size())) return {};
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; i--) {
    if (little_endian(&tail[i], 4) == kEndOfCentralDirectory) { eocd = i; break; }
  }
  if (eocd < 0) return {};
  uint64_t entries = little_endian(&tail[eocd + 10], 2);
  uint64_t cd_size = little_endian(&tail[eocd + 12], 4);
  uint64_t cd_offset = little_endian(&tail[eocd + 16], 4);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    // Zip64: the locator sits right before the classic record and points at the 64-bit one.
    if (eocd < 20 || little_endian(&tail[eocd - 20], 4) != kZip64Locator) return {};
    uint64_t record_at = little_endian(&tail[eocd - 20 + 8], 8);
    uint8_t record[56];
    if (record_at > size || size - record_at < sizeof record || !read_exactly(fd, record_at, record, sizeof record) ||
        little_endian(record, 4) != kZip64EndOfCentralDirectory) {
      return {};
    }
    entries = little_endian(record + 32, 8);
    cd_size = little_endian(record + 40, 8);
    cd_offset = little_endian(record + 48, 8);
  }
  if (cd_offset > size || cd_size > size - cd_offset || cd_size > kMaxCentralDirectory) return {};
  std::vector<uint8_t> cd(static_cast<size_t>(cd_size));
  if (!read_exactly(fd, cd_offset, cd.data(), cd.size())) return {};

  std::vector<uint64_t> ends;
  size_t at = 0;
  for (uint64_t e = 0; e < entries && at + 46 <= cd.size(); e++) {
    if (little_endian(&cd[at], 4) != kCentralDirectoryEntry) break;
    const size_t name_length = little_endian(&cd[at + 28], 2);
    const size_t extra_length = little_endian(&cd[at + 30], 2);
    const size_t comment_length = little_endian(&cd[at + 32], 2);
    const size_t name_at = at + 46;
    if (name_at + name_length > cd.size()) break;
    const char* name = reinterpret_cast<const char*>(&cd[name_at]);
    if (name_length >= kDebugSuffix.size() &&
        std::memcmp(name + name_length - kDebugSuffix.size(), kDebugSuffix.data(), kDebugSuffix.size()) == 0) {
      ends.push_back(cd_offset + name_at + name_length - 1);
    }
    at = name_at + name_length + extra_length + comment_length;
  }
  return ends;
}

class DebuglessArchive final : public caffe2::serialize::ReadAdapterInterface {
 public:
  DebuglessArchive(int fd, uint64_t size, std::vector<uint64_t> hidden)
      : fd_(fd), size_(size), hidden_(std::move(hidden)) {}
  ~DebuglessArchive() override { ::close(fd_); }

  size_t size() const override { return static_cast<size_t>(size_); }

  size_t read(uint64_t pos, void* buf, size_t n, const char* what) const override {
    (void)what;
    if (pos >= size_) return 0;
    n = static_cast<size_t>(std::min<uint64_t>(n, size_ - pos));
    if (!read_exactly(fd_, pos, buf, n)) return 0;
    // "x.py.debug_pkl" reads as "x.py.debug_pk_", a name libtorch never asks for.
    // hidden_ is ascending (central-directory order), so only the names inside this read are visited.
    for (auto it = std::lower_bound(hidden_.begin(), hidden_.end(), pos); it != hidden_.end() && *it < pos + n; ++it) {
      static_cast<char*>(buf)[*it - pos] = '_';
    }
    return n;
  }

 private:
  int fd_;
  uint64_t size_;
  std::vector<uint64_t> hidden_;
};

}  // namespace

std::shared_ptr<caffe2::serialize::ReadAdapterInterface> open_torchscript_archive(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw ModelError("model-file " + path + " cannot be opened: " + std::strerror(errno) +
                     " (give the path of a TorchScript .pt or a BiRefNet .safetensors file)");
  }
  struct stat info{};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw ModelError("model-file " + path + " is not a regular file (give the path of a TorchScript .pt file)");
  }
  const auto size = static_cast<uint64_t>(info.st_size);
  return std::make_shared<DebuglessArchive>(fd, size, debug_name_ends(fd, size));
}

}  // namespace bd
