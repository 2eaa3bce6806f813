// infini._C, the Python package's native module: the public C++ API (include/infini) for
// python/infini/__init__.py, which gives it PyTorch's habits. Tensors cross as torch.Tensor objects
// that share storage and autograd history with the engine's. Every long call releases the GIL and
// polls for Ctrl-C (include/infini/interrupt.h); text crosses as bytes, which the Python side
// decodes, since a byte-level model may emit any byte.
#include <torch/extension.h>

#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <chrono>
#include <string>
#include <vector>

#include "infini/infini.h"

namespace py = pybind11;

namespace {

// Installed for a call: every 100 ms the engine's poll takes the GIL and runs Python's signal
// handlers; a KeyboardInterrupt they raise unwinds the call and reaches the caller.
struct PythonInterrupts {
  infini::ScopedInterruptCheck check{[last = std::chrono::steady_clock::now()]() mutable {
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::milliseconds(100)) return;
    last = now;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }};
};

// Long calls: interrupts polled, GIL released (constructed in this order, destroyed in reverse).
using LongCall = py::call_guard<PythonInterrupts, py::gil_scoped_release>;

infini::Routing parse_routing(const std::string& name) {
  if (name == "topk") return infini::Routing::TopK;
  if (name == "causal") return infini::Routing::Causal;
  throw infini::Error("routing must be 'topk' or 'causal', not '" + name + "'");
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "infini's native module; use the infini package";
  m.attr("__version__") = INFINI_VERSION;
  py::register_exception<infini::Error>(m, "Error", PyExc_RuntimeError);
  m.def("set_threads", &infini::set_threads, py::arg("n"));
  m.def("usable_cpus", &infini::usable_cpus);

  py::class_<infini::Tokenizer>(m, "Tokenizer")
      .def_static("bytes", &infini::Tokenizer::bytes)
      .def_static("sentencepiece", &infini::Tokenizer::sentencepiece, py::arg("model_file"))
      .def_static("load", &infini::Tokenizer::load, py::arg("model_dir"))
      .def_property_readonly("kind", &infini::Tokenizer::kind)
      .def_property_readonly("vocab_size", &infini::Tokenizer::vocab_size)
      .def("encode", [](const infini::Tokenizer& t, const std::string& text) { return t.encode(text); })
      .def("decode", [](const infini::Tokenizer& t, const std::vector<int64_t>& ids) {
        return py::bytes(t.decode(ids));
      });

  py::class_<infini::State>(m, "State")
      .def(py::init<>())
      .def_property_readonly("defined", &infini::State::defined)
      .def_property_readonly("batch", &infini::State::batch)
      .def_property_readonly("position", &infini::State::position)
      .def_property_readonly("bytes", &infini::State::bytes)
      .def("detach", &infini::State::detach)
      .def("clone", &infini::State::clone)
      .def("tensors", &infini::State::tensors);

  py::class_<infini::Model>(m, "Model")
      .def(py::init([](const std::string& config_json, uint64_t seed, const infini::Tokenizer* tokenizer) {
             const auto config = infini::ModelConfig::parse(config_json, "config");
             return tokenizer ? infini::Model(config, *tokenizer, seed) : infini::Model(config, seed);
           }),
           py::arg("config_json"), py::arg("seed"), py::arg("tokenizer") = nullptr)
      .def_static("load", &infini::Model::load, py::arg("dir"), LongCall())
      .def("save", &infini::Model::save, py::arg("dir"), LongCall())
      .def_property_readonly("config_json", [](const infini::Model& model) { return model.config().to_json().dump(); })
      .def_property_readonly("tokenizer", &infini::Model::tokenizer)
      .def_property_readonly("path", &infini::Model::path)
      .def(
          "forward",
          [](const infini::Model& model, const torch::Tensor& tokens, const infini::State& state,
             const std::string& routing) {
            auto out = model.forward(tokens, state, parse_routing(routing));
            return std::make_pair(out.logits, out.state);
          },
          py::arg("tokens"), py::arg("state"), py::arg("routing"), LongCall())
      .def("initial_state", &infini::Model::initial_state, py::arg("batch") = 1)
      .def("named_parameters", &infini::Model::named_parameters)
      .def("parameter_count", &infini::Model::parameter_count)
      .def("identity", &infini::Model::identity, LongCall());

  py::class_<infini::SampleOptions>(m, "SampleOptions")
      .def(py::init<>())
      .def_readwrite("max_tokens", &infini::SampleOptions::max_tokens)
      .def_readwrite("temperature", &infini::SampleOptions::temperature)
      .def_readwrite("top_k", &infini::SampleOptions::top_k)
      .def_readwrite("top_p", &infini::SampleOptions::top_p)
      .def_readwrite("repetition_penalty", &infini::SampleOptions::repetition_penalty)
      .def_readwrite("repetition_window", &infini::SampleOptions::repetition_window)
      .def_readwrite("seed", &infini::SampleOptions::seed)
      .def_readwrite("stop", &infini::SampleOptions::stop);

  py::class_<infini::Generation>(m, "Generation")
      .def(
          "next",
          [](infini::Generation& g) -> py::object {
            std::optional<std::string> piece;
            {
              PythonInterrupts interrupts;
              py::gil_scoped_release release;
              piece = g.next();
            }
            if (!piece) return py::none();
            return py::bytes(*piece);
          })
      .def_property_readonly("ended", &infini::Generation::ended)
      .def_property_readonly("stopped", &infini::Generation::stopped)
      .def_property_readonly("tokens", &infini::Generation::tokens)
      .def_property_readonly("text", [](const infini::Generation& g) { return py::bytes(g.text()); });

  py::class_<infini::Session::Snapshot>(m, "Snapshot")
      .def_property_readonly("position", &infini::Session::Snapshot::position);

  py::class_<infini::Session>(m, "Session")
      .def(py::init<const infini::Model&>(), py::arg("model"))
      .def_property_readonly("model", &infini::Session::model)
      .def(
          "feed_tokens",
          [](infini::Session& s, const std::vector<int64_t>& tokens, const infini::Session::Progress& progress) {
            s.feed(tokens, progress);
          },
          py::arg("tokens"), py::arg("progress") = nullptr, LongCall())
      .def(
          "feed_text",
          [](infini::Session& s, const std::string& text, const infini::Session::Progress& progress) {
            s.feed(std::string_view(text), progress);
          },
          py::arg("text"), py::arg("progress") = nullptr, LongCall())
      .def("feed_file", &infini::Session::feed_file, py::arg("path"), py::arg("progress") = nullptr, LongCall())
      .def(
          "generate",
          [](infini::Session& s, const std::string& prompt, const infini::SampleOptions& options) {
            std::string text;
            {
              PythonInterrupts interrupts;
              py::gil_scoped_release release;
              text = s.generate(prompt, options);
            }
            return py::bytes(text);
          },
          py::arg("prompt"), py::arg("options"))
      .def("generate_tokens",
           [](infini::Session& s, const std::vector<int64_t>& prompt, const infini::SampleOptions& options) {
             return s.generate_tokens(prompt, options);
           },
           py::arg("prompt"), py::arg("options"), LongCall())
      // The generation refers to the session: it keeps the session alive.
      .def("start_generation", &infini::Session::start_generation, py::arg("prompt"), py::arg("options"),
           py::keep_alive<0, 1>(), LongCall())
      .def_property_readonly("last_logits", &infini::Session::last_logits)
      .def_property_readonly("position", &infini::Session::position)
      .def_property_readonly("state_bytes", &infini::Session::state_bytes)
      .def("state", &infini::Session::state)
      .def("clear", &infini::Session::clear)
      .def("snapshot", &infini::Session::snapshot)
      .def("restore", &infini::Session::restore, py::arg("snapshot"))
      .def("save", &infini::Session::save, py::arg("path"), LongCall())
      .def("load", &infini::Session::load, py::arg("path"), LongCall());

  m.def(
      "evaluate",
      [](const infini::Model& model, const std::string& data, int64_t max_documents, int64_t max_tokens,
         bool forget_memory, const std::string& routing, const std::string& split,
         const std::function<void(int64_t, int64_t)>& progress) {
        infini::EvalOptions o;
        o.max_documents = max_documents;
        o.max_tokens = max_tokens;
        o.forget_memory = forget_memory;
        o.routing = parse_routing(routing);
        o.split = split;
        return infini::evaluate(model, data, o, progress).dump();
      },
      py::arg("model"), py::arg("data"), py::arg("max_documents"), py::arg("max_tokens"), py::arg("forget_memory"),
      py::arg("routing"), py::arg("split"), py::arg("progress") = nullptr, LongCall());

  m.def(
      "passkey",
      [](const infini::Model& model, const std::vector<int64_t>& lengths, const std::vector<double>& depths,
         int64_t trials, uint64_t seed, int64_t key_min, int64_t key_max,
         const std::function<void(const std::string&)>& progress) {
        infini::PasskeyEvalOptions o;
        o.lengths = lengths;
        o.depths = depths;
        o.trials = trials;
        o.seed = seed;
        o.key_min = key_min;
        o.key_max = key_max;
        return infini::passkey(model, o,
                               [&](const nlohmann::json& cell) {
                                 if (progress) progress(cell.dump());
                               })
            .dump();
      },
      py::arg("model"), py::arg("lengths"), py::arg("depths"), py::arg("trials"), py::arg("seed"),
      py::arg("key_min"), py::arg("key_max"), py::arg("progress") = nullptr, LongCall());
}
