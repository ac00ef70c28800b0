// A read-only, bounds-checked view of a .safetensors file (mmap'ed). No libtorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bd {
namespace st {

enum class DType { F32, F16, BF16, I64 };

const char* dtype_name(DType t);
size_t dtype_size(DType t);

struct TensorView {
  std::string name;  // as stored in the file
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;  // inside the mapping
  size_t nbytes;
  int64_t numel() const;
};

// Owns the mapping. Throws bd::ModelError (message names the file, the key and the rule) on any
// malformed content; never reads outside the file.
class File {
 public:
  explicit File(const std::string& path);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Drops the mapping early (after the weights were converted).
  void close();

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// True when the first bytes look like a safetensors header (length within the file, then '{').
bool sniff(const std::string& path);

}  // namespace st
}  // namespace bd
