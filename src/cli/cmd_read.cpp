#include <chrono>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/open_model.h"
#include "data/text_stream.h"
#include "util/error.h"

namespace infini::cli {

Runner add_read(CLI::App& app) {
  struct Flags {
    std::string model, input, save_state, state;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("read", "read a long text once into a state file, to ask it many times");
  sub->add_option("--model", f->model, "model folder")->required();
  sub->add_option("--input", f->input, "text file to read (streamed, never loaded whole)")->required();
  sub->add_option("--state", f->state, "continue from this state file instead of an empty memory");
  sub->add_option("--save-state", f->save_state, "state file to write")->required();
  add_threads_flag(*sub, f->threads);
  return [f]() {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(f->input, ec))
      throw infini::Error(fmt::format("--input {}: {}", f->input,
                              std::filesystem::is_directory(f->input, ec) ? "is a folder; give one text file"
                                                                         : "no such file"));
    const auto total_bytes = std::filesystem::file_size(f->input);
    auto opened = open_model(f->model, f->state, f->threads);
    const auto& tokenizer = opened.tokenizer;
    auto& session = *opened.session;
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    auto last_report = t0;
    int64_t tokens = 0;
    const auto report = [&](uint64_t bytes_done) {
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      const double left = bytes_done > 0 ? s * static_cast<double>(total_bytes - bytes_done) / bytes_done : 0;
      fmt::print(stderr, "read {} tokens ({:.1f}% of {}) | {:.0f} tok/s | ETA {:.0f}s\n", tokens,
                 100.0 * static_cast<double>(bytes_done) / static_cast<double>(total_bytes), f->input,
                 static_cast<double>(tokens) / std::max(s, 1e-9), left);
    };
    data::stream_tokens(f->input, *tokenizer, [&](const std::vector<int64_t>& piece, uint64_t bytes_done) {
      // Fed in slices, so progress shows within a block too.
      constexpr size_t kSlice = 16384;
      for (size_t i = 0; i < piece.size(); i += kSlice) {
        const auto end = std::min(piece.size(), i + kSlice);
        session.feed({piece.begin() + static_cast<std::ptrdiff_t>(i), piece.begin() + static_cast<std::ptrdiff_t>(end)});
        tokens += static_cast<int64_t>(end - i);
        if (clock::now() - last_report > std::chrono::seconds(2)) {
          last_report = clock::now();
          report(bytes_done - (piece.size() - end));  // bytes ~ tokens for the progress estimate
        }
      }
    });
    report(total_bytes);
    session.save(f->save_state);
    fmt::print(stderr, "infini read: {} tokens, state of {} bytes at position {} saved to {}\n", tokens,
               session.state_bytes(), session.position(), f->save_state);
    return 0;
  };
}

}  // namespace infini::cli
