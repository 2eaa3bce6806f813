// The passkey retrieval prompt of the Infini-attention paper (App. B, after Mohtashami & Jaggi
// 2023; ../shared/REFERENCE.md): an instruction, filler sentences, the line with the key at a chosen
// depth, more filler, then the question. Lines are joined by newlines, repeated filler by spaces:
//
//   There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.
//   The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. The grass ...
//   The pass key is 9054. Remember it. 9054 is the pass key.
//   The grass is green. ... There and back again.
//   What is the pass key? The pass key is
//
// The expected answer is " 9054". A prompt of a million tokens is written a piece at a time, never
// held whole.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace infini::data {

struct PasskeyPrompt {
  int64_t key = 0;
  int64_t fillers_before = 0;  // repetitions of the filler before the key line
  int64_t fillers_after = 0;   // and after it

  // The prompt's length in bytes, computed without writing it.
  int64_t bytes() const;
  // The key as the prompt writes it: in decimal, as the paper does.
  std::string key_text() const;
  // " <key>": what a model should continue the prompt with.
  std::string answer() const;
};

// The paper's generator draws keys from 1..50000.
constexpr int64_t kPasskeyMin = 1, kPasskeyMax = 50000;
// The longest lead training may put before a prompt (PasskeyExamples; --passkey-lead-bytes).
constexpr int64_t kPasskeyLeadBytesMax = 4096;

// A prompt of at most about `target_bytes` bytes, with the key line after `depth` (0..1) of the
// filler. Below the fixed lines' size there is no filler at all: that shortest prompt (247 bytes with
// a 5-digit key) fits in one 256-token segment, the first step of a training curriculum. The filler
// counts depend on target_bytes and depth only, not on the key.
PasskeyPrompt passkey_prompt(int64_t target_bytes, double depth, int64_t key);

// Calls `sink` with consecutive pieces of the prompt's text (each at most about 64 KiB).
void write_passkey_prompt(const PasskeyPrompt& prompt, const std::function<void(std::string_view)>& sink);
// The prompt in two parts: everything before the key line (which depends only on fillers_before, so
// prompts that share it can share its reading), then the rest.
void write_passkey_prefix(const PasskeyPrompt& prompt, const std::function<void(std::string_view)>& sink);
void write_passkey_suffix(const PasskeyPrompt& prompt, const std::function<void(std::string_view)>& sink);

// The pieces of write_passkey_prompt, each with whether it is filler (training tells filler-only
// segments from those that hold the instruction, the key line or the question).
using PasskeyPieceSink = std::function<void(std::string_view piece, bool filler)>;
void write_passkey_prefix_pieces(const PasskeyPrompt& prompt, const PasskeyPieceSink& sink);
void write_passkey_suffix_pieces(const PasskeyPrompt& prompt, const PasskeyPieceSink& sink);

// The whole prompt as one string: for short prompts (tests, training examples).
std::string passkey_text(const PasskeyPrompt& prompt);

// The last `bytes` bytes of filler sentences joined by spaces, ending with a space: what training
// puts before a prompt's intro to move its lines within their segments (PasskeyExamples' lead).
std::string passkey_filler_tail(int64_t bytes);

}  // namespace infini::data
