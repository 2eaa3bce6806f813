// infini's public C++ API: language models with unbounded context (Infini-attention, Mixture-of-Depths).
// Include this one header and link infini::infini (find_package(infini), docs/API.md). The command
// line, the Python package and the examples are clients of it.
//
//   auto model = infini::Model::load("models/passkey-infini-delta");
//   infini::Session session(model);
//   session.feed_file("book.txt");                      // any length: the state stays a fixed size
//   infini::SampleOptions greedy;
//   greedy.temperature = 0;
//   std::string answer = session.generate("\nWhat is the pass key? The pass key is", greedy);
//
// Headers: config.h (ModelConfig), model.h (Tokenizer, State, Model), session.h (Session,
// SampleOptions), evaluate.h (evaluate, passkey), train.h (train, resume), interrupt.h (stopping
// long calls), runtime.h (threads), error.h (infini::Error, the one exception type).
#pragma once

#include "infini/config.h"
#include "infini/error.h"
#include "infini/evaluate.h"
#include "infini/interrupt.h"
#include "infini/model.h"
#include "infini/runtime.h"
#include "infini/session.h"
#include "infini/train.h"
#include "infini/version.h"
