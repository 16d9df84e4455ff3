#pragma once
// Told, during a backward pass, which gradients are final: the hook that lets a data-parallel trainer start
// all-reducing the top layers' gradients while the lower layers are still running backward
// (distributed/overlapped_allreduce.hpp), as PyTorch DDP does with its autograd hooks.
//
// A forward run with run_mode::reporting_gradients(listener) arms it; the backward of that pass reports. Today
// layer_stack (nn/compose.hpp) reports: after layer i of a stack has run its backward, every trainable
// parameter that layer i visits receives no further contribution in this pass (a layer's own parameters are
// read by that layer only; modules shared between layers -- task embeddings, hypernetworks, condition maps --
// live outside the stack and are never reported). Parameters never reported are final when backward returns.
// The contract is tested on every model (tests/distributed/test_gradient_allreduce.cpp): each reported
// gradient holds, when reported, the bits it holds at the end of the pass.
#include <cstddef>

namespace hyperadapt {

class gradient_listener {
public:
    /// `bytes` bytes of gradient at `data` (one trainable parameter's gradient tensor, in the backend's memory)
    /// take no further contribution in this backward pass.
    virtual void gradient_ready(const void* data, std::size_t bytes) = 0;
    /// A layer finished its backward (after its gradients were reported): a point at which work started on
    /// them can make progress. Does nothing unless overridden.
    virtual void layer_finished() {}

protected:
    gradient_listener() = default;
    gradient_listener(const gradient_listener&) = default;
    gradient_listener& operator=(const gradient_listener&) = default;
    ~gradient_listener() = default;  // not deleted through this type: it is held by pointer only while a pass runs
};

}  // namespace hyperadapt
