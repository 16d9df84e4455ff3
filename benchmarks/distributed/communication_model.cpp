// The communication a data-parallel step costs at 8 and 64 GPUs, on paper (issue 16): nothing here runs a
// collective. For each model the recipes train -- CA-MTL, PHA and multi-task full fine-tuning, on MiniLM-L6 and on
// BERT-base, with the six GLUE heads -- it builds the model, applies its freezing rule and counts what
// allreduce_gradients sends per step (every trainable gradient, fp32, in one flat buffer on NCCL), adds the small
// collectives of the step (the loss and token sums; MT-Uncertainty's gathered candidate scores; PHA's gathered
// instance embeddings), and prints the time of a ring all-reduce of that buffer,
//     t = 2 (N - 1) / N * S / B  +  2 (N - 1) * a
// for N = 8 GPUs in one node over NVLink and N = 64 GPUs in 8 nodes over InfiniBand, with the bus bandwidths B and
// per-hop latencies a given below (assumptions, stated in docs/benchmarks.md). Built on request only:
//   cmake --build build --target communication_model && build/benchmarks/communication_model
#include <cstdio>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/nn/parameters.hpp"

using namespace hyperadapt;

namespace {

struct link {
    const char* name;
    int gpus;
    double bus_bytes_per_second;  // what NCCL's ring reaches on large messages
    double hop_seconds;           // per ring step, small messages
};

// H100 SXM: NVLink 4 gives 450 GB/s per direction per GPU; NCCL's all-reduce bus bandwidth on 8 GPUs behind
// NVSwitch reaches about 80 % of it. Between nodes: one 400 Gb/s (50 GB/s) NDR InfiniBand port per GPU, about
// 80 % reached; the ring crosses the slowest link, so 64 GPUs run at the InfiniBand figure.
const std::vector<link> links = {{"8 GPUs, one node, NVLink 4 (B = 360 GB/s, a = 5 us)", 8, 360e9, 5e-6},
                                 {"64 GPUs, 8 nodes, NDR InfiniBand (B = 40 GB/s, a = 10 us)", 64, 40e9, 10e-6}};

double ring_allreduce_seconds(double bytes, const link& l) {
    const double n = l.gpus;
    return 2 * (n - 1) / n * bytes / l.bus_bytes_per_second + 2 * (n - 1) * l.hop_seconds;
}

const std::vector<task_head_spec> glue_six = {{"rte", 2}, {"mrpc", 2}, {"stsb", 1}, {"cola", 2}, {"sst2", 2}, {"wnli", 2}};

struct shape_case {
    const char* name;
    bert_config config;
};

template <class Model, class Options>
std::size_t trainable_of(cpu& b, const Options& o) {
    Model m(b, o);
    m.apply_freezing();
    return count_parameters(m).trainable;
}

void report(const std::string& what, std::size_t trainable, double small_bytes) {
    const double bytes = 4.0 * static_cast<double>(trainable);
    std::printf("%-44s %10.2f M trainable  %8.1f MB of gradients per step  (+ %.1f KB in small collectives)\n",
                what.c_str(), static_cast<double>(trainable) / 1e6, bytes / 1e6, small_bytes / 1e3);
    for (const auto& l : links)
        std::printf("    %-58s all-reduce %7.2f ms  (latency part %.2f ms)\n", l.name,
                    1e3 * ring_allreduce_seconds(bytes, l), 1e3 * 2 * (l.gpus - 1) * l.hop_seconds);
}

}  // namespace

int main() try {
    cpu b(cpu::options{.threads = 1});
    const std::vector<shape_case> shapes = {
        {"MiniLM-L6", {.vocab_size = 30522, .hidden = 384, .layers = 6, .heads = 12, .intermediate = 1536}},
        {"BERT-base", {.vocab_size = 30522, .hidden = 768, .layers = 12, .heads = 12, .intermediate = 3072}}};
    const double batch = 32, candidates = 6 * batch, sums = 3 * 8;
    for (const auto& s : shapes) {
        camtl_options c;
        c.backbone = s.config;
        c.seq_len = 128;
        c.tasks = glue_six;
        // MT-Uncertainty: every candidate's output count and outputs (at most 2), as doubles.
        report(std::string(s.name) + ", CA-MTL", trainable_of<camtl_model<cpu, float>>(b, c), sums + candidates * 3 * 8);
        pha_bert_options p;
        p.backbone = s.config;
        p.tasks = glue_six;
        // The contrastive exchange: every row's instance embedding and task id, as doubles.
        report(std::string(s.name) + ", PHA", trainable_of<pha_bert<cpu, float>>(b, p),
               sums + batch * (static_cast<double>(p.prototype_dim) + 1) * 8);
        multitask_bert_options f{.backbone = s.config, .tasks = glue_six};
        report(std::string(s.name) + ", multi-task full fine-tuning", trainable_of<multitask_bert<cpu, float>>(b, f), sums);
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "communication_model: %s\n", e.what());
    return 1;
}
