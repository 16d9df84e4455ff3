// hyperadapt: the command-line tool for model directories (models/model_directory.hpp).
//
//   hyperadapt info    DIR                                 what the directory holds: kind, tasks, labels, sizes
//   hyperadapt predict --model DIR --task T [--input F]    JSONL predictions (F: a task's GLUE/SuperGLUE file,
//                                                          JSONL of {"text", "pair"}, or lines of text with a
//                                                          tab before a pair's second sentence; stdin if absent)
//   hyperadapt eval    --model DIR --task T --input F      the task's official metrics on a labelled file
//   hyperadapt embed   --model DIR --task T [--input F]    JSONL of the sentence representations the head reads
//   hyperadapt serve   --model DIR [--port P]              an HTTP server (serve/http_server.hpp): POST
//                                                          /v1/predict, GET /v1/tasks, GET /health; SIGTERM or
//                                                          SIGINT stop it after the requests in flight
//
//   hyperadapt train camtl|pha [--config F] [options]     trains CA-MTL (and multi-task BERT) on GLUE, or
//                                                          PHA / adapters / HyperFormer++ low-data multi-task;
//                                                          progress, --out DIR (metrics.jsonl, dev_curves.png,
//                                                          checkpoints), --resume, --save-model DIR
//   hyperadapt transfer --source-model DIR --target T --k K [options]
//                                                          few-shot transfer of a saved PHA model to a new task
//
// train and transfer run the recipes of examples/recipes (the same code as 02_camtl_glue and 03_pha_fewshot,
// compiled once); their options may also come from a TOML file (--config F: `name = value` per line, the
// option names without dashes; the command line wins). Every subcommand has --help. Exit codes: 0 success,
// 1 a refused file or input (the message names it), 2 a wrong option.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "hyperadapt/backend/cpu.hpp"
#include "recipes/recipes.hpp"
#if defined(HYPERADAPT_TOOL_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#include "hyperadapt/data/glue.hpp"
#include "hyperadapt/data/metrics.hpp"
#include "hyperadapt/data/registry.hpp"
#include "hyperadapt/data/superglue.hpp"
#include "hyperadapt/io/atomic_file.hpp"
#include "hyperadapt/serve/predictor.hpp"
#if defined(HYPERADAPT_TOOL_WITH_HTTP)
#include "hyperadapt/serve/http_server.hpp"
#endif

namespace {
using namespace hyperadapt;

#if defined(HYPERADAPT_TOOL_WITH_CBLAS)
using policy = cpu_backend<cblas_gemm>;
#else
using policy = cpu;
#endif
using model_predictor = predictor<policy>;

/// Examples read from a file or stdin, with where each came from (for messages and output).
struct input_rows {
    std::vector<text_input> inputs;
    std::vector<std::size_t> lines;  ///< 1-based source line of each input
    std::optional<data::dataset> labelled;  ///< a task file: its gold labels or scores
};

/// Text lines (a tab before a pair's second sentence) or JSONL lines ({"text", "pair"}) parsed into inputs, a
/// chunk at a time, so that `hyperadapt predict` can answer a pipe as its lines arrive.
class line_source {
public:
    line_source(std::istream& in, std::string where, std::string format, const task_card& task)
        : in_(in), where_(std::move(where)), format_(std::move(format)), task_(task) {}

    /// Appends up to `most` inputs to `r`; with `until_idle`, stops early (after one at least) when nothing more
    /// is waiting on the stream (an interactive pipe). False at the end of the input with nothing appended.
    bool next(input_rows& r, std::size_t most, bool until_idle) {
        std::size_t got = 0;
        std::string line;
        while (got < most && std::getline(in_, line)) {
            ++n_;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty()) {
                r.inputs.push_back(parse(line));
                r.lines.push_back(n_);
                ++got;
            }
            if (until_idle && got > 0 && idle()) break;
        }
        return got > 0;
    }

private:
    text_input parse(const std::string& line) const {
        const std::string at = where_ + ":" + std::to_string(n_);
        text_input x;
        if (format_ == "jsonl") {
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(line);
            } catch (const nlohmann::json::exception& e) {
                throw io_error(at + ": not JSON (" + e.what() + ")");
            }
            if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
                throw io_error(at + ": expected an object with a string field \"text\"");
            x.text = j["text"].get<std::string>();
            if (j.contains("pair")) {
                if (!j["pair"].is_string()) throw io_error(at + ": field \"pair\" is not a string");
                x.pair = j["pair"].get<std::string>();
            }
        } else {
            const auto tab = line.find('\t');
            x.text = line.substr(0, tab);
            if (tab != std::string::npos) x.pair = line.substr(tab + 1);
        }
        if (x.pair.has_value() != (task_.inputs == 2))
            throw io_error(at + ": task '" + task_.name + "' takes " +
                           (task_.inputs == 2 ? "sentence pairs (a tab, or \"pair\", before the second)" : "single sentences") +
                           ", this line has " + (x.pair ? "two" : "one"));
        return x;
    }
    /// Nothing buffered and nothing waiting on the descriptor (stdin: std::cin is unsynced in main).
    bool idle() const {
        if (in_.rdbuf()->in_avail() > 0) return false;
        pollfd p{STDIN_FILENO, POLLIN, 0};
        return ::poll(&p, 1, 0) == 0;
    }

    std::istream& in_;
    std::string where_, format_;
    const task_card& task_;
    std::size_t n_ = 0;
};

/// "task" (a registered task's GLUE TSV or SuperGLUE JSONL file, by the model's task name or --as), "jsonl"
/// ({"text", "pair"} per line) or "text" (a line per input, a tab before a pair's second sentence); "auto"
/// picks by the extension: .tsv of a GLUE task and .jsonl of a SuperGLUE task are the task's files, any other
/// .jsonl is JSONL, the rest (and stdin) text.
input_rows read_inputs(const std::string& path, std::string format, const task_card& task, const std::string& as) {
    input_rows r;
    const bool stdin_input = path.empty() || path == "-";
    const std::string registry_name = as.empty() ? task.name : as;
    bool registered = true;
    try {
        (void)data::find_task(registry_name);
    } catch (const config_error&) {
        registered = false;
    }
    if (format == "auto") {
        const std::string ext = stdin_input ? "" : std::filesystem::path(path).extension().string();
        const auto suite = registered ? std::optional(data::find_task(registry_name).suite) : std::nullopt;
        if (ext == ".tsv" && suite == data::benchmark::glue)
            format = "task";
        else if (ext == ".jsonl")
            format = suite == data::benchmark::superglue ? "task" : "jsonl";
        else
            format = "text";
    }
    if (format == "task") {
        if (stdin_input) throw config_error("--format task reads a file: give --input FILE");
        const data::task_info info = data::find_task(registry_name);  // config_error names the known tasks
        data::dataset d = info.suite == data::benchmark::glue ? data::read_glue_file(info, path, data::split::dev)
                                                              : data::read_superglue_file(info, path, data::split::dev);
        for (const auto& e : d.examples) {
            r.inputs.push_back({e.text_a, e.text_b});
            r.lines.push_back(e.line);
        }
        r.labelled = std::move(d);
        return r;
    }
    std::ifstream file;
    if (!stdin_input) {
        file.open(path, std::ios::binary);
        if (!file) throw io_error(path + ": cannot open");
    }
    line_source source(stdin_input ? std::cin : file, stdin_input ? std::string("<stdin>") : path, format, task);
    source.next(r, std::numeric_limits<std::size_t>::max(), false);
    return r;
}

/// Output to a file (written atomically at the end) or stdout.
class output {
public:
    explicit output(std::string path) : path_(std::move(path)) {}
    std::ostream& stream() { return buffer_; }
    /// Writing to stdout: what is buffered goes out now (a pipe's reader sees each batch's answers).
    void flush_if_stdout() {
        if (!path_.empty() && path_ != "-") return;
        std::cout << buffer_.str() << std::flush;
        buffer_.str({});
    }
    void finish() {
        if (path_.empty() || path_ == "-") {
            std::cout << buffer_.str() << std::flush;
            return;
        }
        const std::string text = buffer_.str();
        io::write_file_atomically(path_, [&](io::file_sink& s) { s.write(text); });
    }

private:
    std::string path_;
    std::ostringstream buffer_;
};

struct common_options {
    std::string model, task, input, output, format = "auto", as, backbone;
    int threads = 0;
    std::size_t batch = 32;
};

void add_common(CLI::App& c, common_options& o, bool input_required) {
    c.add_option("--model", o.model, "the model directory")->required()->check(CLI::ExistingDirectory);
    c.add_option("--backbone", o.backbone, "for an adapter set (hyperadapt.json + task_parameters.safetensors): the "
                 "Hugging Face checkpoint folder of the backbone it was trained on")->check(CLI::ExistingDirectory);
    c.add_option("--task", o.task, "one of the model's tasks (hyperadapt info DIR lists them)")->required();
    auto* in = c.add_option("--input", o.input, "input file ('-' or absent: stdin)");
    if (input_required) in->required()->check(CLI::ExistingFile);
    c.add_option("--format", o.format, "input format")->check(CLI::IsMember({"auto", "task", "jsonl", "text"}));
    c.add_option("--as", o.as, "the registered task whose files --format task reads (default: the model's task name)");
    c.add_option("--output", o.output, "output file (default: stdout)");
    c.add_option("--threads", o.threads, "CPU threads (0: OpenMP's default)")->check(CLI::Range(0, 1024));
    c.add_option("--batch", o.batch, "rows per forward pass")->check(CLI::Range(std::size_t{1}, std::size_t{4096}));
}

/// Refuses an --output that cannot be written before any work is done (the file itself is written at the end,
/// atomically).
void check_output(const std::string& path) {
    namespace fs = std::filesystem;
    if (path.empty() || path == "-") return;
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw config_error("--output " + path + ": is a directory");
    const fs::path parent = fs::path(path).has_parent_path() ? fs::path(path).parent_path() : fs::path(".");
    if (!fs::is_directory(parent, ec)) throw config_error("--output " + path + ": folder '" + parent.string() + "' does not exist");
}

model_predictor load(const common_options& o) {
    check_output(o.output);
    policy::options po;
    if (o.threads > 0) po.threads = o.threads;
    return model_predictor::load(o.model, policy(po), {.max_batch = o.batch, .backbone = o.backbone});
}

int info(const std::string& dir, const std::string& backbone, bool as_json) {
    const model_card c = read_model_card(dir, backbone);
    if (as_json) {
        nlohmann::ordered_json j;
        j["kind"] = c.kind;
        j["options"] = c.options;
        j["backbone"] = nlohmann::json::parse(io::bert_config_json(c.backbone));
        nlohmann::ordered_json tasks = nlohmann::ordered_json::array();
        for (const auto& t : c.tasks)
            tasks.push_back({{"name", t.name}, {"type", t.is_regression() ? "regression" : "classification"},
                             {"labels", t.label_names}, {"inputs", t.inputs}, {"target_scale", t.target_scale}});
        j["tasks"] = tasks;
        j["max_length"] = c.tokenizer.max_length;
        j["parameters"] = {{"backbone", c.backbone_parameters}, {"task", c.task_parameters}, {"backbone_trained", c.backbone_trained}};
        j["provenance"] = c.provenance;
        std::cout << j.dump(2) << '\n';
        return 0;
    }
    std::printf("%s: a %s model on a BERT backbone (%zu layers, hidden %zu, %zu heads, vocabulary %zu)\n", dir.c_str(),
                c.kind.c_str(), c.backbone.layers, c.backbone.hidden, c.backbone.heads, c.backbone.vocab_size);
    std::printf("parameters: backbone %zu%s, task-specific %zu (%.2f%% of the backbone)\n", c.backbone_parameters,
                c.backbone_trained ? " (partly trained)" : " (frozen)", c.task_parameters,
                c.backbone_parameters ? 100.0 * static_cast<double>(c.task_parameters) / static_cast<double>(c.backbone_parameters) : 0.0);
    std::printf("inputs: at most %zu tokens, %s\n", c.tokenizer.max_length, c.tokenizer.lower_case ? "lower-cased" : "cased");
    std::printf("tasks:\n");
    for (const auto& t : c.tasks) {
        std::string labels;
        for (const auto& l : t.label_names) labels += (labels.empty() ? "" : ", ") + l;
        std::printf("  %-12s %s, %s%s\n", t.name.c_str(), t.inputs == 2 ? "sentence pairs" : "single sentences",
                    t.is_regression() ? "regression" : ("labels " + labels).c_str(), "");
    }
    if (!c.provenance.empty()) std::printf("provenance: %s\n", c.provenance.dump().c_str());
    return 0;
}

int predict(const common_options& o) {
    const auto p = load(o);
    const task_card& t = p.card().tasks.at(p.card().task_id(o.task));
    output out(o.output);
    std::size_t index = 0;
    auto write = [&](const input_rows& rows) {
        const auto y = p.predict(o.task, rows.inputs);
        for (std::size_t i = 0; i < y.size(); ++i, ++index) {
            nlohmann::ordered_json j;
            j["index"] = index;
            j["line"] = rows.lines[i];
            if (t.is_regression()) {
                j["value"] = y[i].value;
            } else {
                j["label"] = y[i].label;
                j["label_name"] = y[i].label_name;
                j["probabilities"] = y[i].probabilities;
            }
            out.stream() << j.dump() << '\n';
        }
        out.flush_if_stdout();
    };
    if ((o.input.empty() || o.input == "-") && o.format != "task") {
        // A pipe: answer each batch of lines as it arrives (at most --batch lines, fewer when the pipe is idle).
        line_source source(std::cin, "<stdin>", o.format == "auto" ? "text" : o.format, t);
        for (input_rows chunk; source.next(chunk, o.batch, true); chunk = {}) write(chunk);
    } else {
        write(read_inputs(o.input, o.format, t, o.as));
    }
    out.finish();
    return 0;
}

int evaluate(const common_options& o) {
    const auto p = load(o);
    const task_card& t = p.card().tasks.at(p.card().task_id(o.task));
    common_options f = o;
    if (f.format == "auto") f.format = "task";
    if (f.format != "task") throw config_error("eval reads a labelled task file: --format task (or auto)");
    const input_rows rows = read_inputs(o.input, f.format, t, o.as);
    const data::dataset& d = *rows.labelled;
    if ((d.task.kind == data::task_kind::regression) != t.is_regression() ||
        (!t.is_regression() && d.task.label_names.size() != t.label_names.size()))
        throw config_error("--task " + o.task + ": the model's head (" + (t.is_regression() ? "regression" : std::to_string(t.label_names.size()) + " labels") +
                           ") does not fit task '" + d.task.name + "' of " + o.input);
    const auto y = p.predict(o.task, rows.inputs);
    data::task_result r;
    if (t.is_regression()) {
        std::vector<double> predicted;
        for (const auto& x : y) predicted.push_back(x.value);
        r = data::evaluate(d.task, predicted, d.scores());
    } else {
        std::vector<int> predicted;
        for (const auto& x : y) predicted.push_back(x.label);
        r = data::evaluate(d.task, predicted, d.labels());
    }
    nlohmann::ordered_json j;
    j["task"] = o.task;
    j["file"] = o.input;
    j["examples"] = d.size();
    for (const auto& v : r.values) j["metrics"][std::string(data::to_string(v.which))] = v.value;
    j["score"] = r.score;
    output out(o.output);
    out.stream() << j.dump() << '\n';
    out.finish();
    if (!o.output.empty() && o.output != "-") {
        std::printf("%s on %s (%zu examples):", o.task.c_str(), o.input.c_str(), d.size());
        for (const auto& v : r.values) std::printf(" %s %.4f", std::string(data::to_string(v.which)).c_str(), v.value);
        std::printf("\n");
    }
    return 0;
}

int embed(const common_options& o) {
    const auto p = load(o);
    const task_card& t = p.card().tasks.at(p.card().task_id(o.task));
    const input_rows rows = read_inputs(o.input, o.format, t, o.as);
    const auto e = p.embed(o.task, rows.inputs);
    output out(o.output);
    for (std::size_t i = 0; i < e.size(); ++i)
        out.stream() << nlohmann::json{{"index", i}, {"line", rows.lines[i]}, {"embedding", e[i]}}.dump() << '\n';
    out.finish();
    return 0;
}
struct serve_options {
    std::string model, backbone, host = "127.0.0.1";
    int port = 8080, threads = 0;
    std::size_t batch = 32, max_inputs = 256, max_body_bytes = 1 << 20;
    long max_wait_us = 2000;
};

int serve(const serve_options& o) {
#if defined(HYPERADAPT_TOOL_WITH_HTTP)
    // SIGINT and SIGTERM go to one thread that stops the server: blocked here, before any thread starts, so
    // that every thread inherits the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    common_options c;
    c.model = o.model;
    c.backbone = o.backbone;
    c.threads = o.threads;
    c.batch = o.batch;
    const auto p = load(c);
    using server_type = http_server<model_predictor>;
    server_type::options so;
    so.host = o.host;
    so.port = o.port;
    so.max_inputs = o.max_inputs;
    so.max_body_bytes = o.max_body_bytes;
    so.batching.max_rows = o.batch;
    so.batching.max_wait = std::chrono::microseconds(o.max_wait_us);
    server_type server(p, so);
    const int port = server.bind();
    std::printf("hyperadapt serve: %s (%s, %zu tasks) on http://%s:%d\n", o.model.c_str(), p.card().kind.c_str(),
                p.card().tasks.size(), o.host.c_str(), port);
    std::fflush(stdout);
    std::atomic<bool> done{false};
    std::thread stopper([&] {
        const timespec tick{0, 200'000'000};
        while (!done.load()) {
            if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) {
                std::printf("hyperadapt serve: stopping after the requests in flight\n");
                std::fflush(stdout);
                server.stop();
                return;
            }
        }
    });
    server.serve();
    done = true;
    stopper.join();
    const auto st = server.batching_statistics();
    std::printf("hyperadapt serve: stopped; %zu requests, %zu rows in %zu rounds\n", st.requests, st.rows, st.rounds);
    return 0;
#else
    (void)o;
    throw config_error("this hyperadapt was built without cpp-httplib (apt-get install libcpp-httplib-dev, then "
                       "reconfigure): no serve");
#endif
}
}  // namespace

namespace {
/// `hyperadapt train camtl|pha ...` and `hyperadapt transfer ...`: the recipe's own command line, after the
/// subcommand (and the recipe's name), with --mode set for the PHA recipe.
int run_recipe(int argc, char** argv) {
    const std::string command = argv[1];
    std::string recipe = command == "transfer" ? "pha" : argc > 2 ? argv[2] : "";
    if (command == "train" && recipe != "camtl" && recipe != "pha") {
        const bool help = recipe == "--help" || recipe == "-h";
        (help ? std::cout : std::cerr)
            << (help || recipe.empty() ? std::string() : "hyperadapt train: no recipe '" + recipe + "'\n")
            << "usage: hyperadapt train camtl|pha [--config FILE] [options]\n"
               "  camtl  CA-MTL (--model camtl), multi-task BERT (mtl) or single-task models (single) on GLUE tasks\n"
               "  pha    PHA (--model pha), per-task adapters, HyperFormer++ or CA-MTL in low-data multi-task training\n"
               "hyperadapt train camtl --help and hyperadapt train pha --help list the options.\n";
        return help ? 0 : 2;
    }
    const int first = command == "train" ? 3 : 2;  // the recipe's own options start here
    const std::string program = "hyperadapt " + command + (command == "train" ? " " + recipe : "");
    std::vector<std::string> args{program};
    if (recipe == "pha") args.insert(args.end(), {"--mode", command == "train" ? "multitask" : "transfer"});
    for (int i = first; i < argc; ++i) {
        if (recipe == "pha" && std::string(argv[i]) == "--mode") {
            std::cerr << program << ": --mode: set by the subcommand (train pha: multitask; transfer: transfer)\n";
            return 2;
        }
        args.emplace_back(argv[i]);
    }
    std::vector<char*> raw;
    for (auto& a : args) raw.push_back(a.data());
    raw.push_back(nullptr);
    const int n = static_cast<int>(args.size());
    return recipe == "camtl" ? hyperadapt::examples::camtl_glue_main(n, raw.data(), program)
                             : hyperadapt::examples::pha_fewshot_main(n, raw.data(), program);
}
}  // namespace

int main(int argc, char** argv) {
    hyperadapt::examples::restart_with_fitting_openblas_kernels(argv);
    std::ios::sync_with_stdio(false);  // std::cin buffers on its own, so a pipe's idleness can be seen (line_source)
    if (argc > 1 && (std::string(argv[1]) == "train" || std::string(argv[1]) == "transfer")) return run_recipe(argc, argv);
    CLI::App app{"hyperadapt: train, inspect, evaluate and run multi-task model directories"};
    app.require_subcommand(1);
    // Listed for --help; run_recipe runs them (their options are the recipes').
    app.add_subcommand("train", "train camtl|pha [--config FILE] [options]: train a model and save it (--save-model "
                                "DIR); hyperadapt train camtl --help lists the options");
    app.add_subcommand("transfer", "few-shot transfer of a saved PHA model (--source-model DIR) to a new task; "
                                   "hyperadapt transfer --help lists the options");
    std::string info_dir, info_backbone;
    bool info_json = false;
    auto* c_info = app.add_subcommand("info", "what a model directory holds");
    c_info->add_option("dir", info_dir, "the model directory")->required();
    c_info->add_flag("--json", info_json, "as JSON");
    c_info->add_option("--backbone", info_backbone, "for an adapter set: the backbone's checkpoint folder")
        ->check(CLI::ExistingDirectory);
    common_options po, eo, mo;
    auto* c_predict = app.add_subcommand("predict", "a task's predictions, one JSON line per input");
    add_common(*c_predict, po, false);
    auto* c_eval = app.add_subcommand("eval", "the task's official metrics on a labelled GLUE/SuperGLUE file");
    add_common(*c_eval, eo, true);
    auto* c_embed = app.add_subcommand("embed", "sentence representations, one JSON line per input");
    add_common(*c_embed, mo, false);
    serve_options so;
    auto* c_serve = app.add_subcommand("serve", "an HTTP server: POST /v1/predict, GET /v1/tasks, GET /health");
    c_serve->add_option("--model", so.model, "the model directory")->required()->check(CLI::ExistingDirectory);
    c_serve->add_option("--backbone", so.backbone, "for an adapter set: the backbone's checkpoint folder")
        ->check(CLI::ExistingDirectory);
    c_serve->add_option("--host", so.host, "address to listen on")->capture_default_str();
    c_serve->add_option("--port", so.port, "port (0: any free one, printed at start)")->check(CLI::Range(0, 65535))->capture_default_str();
    c_serve->add_option("--threads", so.threads, "CPU threads of the model (0: OpenMP's default)")->check(CLI::Range(0, 1024));
    c_serve->add_option("--batch", so.batch, "rows per forward pass; concurrent requests are batched up to it")
        ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))->capture_default_str();
    c_serve->add_option("--max-wait-us", so.max_wait_us, "how long a request waits for others to batch with")
        ->check(CLI::Range(0L, 1'000'000L))->capture_default_str();
    c_serve->add_option("--max-inputs", so.max_inputs, "texts or pairs per request")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))->capture_default_str();
    c_serve->add_option("--max-body-bytes", so.max_body_bytes, "request body limit")
        ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 30))->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;  // --help: 0; a wrong option: 2, as the examples
    }
    try {
        if (*c_info) return info(info_dir, info_backbone, info_json);
        if (*c_predict) return predict(po);
        if (*c_eval) return evaluate(eo);
        if (*c_embed) return embed(mo);
        if (*c_serve) return serve(so);
    } catch (const hyperadapt::error& e) {
        std::fprintf(stderr, "hyperadapt: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hyperadapt: %s\n", e.what());
        return 1;
    }
    return 0;
}
