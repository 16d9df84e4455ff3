#pragma once
// What the multi-task examples share: comma lists on the command line and the --sampler dispatch (one
// place that maps sampler names to the library's samplers, with CA-MTL's MT-Uncertainty score borrowing).
#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/samplers/round_robin.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/samplers/temperature.hpp"

namespace hyperadapt::examples {

inline std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

/// The head of one task. With `scale_targets`, a regression head learns targets divided by their largest
/// magnitude in the training data (STS-B: 5), so its MSE is on the scale of the classification losses.
inline task_head_spec head_for(const encoded_task& t, bool scale_targets) {
    task_head_spec h{t.info.name, t.num_labels()};
    if (scale_targets && t.is_regression()) {
        double m = 0;
        for (const float v : t.scores) m = std::max(m, static_cast<double>(std::abs(v)));
        if (m > 0) h.target_scale = m;
    }
    return h;
}

inline bool known_sampler(const std::string& name) {
    return name == "mtu" || name == "proportional" || name == "temperature" || name == "round-robin";
}

/// Trains `model` with the sampler named `sampler` (mtu | proportional | temperature | round-robin), drawing
/// `batch` rows per step, seeded from `seed`. Throws config_error for an unknown name.
template <class Model, class B>
training_result train_with_sampler(Model& model, B& backend, const std::string& sampler, std::size_t batch,
                                   std::uint64_t seed, const std::vector<encoded_task>& train,
                                   const std::vector<encoded_task>& dev, const trainer_options& o) {
    std::vector<std::size_t> sizes;
    for (const auto& t : train) sizes.push_back(t.size());
    const rng_stream rng(seed * 7919 + 17);
    if (sampler == "mtu") {
        std::vector<mt_uncertainty_task> tasks;
        for (const auto& t : train) tasks.push_back({t.info.name, t.size(), t.num_labels(), {}});
        apply_camtl_borrowing(tasks);  // STS-B takes MRPC's scores, as the authors' code does
        // Any other regression task would score 0 and never be picked: let it borrow from the first
        // classification task instead (a documented departure from the reference, which has only STS-B).
        for (auto& t : tasks)
            if (t.num_classes == 1 && t.borrow_scores_from.empty())
                for (const auto& d : tasks)
                    if (d.num_classes > 1) {
                        t.borrow_scores_from = d.name;
                        break;
                    }
        mt_uncertainty_sampler smp(tasks, batch, rng);
        return train_multitask(model, smp, backend, train, dev, o);
    }
    if (sampler == "proportional") {
        size_proportional_sampler smp(sizes, batch, rng);
        return train_multitask(model, smp, backend, train, dev, o);
    }
    if (sampler == "temperature") {
        temperature_sampler smp(sizes, batch, rng);
        return train_multitask(model, smp, backend, train, dev, o);
    }
    if (sampler == "round-robin") {
        round_robin_sampler smp(sizes, batch, rng);
        return train_multitask(model, smp, backend, train, dev, o);
    }
    throw config_error("unknown sampler '" + sampler + "' (mtu, proportional, temperature or round-robin)");
}

}  // namespace hyperadapt::examples
