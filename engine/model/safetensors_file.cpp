#include "engine/model/safetensors_file.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>

#include "engine/util/bf16.h"
#include "engine/util/errors.h"

namespace gpt2 {

namespace {

// One Hugging Face GPT-2 tensor: its name, which llm.c tensor (and layer, -1 for none) it holds,
// its shape in the HF file, and whether it is a Conv1D weight stored (in, out), transposed from
// llm.c's (out, in). The one name table, for loading and saving.
struct HfTensor {
  std::string name;
  int tensor;
  int layer;
  std::vector<int64_t> shape;
  bool transpose;
};

std::vector<HfTensor> hf_tensor_table(const ModelConfig& c) {
  const int64_t C = c.channels, V = c.vocab_size;
  std::vector<HfTensor> t;
  t.push_back({"wte.weight", WTE, -1, {V, C}, false});  // on load, rows V..Vp-1 stay zero
  t.push_back({"wpe.weight", WPE, -1, {c.max_seq_len, C}, false});
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    t.push_back({p + "ln_1.weight", LN1W, l, {C}, false});
    t.push_back({p + "ln_1.bias", LN1B, l, {C}, false});
    t.push_back({p + "attn.c_attn.weight", QKVW, l, {C, 3 * C}, true});
    t.push_back({p + "attn.c_attn.bias", QKVB, l, {3 * C}, false});
    t.push_back({p + "attn.c_proj.weight", ATTPROJW, l, {C, C}, true});
    t.push_back({p + "attn.c_proj.bias", ATTPROJB, l, {C}, false});
    t.push_back({p + "ln_2.weight", LN2W, l, {C}, false});
    t.push_back({p + "ln_2.bias", LN2B, l, {C}, false});
    t.push_back({p + "mlp.c_fc.weight", FCW, l, {C, 4 * C}, true});
    t.push_back({p + "mlp.c_fc.bias", FCB, l, {4 * C}, false});
    t.push_back({p + "mlp.c_proj.weight", FCPROJW, l, {4 * C, C}, true});
    t.push_back({p + "mlp.c_proj.bias", FCPROJB, l, {C}, false});
  }
  t.push_back({"ln_f.weight", LNFW, -1, {C}, false});
  t.push_back({"ln_f.bias", LNFB, -1, {C}, false});
  return t;
}

// Where an HfTensor's values start in the llm.c file order of `w`.
int64_t hf_tensor_offset(const ModelWeights& w, const HfTensor& t) {
  if (t.layer < 0) return w.offset(t.tensor);
  return w.offset(t.tensor) + t.layer * (param_tensor_specs(w.config)[t.tensor].numel() / w.config.num_layers);
}

// IEEE half-precision bits to fp32 (exact: subnormals, infinities and NaNs kept).
float f16_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | mant << 13;
  } else {
    u = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct StTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct StFile {
  MappedFile map;
  uint64_t data_start = 0;
  std::map<std::string, StTensor> tensors;  // names without the "transformer." prefix
  nlohmann::json metadata;
};

// A JSON array of whole numbers. get<int64_t>() of a float such as 1e300 would be undefined
// behaviour, so floats are refused before it.
bool is_int_list(const nlohmann::json& v) {
  return v.is_array() && std::all_of(v.begin(), v.end(), [](const nlohmann::json& x) { return x.is_number_integer(); });
}

int st_dtype_size(const std::string& path, const std::string& name, const std::string& dt) {
  if (dt == "F32") return 4;
  if (dt == "BF16" || dt == "F16") return 2;
  throw FileError(path, "tensor " + name + " has dtype " + dt + "; supported: F32, BF16, F16");
}

StFile open_safetensors(const std::string& path, bool read_data) {
  StFile f;
  f.map = MappedFile(path);
  const uint64_t size = f.map.size();
  if (size < 8)
    throw FileError(path,
                    "file is " + std::to_string(size) + " bytes, shorter than the 8-byte safetensors header length");
  uint64_t n = 0;
  std::memcpy(&n, f.map.data(), 8);
  if (n > size - 8 || n > (1ull << 30))
    throw FileError(path, "safetensors header length " + std::to_string(n) + " exceeds the file size " +
                              std::to_string(size) + " (truncated, or not a safetensors file)");
  f.data_start = 8 + n;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(reinterpret_cast<const char*>(f.map.data()) + 8,
                              reinterpret_cast<const char*>(f.map.data()) + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path, std::string("the safetensors JSON header does not parse: ") + e.what());
  }
  if (!j.is_object()) throw FileError(path, "the safetensors header is not a JSON object");
  const uint64_t data_size = size - f.data_start;
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> ranges;  // [begin, end) and name of each tensor
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      f.metadata = it.value();
      continue;
    }
    const auto& v = it.value();
    StTensor t;
    try {
      t.dtype = v.at("dtype").get<std::string>();
      if (!is_int_list(v.at("shape")) || !is_int_list(v.at("data_offsets")))
        throw FileError(path, "tensor " + it.key() + ": shape and data_offsets must be lists of whole numbers");
      t.shape = v.at("shape").get<std::vector<int64_t>>();
      const auto offs = v.at("data_offsets").get<std::vector<uint64_t>>();
      if (offs.size() != 2) throw FileError(path, "tensor " + it.key() + ": data_offsets needs 2 values");
      t.begin = offs[0];
      t.end = offs[1];
    } catch (const nlohmann::json::exception& e) {
      throw FileError(path, "tensor " + it.key() + ": bad header entry (" + e.what() + ")");
    }
    std::string name = it.key();
    if (name.rfind("transformer.", 0) == 0) name = name.substr(12);
    if (read_data) {
      const uint64_t esize = st_dtype_size(path, it.key(), t.dtype);
      bool empty = false;
      for (int64_t d : t.shape) {
        if (d < 0) throw FileError(path, "tensor " + it.key() + " has a negative dimension");
        empty |= d == 0;
      }
      // The element count, refused before it can overflow: it must fit in the data bytes.
      uint64_t numel = empty ? 0 : 1;
      for (int64_t d : t.shape) {
        if (empty) break;
        if (numel > data_size / esize / static_cast<uint64_t>(d))
          throw FileError(path, "tensor " + it.key() + " has a shape of more values than the " +
                                    std::to_string(data_size) + " data bytes hold (truncated, or a corrupt shape)");
        numel *= static_cast<uint64_t>(d);
      }
      const uint64_t want = numel * esize;
      if (t.end < t.begin || t.end - t.begin != want)
        throw FileError(path, "tensor " + it.key() + ": data_offsets [" + std::to_string(t.begin) + ", " +
                                  std::to_string(t.end) + ") do not hold " + std::to_string(want) +
                                  " bytes for its shape");
      if (t.end > data_size)
        throw FileError(path, "tensor " + it.key() + " ends at data byte " + std::to_string(t.end) +
                                  " but the file holds only " + std::to_string(data_size) + " data bytes (truncated)");
    }
    f.tensors[name] = t;
    if (read_data && t.end > t.begin) ranges.push_back({t.begin, t.end, it.key()});
  }
  // No two tensors share data bytes (as the format requires), so the tensors, and what is
  // allocated for them, are never larger than the file.
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (std::get<0>(ranges[i]) < std::get<1>(ranges[i - 1]))
      throw FileError(path, "tensors " + std::get<2>(ranges[i - 1]) + " and " + std::get<2>(ranges[i]) +
                                " overlap in the data (at data byte " + std::to_string(std::get<0>(ranges[i])) + ")");
  return f;
}

int read_heads_json(const std::string& file) {
  std::ifstream in(file);
  if (!in) return 0;
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    for (const char* key : {"n_head", "num_attention_heads"}) {
      if (!j.contains(key)) continue;
      const nlohmann::json& v = j.at(key);  // not get<int>() at once: of 1e300 it is undefined behaviour
      if (!v.is_number_integer() || v.get<int64_t>() < INT_MIN || v.get<int64_t>() > INT_MAX)
        throw FileError(file, std::string(key) + " is not a whole number of heads");
      return v.get<int>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw FileError(file, std::string("config.json does not parse: ") + e.what());
  }
  return 0;
}

const StTensor& st_need(const std::string& path, const StFile& f, const std::string& name,
                        const std::vector<int64_t>& shape) {
  auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw FileError(path, "missing tensor " + name + " (an HF GPT-2 safetensors file has it)");
  if (!shape.empty() && it->second.shape != shape) {
    auto fmt = [](const std::vector<int64_t>& s) {
      std::string o = "(";
      for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
      return o + ")";
    };
    throw FileError(path, "tensor " + name + " has shape " + fmt(it->second.shape) + ", expected " + fmt(shape));
  }
  return it->second;
}

ModelConfig st_config(const std::string& path, const StFile& f, int heads_hint) {
  const StTensor& wte = st_need(path, f, "wte.weight", {});
  const StTensor& wpe = st_need(path, f, "wpe.weight", {});
  if (wte.shape.size() != 2) throw FileError(path, "tensor wte.weight must be 2-D (V, C)");
  if (wpe.shape.size() != 2) throw FileError(path, "tensor wpe.weight must be 2-D (maxT, C)");
  for (int64_t d : {wte.shape[0], wte.shape[1], wpe.shape[0]})
    if (d < 0 || d > INT_MAX)
      throw FileError(path,
                      "tensor wte.weight or wpe.weight has a dimension of " + std::to_string(d) + ", out of range");
  ModelConfig c;
  c.name = "custom";
  c.vocab_size = static_cast<int>(wte.shape[0]);
  c.channels = static_cast<int>(wte.shape[1]);
  c.max_seq_len = static_cast<int>(wpe.shape[0]);
  if (wpe.shape[1] != wte.shape[1])
    throw FileError(path, "tensor wpe.weight has width " + std::to_string(wpe.shape[1]) + " but wte.weight has " +
                              std::to_string(wte.shape[1]));
  int L = 0;
  while (f.tensors.count("h." + std::to_string(L) + ".ln_1.weight")) ++L;
  if (L == 0) throw FileError(path, "missing tensor h.0.ln_1.weight: no transformer layers found");
  c.num_layers = L;
  c.padded_vocab = pad_vocab(c.vocab_size);
  int heads = heads_hint;
  if (heads <= 0) heads = read_heads_json(dir_of(path) + "/config.json");
  if (heads <= 0 && f.metadata.is_object() && f.metadata.contains("n_head")) {
    try {
      heads = std::stoi(f.metadata.at("n_head").get<std::string>());
    } catch (const std::exception&) {
      throw FileError(path, "__metadata__ n_head is not a number");
    }
  }
  if (heads <= 0) heads = default_heads_for_width(c.channels);
  if (heads <= 0)
    throw FileError(path, "the head count is not in the tensors, there is no config.json beside the file, and width " +
                              std::to_string(c.channels) + " is no GPT-2 size; pass --heads");
  c.num_heads = heads;
  check_model_file_config(path, c);
  return c;
}

// Copies a tensor's values into dst (numel floats); transposes a 2-D (in, out) Conv1D weight
// to (out, in) when `transpose`.
void st_copy(const StFile& f, const StTensor& t, float* dst, bool transpose) {
  const uint8_t* src = f.map.data() + f.data_start + t.begin;
  int64_t numel = 1;
  for (int64_t d : t.shape) numel *= d;
  auto get = [&](int64_t i) -> float {
    if (t.dtype == "F32") {
      float v;
      std::memcpy(&v, src + 4 * i, 4);
      return v;
    }
    uint16_t b;
    std::memcpy(&b, src + 2 * i, 2);
    return t.dtype == "BF16" ? bf16_bits_to_float(b) : f16_bits_to_float(b);
  };
  if (!transpose) {
    for (int64_t i = 0; i < numel; ++i) dst[i] = get(i);
    return;
  }
  const int64_t in = t.shape[0], out = t.shape[1];
  for (int64_t r = 0; r < in; ++r)
    for (int64_t c = 0; c < out; ++c) dst[c * in + r] = get(r * out + c);
}

}  // namespace

ModelConfig read_safetensors_config(const std::string& path, int heads_hint) {
  return st_config(path, open_safetensors(path, false), heads_hint);
}

ModelWeights load_safetensors(const std::string& path, int heads_hint) {
  const StFile f = open_safetensors(path, true);
  ModelWeights w;
  w.config = st_config(path, f, heads_hint);
  const ModelConfig& c = w.config;
  // Every tensor present and of its shape before the model's size is allocated.
  const std::vector<HfTensor> table = hf_tensor_table(c);
  std::vector<const StTensor*> tensors;
  for (const HfTensor& h : table) tensors.push_back(&st_need(path, f, h.name, h.shape));
  w.data.assign(static_cast<size_t>(num_parameters(c)), 0.0f);
  bool any_bf16 = false;
  for (size_t i = 0; i < table.size(); ++i) {
    any_bf16 |= tensors[i]->dtype != "F32";
    st_copy(f, *tensors[i], w.data.data() + hf_tensor_offset(w, table[i]), table[i].transpose);
  }
  w.source_dtype = any_bf16 ? WeightDType::BF16 : WeightDType::FP32;
  return w;
}

void save_safetensors(const std::string& path, const ModelWeights& w, WeightDType dtype) {
  const ModelConfig& c = w.config;
  if (static_cast<int64_t>(w.data.size()) != num_parameters(c))
    throw std::invalid_argument("save_safetensors: weights do not match their config");
  const std::vector<HfTensor> outs = hf_tensor_table(c);
  const int esize = dtype == WeightDType::BF16 ? 2 : 4;
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"},
                            {"n_head", std::to_string(c.num_heads)},
                            {"n_layer", std::to_string(c.num_layers)},
                            {"n_embd", std::to_string(c.channels)},
                            {"n_positions", std::to_string(c.max_seq_len)},
                            {"vocab_size", std::to_string(c.vocab_size)}};
  uint64_t off = 0;
  for (const HfTensor& o : outs) {
    int64_t n = 1;
    for (int64_t d : o.shape) n *= d;
    const uint64_t bytes = static_cast<uint64_t>(n) * esize;
    header[o.name] = {{"dtype", esize == 2 ? "BF16" : "F32"}, {"shape", o.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  std::string hs = header.dump();
  while (hs.size() % 8 != 0) hs.push_back(' ');  // data starts 8-byte aligned
  const uint64_t hn = hs.size();
  AtomicFile f(path);
  f.write(&hn, 8);
  f.write(hs.data(), hs.size());
  std::vector<float> tmp;
  for (const HfTensor& o : outs) {
    int64_t n = 1;
    for (int64_t d : o.shape) n *= d;
    const float* src = w.data.data() + hf_tensor_offset(w, o);
    if (o.transpose) {  // llm.c's (out, in) = (shape[1], shape[0]); the file holds (in, out)
      const int64_t in = o.shape[0], out = o.shape[1];
      tmp.resize(static_cast<size_t>(n));
      for (int64_t r = 0; r < in; ++r)
        for (int64_t cc = 0; cc < out; ++cc) tmp[r * out + cc] = src[cc * in + r];
      src = tmp.data();
    }
    write_weight_values(f, src, n, dtype);
  }
  f.commit();
}

}  // namespace gpt2
