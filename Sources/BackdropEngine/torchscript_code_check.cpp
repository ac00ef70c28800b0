#include "torchscript_code_check.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/frontend/parser.h>
#include <torch/csrc/jit/frontend/tree_views.h>

#include <new>
#include <optional>

#include "model.h"

namespace bd {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The names libtorch's importer handles itself in a class body; any other `name = value` is a
// class constant, which must be annotated `name : Final[T] = value`.
bool importer_handles(const std::string& name) {
  return name == "__parameters__" || name == "__buffers__" || name == "__forward_pre_hooks__" ||
         name == "__forward_hooks__";
}

// The first class-body assignment that libtorch 1.13 would take as a constant without a type, as
// "class C assigns 'name'"; nullopt when there is none, or when the code does not parse.
std::optional<std::string> untyped_class_constant(const std::string& code, const std::string& record) {
  using namespace torch::jit;
  try {
    Parser parser(std::make_shared<Source>(code, record));
    Lexer& lexer = parser.lexer();
    while (lexer.cur().kind != TK_EOF) {
      if (lexer.cur().kind != TK_CLASS_DEF) {
        lexer.next();  // imports, the version line, functions: not what this looks for
        continue;
      }
      const ClassDef cls(parser.parseClass());
      for (const auto& statement : cls.body()) {
        if (statement.kind() != TK_ASSIGN) continue;
        const Assign assign(statement);
        if (assign.lhs().kind() != TK_VAR || assign.type().present() || !assign.rhs().present()) continue;
        const std::string name = Var(assign.lhs()).name().name();
        if (!importer_handles(name)) return "class " + cls.name().name() + " assigns '" + name + "'";
      }
    }
  } catch (const std::exception&) {
    return std::nullopt;  // a syntax error: torch::jit::load reports it with its own message
  }
  return std::nullopt;
}

}  // namespace

void check_torchscript_code(const std::shared_ptr<caffe2::serialize::ReadAdapterInterface>& archive,
                            const std::string& path) {
  std::vector<std::string> records;
  std::optional<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader.emplace(archive);
    records = reader->getAllRecords();
  } catch (const std::exception&) {
    return;  // not a zip this reader takes: torch::jit::load says what is wrong
  }
  for (const auto& record : records) {
    if (record.compare(0, 5, "code/") != 0 || !ends_with(record, ".py")) continue;
    std::string code;
    try {
      auto [data, size] = reader->getRecord(record);
      code.assign(static_cast<const char*>(data.get()), size);
    } catch (const std::bad_alloc&) {
      throw;  // load_torchscript reports a record larger than memory
    } catch (const std::exception&) {
      continue;  // unreadable record: torch::jit::load reports it
    }
    if (auto found = untyped_class_constant(code, record)) {
      throw ModelError("model-file " + path + " is not a valid TorchScript model: in " + record + ", " + *found +
                       " without a type (a class constant must read 'name : Final[T] = value'; re-export the model "
                       "with torch.jit.save)");
    }
  }
}

}  // namespace bd
