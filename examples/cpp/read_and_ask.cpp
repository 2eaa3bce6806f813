// Reads a long text with a passkey hidden in it, then asks for the key: infini's public C++ API
// from an outside project. Usage: read_and_ask MODEL_DIR [FILLER_LINES]
#include <cstdlib>
#include <iostream>
#include <string>

#include <infini/infini.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: read_and_ask MODEL_DIR [FILLER_LINES]\n";
    return 2;
  }
  const int lines = argc > 2 ? std::atoi(argv[2]) : 400;
  try {
    const auto model = infini::Model::load(argv[1]);
    infini::Session session(model);
    // The paper's passkey prompt (arXiv 2404.07143, App. B) in five lines, as `infini passkey` writes
    // it, the key line after the first third of the filler.
    const std::string filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
    const auto fillers = [&](int n) {
      std::string text;
      for (int i = 0; i < n; ++i) text += (i ? " " : "") + filler;
      return text + "\n";
    };
    session.feed("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
                 "I will quiz you about the important information there.\n");
    session.feed(fillers(lines / 3));
    session.feed("The pass key is 7093. Remember it. 7093 is the pass key.\n");
    session.feed(fillers(lines - lines / 3));
    infini::SampleOptions greedy;
    greedy.temperature = 0;
    greedy.max_tokens = 6;
    const auto answer = session.generate("What is the pass key? The pass key is", greedy);
    std::cout << "read " << session.position() << " tokens into a state of " << session.state_bytes()
              << " bytes; the model answers:" << answer << "\n";
    return answer.find("7093") != std::string::npos ? 0 : 1;
  } catch (const infini::Error& e) {
    std::cerr << "read_and_ask: " << e.what() << "\n";
    return 1;
  }
}
