#include "engine/train/hellaswag.h"

#include <climits>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace gpt2 {

std::vector<MultipleChoiceExample> load_eval_bin(const std::string& path) {
  MappedFile map(path);
  if (map.size() < 1024)
    throw FileError(path, "file is " + std::to_string(map.size()) + " bytes, shorter than the 1024-byte eval header");
  int32_t h[256];
  std::memcpy(h, map.data(), sizeof h);
  if (h[0] != kEvalFileMagic)
    throw FileError(path,
                    "bad magic " + std::to_string(h[0]) + " at byte offset 0 (expected 20240522, an llm.c eval file)");
  if (h[1] != 1)
    throw FileError(path, "unsupported eval file version " + std::to_string(h[1]) + " (expected 1: uint16 tokens)");
  if (h[2] < 0) throw FileError(path, "negative example count in the header");
  const uint8_t* p = map.data() + 1024;
  const uint64_t n16 = (map.size() - 1024) / 2;
  uint64_t at = 0;
  auto get = [&](int64_t ex, const char* what) -> uint16_t {
    if (at >= n16)
      throw FileError(path, "truncated in example " + std::to_string(ex) + " (reading its " + what +
                                " at byte offset " + std::to_string(1024 + 2 * at) + ")");
    uint16_t v;
    std::memcpy(&v, p + 2 * at, 2);
    ++at;
    return v;
  };
  std::vector<MultipleChoiceExample> out;
  for (int64_t i = 0; i < h[2]; ++i) {
    const uint64_t start = at;
    if (get(i, "start marker") != 65535)
      throw FileError(path, "example " + std::to_string(i) + " does not start with the 65535 marker (byte offset " +
                                std::to_string(1024 + 2 * start) + ")");
    const uint16_t bytes = get(i, "size");
    get(i, "index");
    MultipleChoiceExample e;
    e.label = get(i, "label");
    const int nc = get(i, "completion count");
    if (nc == 0 || e.label >= nc)
      throw FileError(path, "example " + std::to_string(i) + " has label " + std::to_string(e.label) + " but " +
                                std::to_string(nc) + " completions");
    e.context.resize(get(i, "context length"));
    for (auto& t : e.context) t = get(i, "context tokens");
    e.endings.resize(nc);
    for (auto& end : e.endings) {
      end.resize(get(i, "completion length"));
      if (end.empty()) throw FileError(path, "example " + std::to_string(i) + " has an empty completion");
      for (auto& t : end) t = get(i, "completion tokens");
    }
    if (static_cast<uint64_t>(bytes) != 2 * (at - start))
      throw FileError(path, "example " + std::to_string(i) + " says it is " + std::to_string(bytes) +
                                " bytes but holds " + std::to_string(2 * (at - start)));
    out.push_back(std::move(e));
  }
  if (at != n16)
    throw FileError(path, "trailing data after the " + std::to_string(h[2]) + " examples the header lists");
  return out;
}

void write_eval_bin(const std::string& path, const std::vector<MultipleChoiceExample>& examples) {
  std::vector<uint16_t> stream;
  int32_t longest = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    std::vector<uint16_t> s = {65535,
                               0,
                               static_cast<uint16_t>(i),
                               static_cast<uint16_t>(e.label),
                               static_cast<uint16_t>(e.endings.size()),
                               static_cast<uint16_t>(e.context.size())};
    for (int32_t t : e.context) s.push_back(static_cast<uint16_t>(t));
    for (const auto& end : e.endings) {
      s.push_back(static_cast<uint16_t>(end.size()));
      for (int32_t t : end) s.push_back(static_cast<uint16_t>(t));
    }
    s[1] = static_cast<uint16_t>(2 * s.size());
    longest = std::max<int32_t>(longest, static_cast<int32_t>(2 * s.size()));
    stream.insert(stream.end(), s.begin(), s.end());
  }
  int32_t h[256] = {};
  h[0] = kEvalFileMagic;
  h[1] = 1;
  h[2] = static_cast<int32_t>(examples.size());
  h[3] = longest;
  AtomicFile f(path);
  f.write(h, sizeof h);
  f.write(stream.data(), stream.size() * 2);
  f.commit();
}

std::vector<MultipleChoiceExample> load_hellaswag_jsonl(const std::string& path, const Tokenizer& tok) {
  std::ifstream in(path);
  if (!in) throw FileError(path, "cannot open the HellaSwag file");
  std::vector<MultipleChoiceExample> out;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      std::string ctx = j.contains("ctx") ? j.at("ctx").get<std::string>()
                                          : j.at("ctx_a").get<std::string>() + " " + j.at("ctx_b").get<std::string>();
      MultipleChoiceExample e;
      const nlohmann::json& label = j.at("label");
      if (label.is_string()) {
        e.label = std::stoi(label.get<std::string>());
      } else if (label.is_number_integer()) {  // not get<int>(): a float (1e300) or 2^32 would not fit
        const int64_t v = label.get<int64_t>();
        if (v < INT_MIN || v > INT_MAX) throw std::out_of_range("label");
        e.label = static_cast<int>(v);
      } else {
        throw FileError(path, "line " + std::to_string(lineno) + ": the label is not a whole number");
      }
      e.context = tok.encode(ctx);
      for (const auto& end : j.at("endings")) e.endings.push_back(tok.encode(" " + end.get<std::string>()));
      if (e.endings.empty() || e.label < 0 || e.label >= static_cast<int>(e.endings.size()))
        throw FileError(path, "line " + std::to_string(lineno) + ": label " + std::to_string(e.label) +
                                  " does not index the endings");
      out.push_back(std::move(e));
    } catch (const nlohmann::json::exception& e) {
      throw FileError(path, "line " + std::to_string(lineno) + ": " + e.what() +
                                " (expected {\"ctx\": ..., \"endings\": [...], \"label\": n})");
    } catch (const std::invalid_argument&) {
      throw FileError(path, "line " + std::to_string(lineno) + ": the label is not a number");
    } catch (const std::out_of_range&) {  // a label beyond int (std::stoi, or the check above)
      throw FileError(path, "line " + std::to_string(lineno) + ": the label is out of range");
    }
  }
  if (out.empty()) throw FileError(path, "no examples in the HellaSwag file");
  return out;
}

std::vector<MultipleChoiceExample> load_hellaswag(const std::string& path, const Tokenizer* tokenizer) {
  return load_hellaswag(path, [tokenizer]() { return tokenizer; });
}

std::vector<MultipleChoiceExample> load_hellaswag(const std::string& path,
                                                  const std::function<const Tokenizer*()>& get_tokenizer) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path, "cannot open the HellaSwag file");
  int32_t magic = 0;
  in.read(reinterpret_cast<char*>(&magic), 4);
  if (in.gcount() == 4 && magic == kEvalFileMagic) return load_eval_bin(path);
  const Tokenizer* tokenizer = get_tokenizer ? get_tokenizer() : nullptr;
  if (!tokenizer)
    throw FileError(path, "a HellaSwag .jsonl needs the GPT-2 tokenizer (encoder.json, vocab.bpe)",
                    "run data/fetch_tokenizer.sh");
  return load_hellaswag_jsonl(path, *tokenizer);
}

MultipleChoiceResult evaluate_multiple_choice(Model& model, const std::vector<MultipleChoiceExample>& examples,
                                              int64_t limit) {
  const int T = model.plan().run.seq_len;
  const int V = model.config().vocab_size;
  MultipleChoiceResult r;
  const int64_t n = limit > 0 ? std::min<int64_t>(limit, static_cast<int64_t>(examples.size()))
                              : static_cast<int64_t>(examples.size());
  std::vector<int32_t> seq, inputs, targets;
  for (int64_t i = 0; i < n; ++i) {
    const MultipleChoiceExample& e = examples[i];
    std::vector<double> scores;
    for (const auto& end : e.endings) {
      seq = e.context;
      seq.insert(seq.end(), end.begin(), end.end());
      if (seq.size() < 2 || end.empty())
        throw std::invalid_argument("example " + std::to_string(i) + ": nothing to score");
      // Keep the last T + 1 tokens (the ending must fit).
      if (seq.size() > static_cast<size_t>(T) + 1) seq.erase(seq.begin(), seq.end() - (T + 1));
      const int len = static_cast<int>(seq.size()) - 1;
      inputs.assign(seq.begin(), seq.end() - 1);
      targets.assign(seq.begin() + 1, seq.end());
      const int64_t bad = model.load_batch(inputs.data(), targets.data(), 1, len);
      if (bad >= 0)
        throw std::invalid_argument("HellaSwag example " + std::to_string(i) +
                                    ": a token is outside the model's vocabulary [0, " + std::to_string(V) + ")");
      model.forward();
      model.head(false, 0.0f);
      const std::vector<float> losses = model.token_losses();
      const int m = std::min<int>(static_cast<int>(end.size()), len);
      double sum = 0;
      for (int k = len - m; k < len; ++k) sum += losses[k];
      scores.push_back(sum / m);
    }
    int best = 0;
    for (size_t k = 1; k < scores.size(); ++k)
      if (scores[k] < scores[best]) best = static_cast<int>(k);
    r.predictions.push_back(best);
    r.mean_losses.push_back(scores);
    r.correct += best == e.label;
    ++r.examples;
  }
  r.accuracy = r.examples ? static_cast<double>(r.correct) / static_cast<double>(r.examples) : 0.0;
  return r;
}

}  // namespace gpt2
