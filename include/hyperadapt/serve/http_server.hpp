#pragma once
// A model directory over HTTP (cpp-httplib; Debian: libcpp-httplib-dev), for `hyperadapt serve`:
//
//   GET  /health        {"status": "ok", "kind": "camtl", "tasks": 2}
//   GET  /v1/tasks      {"tasks": [{"name", "type", "labels", "inputs"}, ...]}
//   POST /v1/predict    {"task": "sst2", "texts": ["...", ...]}  or  {"task": "stsb", "pairs": [["a", "b"], ...]}
//                       -> {"task": "sst2", "predictions": [{"label", "label_name", "probabilities"} | {"value"}]}
//
// Concurrent requests are batched (serve/request_batcher.hpp). Every refusal is JSON, {"error": "...",
// "field": "..."} where a field is at fault: 400 a malformed body or field, 404 an unknown task or path, 405 a
// wrong method, 413 a body or input list over its limit, 500 a failure inside the model. stop() (from another
// thread, e.g. on SIGTERM) lets the requests in flight finish and returns from listen().
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/io/json.hpp"
#include "hyperadapt/serve/request_batcher.hpp"

namespace hyperadapt {

template <class Predictor>
class http_server {
public:
    struct options {
        std::string host = "127.0.0.1";
        int port = 8080;                          ///< 0: any free port (port() says which)
        std::size_t max_body_bytes = 1 << 20;     ///< larger bodies: 413
        std::size_t max_inputs = 256;             ///< texts or pairs per request; more: 413
        typename request_batcher<Predictor>::options batching{};
    };

    http_server(const Predictor& p, options o) : predictor_(p), options_(std::move(o)), batcher_(p, options_.batching) {
        server_.set_payload_max_length(options_.max_body_bytes);
        server_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
            reply(res, 200, {{"status", "ok"}, {"kind", predictor_.card().kind}, {"tasks", predictor_.card().tasks.size()}});
        });
        server_.Get("/v1/tasks", [this](const httplib::Request&, httplib::Response& res) {
            nlohmann::json tasks = nlohmann::json::array();
            for (const auto& t : predictor_.card().tasks)
                tasks.push_back({{"name", t.name}, {"type", t.is_regression() ? "regression" : "classification"},
                                 {"labels", t.label_names}, {"inputs", t.inputs}});
            reply(res, 200, {{"tasks", tasks}});
        });
        server_.Post("/v1/predict", [this](const httplib::Request& req, httplib::Response& res) { predict(req, res); });
        for (const char* path : {"/health", "/v1/tasks"})
            server_.Post(path, [](const httplib::Request&, httplib::Response& res) { refuse(res, 405, "use GET", ""); });
        server_.Get("/v1/predict", [](const httplib::Request&, httplib::Response& res) { refuse(res, 405, "use POST", ""); });
        server_.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
            if (!res.body.empty()) return;  // a handler's own JSON answer
            if (res.status == 413)
                refuse(res, 413, "the request body is larger than " + std::to_string(options_.max_body_bytes) + " bytes", "body");
            else if (res.status == 404)
                refuse(res, 404, "no such endpoint (GET /health, GET /v1/tasks, POST /v1/predict)", "");
            else
                refuse(res, res.status, "bad request", "");
        });
        server_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
            std::string what = "internal error";
            try {
                if (e) std::rethrow_exception(e);
            } catch (const std::exception& x) {
                what = x.what();
            } catch (...) {
            }
            refuse(res, 500, what, "");
        });
    }
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Binds the socket; returns the port (the one chosen when options.port is 0). io_error when it cannot.
    int bind() {
        port_ = options_.port == 0 ? server_.bind_to_any_port(options_.host)
                                   : (server_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
        if (port_ < 0)
            throw io_error(options_.host + ":" + std::to_string(options_.port) + ": cannot listen there (in use, or not an address of this machine)");
        return port_;
    }
    /// Serves until stop(); bind() first.
    void serve() {
        if (port_ < 0) throw config_error("http_server: bind() before serve()");
        server_.listen_after_bind();
    }
    void stop() { server_.stop(); }
    [[nodiscard]] int port() const noexcept { return port_; }
    [[nodiscard]] auto batching_statistics() const { return batcher_.stats(); }

private:
    static void reply(httplib::Response& res, int status, const nlohmann::json& body) {
        res.status = status;
        res.set_content(body.dump() + "\n", "application/json");
    }
    static void refuse(httplib::Response& res, int status, const std::string& why, const std::string& field) {
        nlohmann::json j{{"error", why}};
        if (!field.empty()) j["field"] = field;
        reply(res, status, j);
    }

    void predict(const httplib::Request& req, httplib::Response& res) {
        nlohmann::json j;
        try {
            j = io::parse_json(req.body, "request body");
        } catch (const error& e) {
            return refuse(res, 400, e.what(), "body");
        }
        if (!j.is_object()) return refuse(res, 400, "the body must be a JSON object {\"task\", \"texts\" | \"pairs\"}", "body");
        for (const auto& [k, v] : j.items())
            if (k != "task" && k != "texts" && k != "pairs") return refuse(res, 400, "unknown field '" + k + "'", k);
        if (!j.contains("task") || !j["task"].is_string()) return refuse(res, 400, "'task' must be a task name (GET /v1/tasks)", "task");
        const std::string task = j["task"].get<std::string>();
        std::size_t tid = 0;
        try {
            tid = predictor_.card().task_id(task);
        } catch (const error& e) {
            return refuse(res, 404, e.what(), "task");
        }
        const bool pairs = predictor_.card().tasks[tid].inputs == 2;
        const char* field = pairs ? "pairs" : "texts";
        if (j.contains(pairs ? "texts" : "pairs"))
            return refuse(res, 400, "task '" + task + "' takes '" + field + "', not '" + (pairs ? "texts" : "pairs") + "'",
                          pairs ? "texts" : "pairs");
        if (!j.contains(field) || !j[field].is_array() || j[field].empty())
            return refuse(res, 400, std::string("'") + field + "' must be a non-empty list", field);
        const auto& list = j[field];
        if (list.size() > options_.max_inputs)
            return refuse(res, 413, std::to_string(list.size()) + " inputs, more than the limit of " + std::to_string(options_.max_inputs), field);
        std::vector<text_input> inputs;
        inputs.reserve(list.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
            const std::string at = std::string(field) + "[" + std::to_string(i) + "]";
            const auto& x = list[i];
            if (!pairs) {
                if (!x.is_string()) return refuse(res, 400, at + " must be a string", at);
                inputs.push_back({x.get<std::string>()});
            } else {
                if (!x.is_array() || x.size() != 2 || !x[0].is_string() || !x[1].is_string())
                    return refuse(res, 400, at + " must be a list of two strings", at);
                inputs.push_back({x[0].get<std::string>(), x[1].get<std::string>()});
            }
        }
        std::vector<prediction> y;
        try {
            y = batcher_.submit(task, std::move(inputs)).get();
        } catch (const std::exception& e) {
            return refuse(res, 500, e.what(), "");
        }
        nlohmann::json out = nlohmann::json::array();
        const bool regression = predictor_.card().tasks[tid].is_regression();
        for (const auto& p : y) {
            if (regression)
                out.push_back({{"value", p.value}});
            else
                out.push_back({{"label", p.label}, {"label_name", p.label_name}, {"probabilities", p.probabilities}});
        }
        reply(res, 200, {{"task", task}, {"predictions", out}});
    }

    const Predictor& predictor_;
    options options_;
    request_batcher<Predictor> batcher_;
    httplib::Server server_;
    int port_ = -1;
};

}  // namespace hyperadapt
