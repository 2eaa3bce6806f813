#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/open_model.h"

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
    auto opened = open_model(f->model, f->state, f->threads);
    auto& session = opened.session;
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    auto last_report = t0 - std::chrono::seconds(2);
    const auto start = session.position();
    const auto report = [&](int64_t bytes_done, int64_t total_bytes) {
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      const double left = bytes_done > 0 ? s * static_cast<double>(total_bytes - bytes_done) / static_cast<double>(bytes_done) : 0;
      const auto tokens = session.position() - start;
      fmt::print(stderr, "read {} tokens ({:.1f}% of {}) | {:.0f} tok/s | ETA {:.0f}s\n", tokens,
                 total_bytes > 0 ? 100.0 * static_cast<double>(bytes_done) / static_cast<double>(total_bytes) : 100.0,
                 f->input, static_cast<double>(tokens) / std::max(s, 1e-9), left);
    };
    session.feed_file(f->input, [&](int64_t bytes_done, int64_t total_bytes) {
      if (bytes_done == total_bytes || clock::now() - last_report > std::chrono::seconds(2)) {
        last_report = clock::now();
        report(bytes_done, total_bytes);
      }
    });
    const auto tokens = session.position() - start;
    session.save(f->save_state);
    fmt::print(stderr, "infini read: {} tokens, state of {} bytes at position {} saved to {}\n", tokens,
               session.state_bytes(), session.position(), f->save_state);
    return 0;
  };
}

}  // namespace infini::cli
