// Screening a TorchScript archive's code before torch::jit::load parses it.
//
// libtorch 1.13 takes an assignment in a class body (other than __parameters__, __buffers__ and
// the hook lists) as a class constant and reads its type annotation without checking that there
// is one: `name = value` without `: Final[T]` dereferences an absent tree and the process dies
// with SIGSEGV (found by fuzz/model_open: `__parameters__` mutated into `__para2eters__`; libtorch
// 2.x checks it). The check here parses every code/*.py record with libtorch's own parser and
// refuses such an assignment with a message, before libtorch's importer reaches it.
#pragma once

#include <caffe2/serialize/read_adapter_interface.h>

#include <memory>
#include <string>

namespace bd {

// Throws ModelError naming `path`, the class and the name. Code that does not parse, or an archive
// this reader cannot read, is left to torch::jit::load, which reports it.
void check_torchscript_code(const std::shared_ptr<caffe2::serialize::ReadAdapterInterface>& archive,
                            const std::string& path);

}  // namespace bd
