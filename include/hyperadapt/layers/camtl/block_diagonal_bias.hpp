#pragma once
// CA-MTL's conditional block-diagonal attention bias (CBDA, spec §1.4; the reference's `CBDA` module and the
// `random_weight_matrix` of `MyBertSelfAttention9/10`).
//
//   [gamma; beta] = W_a z' + b                     z' (batch, d) -> (batch, 2s)
//   A'(z)         = (1 + gamma) * A + beta          A (L, s), broadcast down the rows -> (batch, L, s)
//   M(z)          = blockdiag(row chunks of A')     cropped to (batch, L, L)
//
// with N = d / L blocks of s = ceil(L / N) rows (torch.chunk's chunk size), so ceil(L / s) chunks that can be
// fewer than N, the last one cropped. Row r of M is nonzero only in the columns of r's own block:
//   M[b, r, k s + c] = A'[b, r, c]   for k = r / s, 0 <= c < s, k s + c < L.
// A is zero-initialised (so at start M is beta repeated down each block), the projection gets BERT's init.
//
// How it runs on the backend primitives (there is no element-wise product primitive): A' is built in a
// transposed layout A'T (batch, s, L) by two strided-batched GEMMs over the s columns of A, each an outer
// product with k = 1: A'T[:, c, :] = (1 + gamma[:, c]) A[:, c]^T + beta[:, c] 1^T. The "1 +" is an
// add_row_vector of (1..1, 0..0) onto [gamma; beta]. M is then one gather per example through a fixed index
// map (L*L entries, off-block entries read a zero slot after each example's A'T). Backward scatters dM back
// through the same map and contracts with GEMMs again; no L*s*s structured matrix is ever formed.
//
// Shorter batches: the geometry (and so A and the projection) is fixed by L, the longest padded length, but a
// batch may be shorter (batches padded to their longest example, train/multitask_trainer.hpp). For a batch of
// length n <= L the bias is M's top-left n x n corner: padding positions are masked as keys and feed nothing
// back, so the real positions see exactly what they would see padded to L (tests/layers/camtl: "cropped").
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// The sizes CBDA derives from the padded sequence length L and the hidden size d.
struct cbda_geometry {
    std::size_t seq_len = 0;     ///< L
    std::size_t hidden = 0;      ///< d
    std::size_t blocks = 0;      ///< N = d / L, the reference's num_blocks
    std::size_t block_size = 0;  ///< s = ceil(L / N): rows per chunk and columns of A
    std::size_t chunks = 0;      ///< ceil(L / s) blocks actually on the diagonal (can be fewer than N)
    std::size_t last_block = 0;  ///< rows (and, after cropping, columns) of the last block

    /// d % L == 0 with both positive: what the geometry needs (it implies N >= 1 and s >= 1).
    static constexpr bool valid(std::size_t seq_len, std::size_t hidden) noexcept {
        return seq_len > 0 && hidden > 0 && hidden % seq_len == 0;
    }
    /// Requires valid(seq_len, hidden).
    static constexpr cbda_geometry make(std::size_t seq_len, std::size_t hidden) noexcept {
        cbda_geometry g;
        g.seq_len = seq_len;
        g.hidden = hidden;
        g.blocks = hidden / seq_len;
        g.block_size = (seq_len + g.blocks - 1) / g.blocks;
        g.chunks = (seq_len + g.block_size - 1) / g.block_size;
        g.last_block = seq_len - (g.chunks - 1) * g.block_size;
        return g;
    }
};

// The reference's own configurations: base (L=128, d=768), large (L=128, d=1024), and the case where torch.chunk
// returns fewer than N chunks.
static_assert(cbda_geometry::make(128, 768).blocks == 6 && cbda_geometry::make(128, 768).block_size == 22 &&
              cbda_geometry::make(128, 768).chunks == 6 && cbda_geometry::make(128, 768).last_block == 18);
static_assert(cbda_geometry::make(128, 1024).blocks == 8 && cbda_geometry::make(128, 1024).block_size == 16);
static_assert(cbda_geometry::make(64, 768).chunks == 11 && cbda_geometry::make(64, 768).last_block == 4);
static_assert(cbda_geometry::make(8, 48).chunks == 4);

namespace detail {
/// The nearest valid padded lengths around `seq_len` for hidden size `hidden` (divisors of hidden).
inline std::string cbda_fix_hint(std::size_t seq_len, std::size_t hidden) {
    if (hidden == 0) return "give the layer a positive hidden size";
    std::size_t below = 0, above = 0;
    for (std::size_t l = 1; l <= hidden; ++l) {
        if (hidden % l) continue;
        if (l < seq_len) below = l;
        if (l > seq_len && above == 0) above = l;
    }
    std::string s = "pad to a max_seq_length that divides " + std::to_string(hidden);
    if (below && above)
        s += " (the nearest are " + std::to_string(below) + " and " + std::to_string(above) + ")";
    else if (below)
        s += " (the largest is " + std::to_string(below) + ")";
    return s + ", or use a hidden size that is a multiple of " + std::to_string(seq_len);
}
}  // namespace detail

/// CBDA: task condition z' (batch, d) -> additive attention-score bias M(z) (batch, L, L), shared by all heads.
///
/// `SeqLen` and `Hidden` may be fixed at compile time (both static: the geometry is checked by a static_assert);
/// std::dynamic_extent (the default) checks them at run time with a config_error.
///
/// `owner` is the module path of the self-attention that owns the bias ("encoder.layer.3.attention.self"), so
/// the parameters get the reference's names:
///   "<owner>.random_weight_matrix"                         A (L, s), zero-initialised
///   "<owner>.cond_block_diag_attn.gb_weights.{weight,bias}" W_a (2s, d), b (2s)
/// Unary layer contract: forward(z') -> M, backward(dM) -> dz' (adding into A's and the projection's grads).
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
class block_diagonal_bias {
    static constexpr bool static_geometry = SeqLen != std::dynamic_extent && Hidden != std::dynamic_extent;
    static_assert(!static_geometry || cbda_geometry::valid(SeqLen, Hidden),
                  "hyperadapt::block_diagonal_bias: Hidden must be a positive multiple of SeqLen (CBDA splits "
                  "the attention bias into N = Hidden / SeqLen blocks); choose a SeqLen (max_seq_length) that "
                  "divides Hidden");

public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename linear<B, T>::context projection;
        tensor<B, T> film;                  // (batch, 2s): [1 + gamma; beta]
        std::size_t length = 0;             // n: the batch's length, <= L
        tensor<B, std::int32_t> short_map;  // (n, n): the map's top-left corner when n < L (cached by length)
    };

    /// Sizes from the template parameters (both static).
    explicit block_diagonal_bias(B& backend, std::string owner = "attention.self")
        requires static_geometry
        : block_diagonal_bias(backend, SeqLen, Hidden, std::move(owner)) {}

    block_diagonal_bias(B& backend, std::size_t seq_len, std::size_t hidden, std::string owner = "attention.self")
        : backend_(&backend),
          owner_(std::move(owner)),
          name_(join_name(owner_, "cond_block_diag_attn")),
          geo_(checked_geometry(name_, seq_len, hidden)),
          projection_(backend, hidden, 2 * geo_.block_size, join_name(name_, "gb_weights")),
          matrix_(backend, {seq_len, geo_.block_size}),
          ones_(tensor<B, T>::filled(backend, {seq_len}, T(1))) {
        matrix_.value.zero();
        const std::size_t l = geo_.seq_len, s = geo_.block_size, zero_slot = s * l;
        host_map_.assign(l * l, static_cast<std::int32_t>(zero_slot));
        for (std::size_t r = 0; r < l; ++r) {
            const std::size_t first = (r / s) * s;
            for (std::size_t c = 0; c < s && first + c < l; ++c)
                host_map_[r * l + first + c] = static_cast<std::int32_t>(c * l + r);  // A'T[c, r]
        }
        map_ = tensor<B, std::int32_t>::from_host(backend, {l, l}, host_map_);
        std::vector<T> one_zero(2 * s, T(0));
        std::fill_n(one_zero.begin(), s, T(1));
        one_zero_ = tensor<B, T>::from_host(backend, {2 * s}, one_zero);
    }

    /// BERT's init for the projection (N(0, stddev), zero bias); A stays zero as in the reference.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        projection_.initialize(rng, stddev);
        matrix_.value.zero();
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const cbda_geometry& geometry() const noexcept { return geo_; }
    [[nodiscard]] std::size_t seq_len() const noexcept { return geo_.seq_len; }
    [[nodiscard]] std::size_t hidden() const noexcept { return geo_.hidden; }
    /// A (L, s): the reference's random_weight_matrix.
    parameter<B, T>& matrix() noexcept { return matrix_; }
    /// The FiLM projection d -> 2s (the reference's cond_block_diag_attn.gb_weights).
    linear<B, T>& projection() noexcept { return projection_; }

    /// z: (batch, d) task condition z'. Returns M (batch, L, L).
    tensor<B, T> forward(const tensor<B, T>& z, context& ctx, run_mode mode = {}) const {
        return forward(z, geo_.seq_len, ctx, mode);
    }

    /// The bias for a batch of length n <= L: M's top-left corner (batch, n, n).
    tensor<B, T> forward(const tensor<B, T>& z, std::size_t n, context& ctx, run_mode mode = {}) const {
        if (z.shape().rank() != 2 || z.shape()[1] != geo_.hidden)
            throw shape_error(name_ + ": task condition has shape " + z.shape().str() + ", expected (batch, " +
                              std::to_string(geo_.hidden) + ")");
        if (n == 0 || n > geo_.seq_len)
            throw shape_error(name_ + ": a batch of length " + std::to_string(n) + "; this bias was built for " +
                              "lengths 1.." + std::to_string(geo_.seq_len) + " (L, the padded length)");
        const std::size_t nb = z.shape()[0], l = geo_.seq_len, s = geo_.block_size, w = s * l + 1;
        ctx.film = projection_.forward(z, ctx.projection, mode);  // fresh tensor: safe to modify
        backend_->add_row_vector(nb, 2 * s, one_zero_.data(), ctx.film.data());

        // A'T (batch, s*L + 1): per example the s rows of A'^T, then the zero slot read by off-block entries.
        tensor<B, T> film_t = tensor<B, T>::zeros(*backend_, {nb, w});
        // A'T[:, c, :] = (1 + gamma[:, c]) A[:, c]^T   (outer product per column c of A)
        backend_->gemm_strided_batched(transpose::no, transpose::yes, nb, l, 1, T(1), ctx.film.data(), 2 * s, 1,
                                       matrix_.value.data(), s, 1, T(0), film_t.data(), w, sd(l), s);
        // A'T[:, c, :] += beta[:, c] 1^T
        backend_->gemm_strided_batched(transpose::no, transpose::yes, nb, l, 1, T(1), ctx.film.data() + s, 2 * s, 1,
                                       ones_.data(), 1, 0, T(1), film_t.data(), w, sd(l), s);

        ctx.length = n;
        const std::int32_t* map = map_.data();
        if (n < l) {
            ctx.short_map = short_map(n);
            map = ctx.short_map.data();
        }
        tensor<B, T> m(*backend_, {nb, n, n});
        for (std::size_t b = 0; b < nb; ++b)
            backend_->gather_rows(n * n, 1, film_t.data() + b * w, map, m.data() + b * n * n);
        return m;
    }

    tensor<B, T> apply(const tensor<B, T>& z) const {
        context ctx;
        return forward(z, ctx);
    }

    /// dm: (batch, n, n), n the forward's length. Returns dz' (batch, d); adds into A's and the projection's
    /// gradients.
    tensor<B, T> backward(const tensor<B, T>& dm, context& ctx) {
        if (ctx.film.empty()) throw error(name_ + ": backward called without a training forward");
        const std::size_t nb = ctx.film.shape()[0], l = geo_.seq_len, s = geo_.block_size, w = s * l + 1;
        const std::size_t n = ctx.length;
        expect_shape(name_.c_str(), "bias gradient", shape{nb, n, n}, dm.shape());
        const std::int32_t* map = n < l ? ctx.short_map.data() : map_.data();

        // dA'T: every entry of dM lands on the A' element it came from; off-block entries on the zero slot.
        tensor<B, T> dfilm_t = tensor<B, T>::zeros(*backend_, {nb, w});
        for (std::size_t b = 0; b < nb; ++b)
            backend_->scatter_add_rows(n * n, 1, dm.data() + b * n * n, map, dfilm_t.data() + b * w);

        tensor<B, T> dgb(*backend_, {nb, 2 * s});
        // dgamma[:, c] = dA'T[:, c, :] A[:, c];  dbeta[:, c] = dA'T[:, c, :] 1
        backend_->gemm_strided_batched(transpose::no, transpose::no, nb, 1, l, T(1), dfilm_t.data(), w, sd(l),
                                       matrix_.value.data(), s, 1, T(0), dgb.data(), 2 * s, 1, s);
        backend_->gemm_strided_batched(transpose::no, transpose::no, nb, 1, l, T(1), dfilm_t.data(), w, sd(l),
                                       ones_.data(), 1, 0, T(0), dgb.data() + s, 2 * s, 1, s);
        if (matrix_.trainable())  // dA[:, c] += dA'T[:, c, :]^T (1 + gamma[:, c])
            backend_->gemm_strided_batched(transpose::yes, transpose::no, l, 1, nb, T(1), dfilm_t.data(), w, sd(l),
                                           ctx.film.data(), 2 * s, 1, T(1), matrix_.grad.data(), s, 1, s);
        return projection_.backward(dgb, ctx.projection);
    }

    /// The reference's order: random_weight_matrix (owned by the attention), then the projection.
    template <class F>
    void visit_parameters(F&& f) {
        f(join_name(owner_, "random_weight_matrix"), matrix_);
        projection_.visit_parameters(f);
    }

private:
    static std::ptrdiff_t sd(std::size_t v) { return static_cast<std::ptrdiff_t>(v); }

    static cbda_geometry checked_geometry(const std::string& name, std::size_t seq_len, std::size_t hidden) {
        if constexpr (SeqLen != std::dynamic_extent)
            if (seq_len != SeqLen)
                throw config_error(name + ": constructed with sequence length " + std::to_string(seq_len) +
                                   " but instantiated with SeqLen = " + std::to_string(SeqLen));
        if constexpr (Hidden != std::dynamic_extent)
            if (hidden != Hidden)
                throw config_error(name + ": constructed with hidden size " + std::to_string(hidden) +
                                   " but instantiated with Hidden = " + std::to_string(Hidden));
        if (!cbda_geometry::valid(seq_len, hidden))
            throw config_error(name + ": conditional block-diagonal attention needs the hidden size d = " +
                               std::to_string(hidden) + " to be a positive multiple of the sequence length L = " +
                               std::to_string(seq_len) + " (the bias is split into N = d / L blocks); " +
                               detail::cbda_fix_hint(seq_len, hidden));
        return cbda_geometry::make(seq_len, hidden);
    }

    /// The (n, n) top-left corner of map_ for a batch of length n < L: uploaded the first time a length is seen,
    /// then kept, so that later steps upload nothing (a length-grouped run sees a few lengths; all of them cost at
    /// most L^3 / 3 ids). Forward is const and may run on several threads: the cache has its lock.
    tensor<B, std::int32_t> short_map(std::size_t n) const {
        const std::lock_guard<std::mutex> hold(short_maps_->lock);
        auto& cached = short_maps_->by_length[n];
        if (cached.empty()) {
            const std::size_t l = geo_.seq_len;
            std::vector<std::int32_t> corner(n * n);
            for (std::size_t r = 0; r < n; ++r)
                std::copy_n(host_map_.begin() + static_cast<std::ptrdiff_t>(r * l), n,
                            corner.begin() + static_cast<std::ptrdiff_t>(r * n));
            cached = tensor<B, std::int32_t>::from_host(*backend_, {n, n}, corner);
        }
        return cached;
    }
    struct short_map_cache {
        std::mutex lock;
        std::map<std::size_t, tensor<B, std::int32_t>> by_length;
    };

    B* backend_;
    std::string owner_;
    std::string name_;
    cbda_geometry geo_;
    linear<B, T> projection_;
    parameter<B, T> matrix_;
    tensor<B, T> ones_;      // (L): the 1 of the beta outer product
    tensor<B, T> one_zero_;  // (2s): (1..1, 0..0), turns [gamma; beta] into [1 + gamma; beta]
    tensor<B, std::int32_t> map_;  // (L, L): index into one example's A'T (s*L + 1 entries)
    std::vector<std::int32_t> host_map_;  // map_ on the host, to cut the corner of a shorter batch
    std::shared_ptr<short_map_cache> short_maps_ = std::make_shared<short_map_cache>();  // shared by copies: same maps
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(unary_layer<block_diagonal_bias<archetype_backend, float>>,
              "hyperadapt::block_diagonal_bias must be a unary layer (nn/layer.hpp)");
static_assert(initializable<block_diagonal_bias<archetype_backend, float>>,
              "hyperadapt::block_diagonal_bias must be initializable: initialize(rng)");
}  // namespace hyperadapt
