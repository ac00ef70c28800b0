// A TorchScript archive opened for torch::jit::load with its debug records hidden.
//
// Each `code/*.py` of a TorchScript zip has a `*.py.debug_pkl` beside it that maps generated code
// back to the Python source, read only when libtorch formats a message about that code. libtorch's
// unpickler is not memory-safe on malformed input: a corrupt archive whose code fails to parse
// made libtorch 1.13 unpickle a corrupt debug record while writing the parse error, and free a
// pointer it never allocated, which aborts the whole process (found by fuzz/model_open). The
// records are not needed to run a model, so the reader renames them in the zip's central directory
// as it is read (one byte per name, file untouched): libtorch does not find them and never
// unpickles them. Anything the small parser here does not understand leaves the archive as it is.
#pragma once

#include <caffe2/serialize/read_adapter_interface.h>

#include <memory>
#include <string>

namespace bd {

// Throws ModelError naming the path when the file cannot be opened.
std::shared_ptr<caffe2::serialize::ReadAdapterInterface> open_torchscript_archive(const std::string& path);

}  // namespace bd
