// Bounds-checked safetensors reader: mmap, a small strict JSON parser for the header, and the
// layout rules of DESIGN §4 (header size, dtypes, shapes, ordered non-overlapping offsets).
#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <sstream>

#include "../model.h"

namespace bd {
namespace st {

namespace {

constexpr uint64_t kMaxHeader = 100ull * 1024 * 1024;
constexpr int kMaxDepth = 32;

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  bool integral = false;  // number written without fraction/exponent
  uint64_t u = 0;         // its value when integral and non-negative
  bool negative = false;
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;
};

class Parser {
 public:
  Parser(const char* p, size_t n) : p_(p), end_(p + n) {}
  // Returns an empty string on success, else what went wrong and where.
  std::string parse(Json& out) {
    try {
      skip();
      value(out, 0);
      skip();
      if (p_ != end_) fail("unexpected data after the JSON object");
    } catch (const std::string& e) {
      return e;
    }
    return {};
  }
  size_t pos(const char* base) const { return size_t(p_ - base); }

 private:
  const char* p_;
  const char* end_;
  const char* begin_ = p_;

  [[noreturn]] void fail(const std::string& what) {
    std::ostringstream s;
    s << what << " at header byte " << size_t(p_ - begin_);
    throw s.str();
  }
  void skip() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool lit(const char* w) {
    size_t n = std::strlen(w);
    if (size_t(end_ - p_) >= n && std::memcmp(p_, w, n) == 0) { p_ += n; return true; }
    return false;
  }
  void value(Json& v, int depth) {
    if (depth > kMaxDepth) fail("JSON nested too deeply");
    if (p_ >= end_) fail("unexpected end of JSON");
    char c = *p_;
    if (c == '{') {
      v.kind = Json::Object;
      ++p_; skip();
      if (p_ < end_ && *p_ == '}') { ++p_; return; }
      for (;;) {
        skip();
        if (p_ >= end_ || *p_ != '"') fail("expected a string key");
        std::string key;
        string(key);
        skip();
        if (p_ >= end_ || *p_ != ':') fail("expected ':'");
        ++p_; skip();
        v.members.emplace_back(std::move(key), Json());
        value(v.members.back().second, depth + 1);
        skip();
        if (p_ < end_ && *p_ == ',') { ++p_; continue; }
        if (p_ < end_ && *p_ == '}') { ++p_; return; }
        fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      v.kind = Json::Array;
      ++p_; skip();
      if (p_ < end_ && *p_ == ']') { ++p_; return; }
      for (;;) {
        skip();
        v.items.emplace_back();
        value(v.items.back(), depth + 1);
        skip();
        if (p_ < end_ && *p_ == ',') { ++p_; continue; }
        if (p_ < end_ && *p_ == ']') { ++p_; return; }
        fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      v.kind = Json::String;
      string(v.str);
    } else if (lit("true")) { v.kind = Json::Bool; v.b = true; }
    else if (lit("false")) { v.kind = Json::Bool; v.b = false; }
    else if (lit("null")) { v.kind = Json::Null; }
    else if (c == '-' || (c >= '0' && c <= '9')) number(v);
    else fail("unexpected character in JSON");
  }
  void number(Json& v) {
    v.kind = Json::Number;
    const char* s = p_;
    if (*p_ == '-') { v.negative = true; ++p_; }
    if (p_ >= end_ || !(*p_ >= '0' && *p_ <= '9')) fail("bad number");
    bool overflow = false;
    uint64_t u = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      unsigned d = unsigned(*p_ - '0');
      if (u > (UINT64_MAX - d) / 10) overflow = true; else u = u * 10 + d;
      ++p_;
    }
    v.integral = !overflow;
    if (p_ < end_ && *p_ == '.') {
      v.integral = false; ++p_;
      if (p_ >= end_ || !(*p_ >= '0' && *p_ <= '9')) fail("bad number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      v.integral = false; ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ >= end_ || !(*p_ >= '0' && *p_ <= '9')) fail("bad number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    v.u = u;
    v.num = std::strtod(std::string(s, p_).c_str(), nullptr);
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) { out += char(0xC0 | (cp >> 6)); out += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F));
    }
  }
  uint32_t hex4() {
    if (end_ - p_ < 4) fail("bad \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
      char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }
  void string(std::string& out) {
    ++p_;  // opening quote
    for (;;) {
      if (p_ >= end_) fail("unterminated string");
      char c = *p_++;
      if (c == '"') return;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      if (p_ >= end_) fail("unterminated string");
      char e = *p_++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
              p_ += 2;
              uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else fail("bad surrogate pair");
          }
          utf8(out, cp);
          break;
        }
        default: fail("bad escape in string");
      }
    }
  }
};

std::string printable(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (o.size() > 200) { o += "..."; break; }
    if (c < 0x20 || c == 0x7F) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); o += b; }
    else o += char(c);
  }
  return o;
}

}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I64: return 8;
  }
  return 0;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

bool sniff(const std::string& path) {
  // Lenient on purpose: a '{' after the 8-byte length is enough to route the file to the loader,
  // which then names what is wrong with the header (length, JSON, offsets).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned char buf[9];
  ssize_t got = ::pread(fd, buf, sizeof buf, 0);
  ::close(fd);
  return got == 9 && buf[8] == '{';
}

File::File(const std::string& path) : path_(path) {
  auto fail = [&](const std::string& what) -> void {
    throw ModelError("safetensors file '" + path_ + "': " + what);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat sb;
  if (::fstat(fd, &sb) != 0) { int e = errno; ::close(fd); fail(std::string("cannot stat: ") + std::strerror(e)); }
  if (!S_ISREG(sb.st_mode)) { ::close(fd); fail("not a regular file"); }
  size_ = size_t(sb.st_size);
  if (size_ < 8) { ::close(fd); fail("file is " + std::to_string(size_) + " bytes, shorter than the 8-byte header length"); }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) { map_ = nullptr; fail(std::string("cannot mmap: ") + std::strerror(errno)); }
  try {
    const uint8_t* base = static_cast<const uint8_t*>(map_);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= uint64_t(base[i]) << (8 * i);
    if (n > kMaxHeader) fail("header length " + std::to_string(n) + " exceeds the 100 MB limit (rule: header length must be sane)");
    if (n > size_ - 8) fail("header length " + std::to_string(n) + " runs past the end of the " + std::to_string(size_) + "-byte file (truncated file?)");
    if (n < 2) fail("header length " + std::to_string(n) + " is too small for a JSON object");
    const char* hp = reinterpret_cast<const char*>(base + 8);
    Json root;
    Parser parser(hp, size_t(n));
    std::string perr = parser.parse(root);
    if (!perr.empty()) fail("header is not valid JSON: " + perr);
    if (root.kind != Json::Object) fail("header is not a JSON object");
    const uint8_t* data = base + 8 + n;
    const uint64_t data_size = size_ - 8 - n;
    struct Range { uint64_t b, e; size_t idx; };
    std::vector<Range> ranges;
    std::map<std::string, int> seen;
    for (auto& m : root.members) {
      const std::string& key = m.first;
      const Json& v = m.second;
      auto kfail = [&](const std::string& what) { fail("tensor '" + printable(key) + "': " + what); };
      if (seen.count(key)) kfail("duplicate key in header");
      seen[key] = 1;
      if (key == "__metadata__") {
        if (v.kind != Json::Object) fail("__metadata__ must be an object of strings");
        for (auto& mm : v.members) {
          if (mm.second.kind != Json::String) fail("__metadata__ value '" + printable(mm.first) + "' is not a string");
          metadata_[mm.first] = mm.second.str;
        }
        continue;
      }
      if (v.kind != Json::Object) kfail("entry is not an object");
      const Json* dt = nullptr; const Json* sh = nullptr; const Json* off = nullptr;
      for (auto& f : v.members) {
        if (f.first == "dtype") dt = &f.second;
        else if (f.first == "shape") sh = &f.second;
        else if (f.first == "data_offsets") off = &f.second;
      }
      if (!dt || dt->kind != Json::String) kfail("missing or non-string 'dtype'");
      if (!sh || sh->kind != Json::Array) kfail("missing or non-array 'shape'");
      if (!off || off->kind != Json::Array || off->items.size() != 2) kfail("'data_offsets' must be an array [begin, end]");
      TensorView t;
      t.name = key;
      if (dt->str == "F32") t.dtype = DType::F32;
      else if (dt->str == "F16") t.dtype = DType::F16;
      else if (dt->str == "BF16") t.dtype = DType::BF16;
      else if (dt->str == "I64") t.dtype = DType::I64;
      else kfail("unsupported dtype '" + printable(dt->str) + "' (rule: dtype must be F32, F16, BF16 or I64)");
      if (sh->items.size() > 8) kfail("shape has " + std::to_string(sh->items.size()) + " dimensions (at most 8)");
      unsigned __int128 numel = 1;
      for (auto& d : sh->items) {
        if (d.kind != Json::Number || !d.integral || d.negative || d.u > (uint64_t(1) << 40))
          kfail("shape entries must be non-negative integers");
        t.shape.push_back(int64_t(d.u));
        numel *= d.u;
        if (numel > (unsigned __int128)(uint64_t(1) << 48)) kfail("shape is too large");
      }
      for (auto& o : off->items)
        if (o.kind != Json::Number || !o.integral || o.negative) kfail("data_offsets must be non-negative integers");
      uint64_t b = off->items[0].u, e = off->items[1].u;
      if (b > e) kfail("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] are not ordered (rule: begin <= end)");
      if (e > data_size)
        kfail("data_offsets end " + std::to_string(e) + " lies past the data area of " + std::to_string(data_size) +
              " bytes (rule: offsets inside the file; truncated file?)");
      uint64_t want = uint64_t(numel) * dtype_size(t.dtype);
      if (e - b != want) {
        std::ostringstream s;
        s << "data_offsets span " << (e - b) << " bytes but shape [";
        for (size_t i = 0; i < t.shape.size(); i++) s << (i ? "," : "") << t.shape[i];
        s << "] of " << dtype_name(t.dtype) << " needs " << want << " (rule: end - begin = numel x dtype size)";
        kfail(s.str());
      }
      t.data = data + b;
      t.nbytes = size_t(e - b);
      ranges.push_back({b, e, tensors_.size()});
      tensors_.push_back(std::move(t));
    }
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.b < b.b || (a.b == b.b && a.e < b.e); });
    for (size_t i = 1; i < ranges.size(); i++) {
      if (ranges[i].b < ranges[i - 1].e)
        fail("tensors '" + printable(tensors_[ranges[i - 1].idx].name) + "' and '" + printable(tensors_[ranges[i].idx].name) +
             "' overlap in the data area (rule: non-overlapping data_offsets)");
    }
  } catch (...) {
    close();
    throw;
  }
}

void File::close() {
  if (map_) { ::munmap(map_, size_); map_ = nullptr; }
  for (auto& t : tensors_) t.data = nullptr;
}

File::~File() { close(); }

}  // namespace st
}  // namespace bd
