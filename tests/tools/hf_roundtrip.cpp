// hf_roundtrip SRC DST: loads a Hugging Face BERT checkpoint folder SRC (config.json + safetensors) into
// bert_model<cpu, float> with hyperadapt's loader and writes it to DST with hyperadapt's saver.
// tests/reference/roundtrip_transformers.py runs it and loads DST back in transformers, so that both
// halves of the checkpoint code are checked against the reference implementation.
#include <exception>
#include <iostream>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/models/bert.hpp"

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: hf_roundtrip SRC_CHECKPOINT_DIR DST_DIR\n";
        return 2;
    }
    try {
        hyperadapt::cpu backend;
        const auto config = hyperadapt::io::read_bert_config(argv[1]);
        hyperadapt::bert_model<hyperadapt::cpu, float> model(backend, config);
        const auto report = hyperadapt::io::load_pretrained(model, argv[1]);
        std::cout << "loaded " << argv[1] << ": " << report.str() << "\n";
        hyperadapt::io::save_pretrained(model, argv[2]);
        std::cout << "saved " << argv[2] << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "hf_roundtrip: " << e.what() << "\n";
        return 1;
    }
}
