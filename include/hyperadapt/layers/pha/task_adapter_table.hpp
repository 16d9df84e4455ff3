#pragma once
// Plain per-task adapters as a weight source: one adapter per task, stored as four tables (tasks rows each)
// in task_adapter's generated layout, so a mixed-task batch gathers each row's task weights and runs the
// same batched adapter as PHA's generated weights. It is the "one adapter per task" baseline of the PHA
// and HyperFormer papers, with the placement and the arithmetic of PHA's adapters; only the source of the
// weights differs.
//
// Parameters: "<name>.down_weight" (tasks, d*r) viewed (d, r) per task, "<name>.down_bias" (tasks, r),
// "<name>.up_weight" (tasks, r*d) viewed (r, d), "<name>.up_bias" (tasks, d). Init as PHA's manual adapters
// (Xavier-uniform with gain 1e-4 over fan_in + fan_out = d + r, biases 0): every task starts near identity.
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/layers/pha/task_adapter.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class task_adapter_table {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    struct context {
        typename embedding<B, T>::context down_w, down_b, up_w, up_b;
    };

    task_adapter_table(B& backend, std::size_t tasks, std::size_t features, std::size_t bottleneck,
                       std::string name = "task_adapters", double init_gain = 1e-4)
        : backend_(&backend),
          name_(std::move(name)),
          d_(features),
          r_(bottleneck),
          gain_(init_gain),
          down_w_(backend, tasks, features * bottleneck, join_name(name_, "down_weight")),
          down_b_(backend, tasks, bottleneck, join_name(name_, "down_bias")),
          up_w_(backend, tasks, bottleneck * features, join_name(name_, "up_weight")),
          up_b_(backend, tasks, features, join_name(name_, "up_bias")) {}

    template <class Rng>
    void initialize(Rng& rng) {
        const T bound = static_cast<T>(gain_ * std::sqrt(6.0 / static_cast<double>(d_ + r_)));
        for (auto* t : {&down_w_, &up_w_}) {
            auto& w = t->weight().value;
            backend_->fill_uniform(w.size(), rng.seed(), rng.take(w.size()), -bound, bound, w.data());
        }
        down_b_.weight().value.zero();
        up_b_.weight().value.zero();
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// The weights of each row's task: task_ids (batch). `host_task_ids`: their host copy where the caller has it
    /// (layer_condition::tasks), read by the tables' range checks instead of four copies back.
    adapter_weights<B, T> forward(const ids_type& task_ids, context& ctx, run_mode mode = {},
                                  std::span<const std::int32_t> host_task_ids = {}) const {
        std::vector<std::int32_t> copied;
        const std::span<const std::int32_t> host = task_ids.host_values(host_task_ids, copied, name_);
        adapter_weights<B, T> w;
        w.down_weight = down_w_.forward(task_ids, ctx.down_w, mode, host);
        w.down_bias = down_b_.forward(task_ids, ctx.down_b, mode, host);
        w.up_weight = up_w_.forward(task_ids, ctx.up_w, mode, host);
        w.up_bias = up_b_.forward(task_ids, ctx.up_b, mode, host);
        return w;
    }

    void backward(const adapter_weights<B, T>& dw, context& ctx) {
        down_w_.backward(dw.down_weight, ctx.down_w);
        down_b_.backward(dw.down_bias, ctx.down_b);
        up_w_.backward(dw.up_weight, ctx.up_w);
        up_b_.backward(dw.up_bias, ctx.up_b);
    }

    template <class F>
    void visit_parameters(F&& f) {
        down_w_.visit_parameters([&](const std::string&, parameter<B, T>& p) { f(join_name(name_, "down_weight"), p); });
        down_b_.visit_parameters([&](const std::string&, parameter<B, T>& p) { f(join_name(name_, "down_bias"), p); });
        up_w_.visit_parameters([&](const std::string&, parameter<B, T>& p) { f(join_name(name_, "up_weight"), p); });
        up_b_.visit_parameters([&](const std::string&, parameter<B, T>& p) { f(join_name(name_, "up_bias"), p); });
    }

private:
    B* backend_;
    std::string name_;
    std::size_t d_, r_;
    double gain_;
    embedding<B, T> down_w_, down_b_, up_w_, up_b_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// task_adapter_table: its input is task ids and it returns adapter weights: only parameterized + initializable.
static_assert(parameterized<task_adapter_table<archetype_backend, float>>,
              "hyperadapt::task_adapter_table must be parameterized (nn/layer.hpp)");
static_assert(initializable<task_adapter_table<archetype_backend, float>>,
              "hyperadapt::task_adapter_table must be initializable: initialize(rng)");
}  // namespace hyperadapt
