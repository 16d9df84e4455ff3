#pragma once
// A WordPiece tokenizer that produces the ids of Hugging Face's slow BertTokenizer (transformers 4.40.2):
// basic_tokenizer.hpp's pre-tokenization, then greedy longest-match-first WordPiece with "##" continuation
// pieces, then [CLS] a [SEP] (b [SEP]) with transformers' truncation and padding rules. Batches come out as
// row-major (batch, seq) int32 ids / token types and uint8 attention masks, the layout of
// tensor<B, std::int32_t> and attention_mask<B>. Link hyperadapt::text (utf8proc).
//
//   auto tok = hyperadapt::text::bert_tokenizer::from_file("vocab.txt");
//   auto batch = tok.encode_pair_batch(pairs, {.max_length = 128,
//                                              .truncation = truncation_strategy::longest_first,
//                                              .padding = padding_strategy::max_length});
//   auto ids = tensor<cpu, std::int32_t>::from_host(b, batch.shape(), batch.input_ids);
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/text/basic_tokenizer.hpp"
#include "hyperadapt/text/vocab.hpp"

namespace hyperadapt::text {

struct bert_tokenizer_options {
    bool do_lower_case = true;
    /// nullopt follows do_lower_case, as BERT does.
    std::optional<bool> strip_accents = std::nullopt;
    bool tokenize_chinese_chars = true;
    /// Words longer than this many code points become [UNK] without being split.
    std::size_t max_input_chars_per_word = 100;
};

/// transformers' TruncationStrategy (truncation_side "right").
enum class truncation_strategy { none, longest_first, only_first, only_second };
/// transformers' PaddingStrategy (padding_side "right", pad token type 0).
enum class padding_strategy { none, longest, max_length };

struct encode_options {
    /// Upper bound on the encoded length including [CLS] and [SEP]; 0 means none. Required by truncation
    /// and by padding_strategy::max_length.
    std::size_t max_length = 0;
    truncation_strategy truncation = truncation_strategy::none;
    padding_strategy padding = padding_strategy::none;
};

/// One encoded sequence or pair: [CLS] a [SEP] (b [SEP]) [PAD]...
struct encoding {
    std::vector<std::int32_t> input_ids;
    std::vector<std::int32_t> token_type_ids;   // 0 for [CLS] a [SEP], 1 for b [SEP], 0 for padding
    std::vector<std::uint8_t> attention_mask;   // 1 for tokens, 0 for padding
};

/// A padded batch, row-major (batch, seq_len).
struct batch_encoding {
    std::size_t batch = 0;
    std::size_t seq_len = 0;
    std::vector<std::int32_t> input_ids;
    std::vector<std::int32_t> token_type_ids;
    std::vector<std::uint8_t> attention_mask;
    std::vector<std::size_t> lengths;   // tokens per row before padding
    [[nodiscard]] hyperadapt::shape shape() const { return {batch, seq_len}; }
};

class bert_tokenizer {
public:
    explicit bert_tokenizer(text::vocab v, bert_tokenizer_options options = {})
        : vocab_(std::move(v)),
          basic_({options.do_lower_case, options.strip_accents, options.tokenize_chinese_chars},
                 {vocab_.specials().unk, vocab_.specials().sep, vocab_.specials().pad, vocab_.specials().cls,
                  vocab_.specials().mask}),
          max_chars_(options.max_input_chars_per_word) {
        if (max_chars_ == 0) throw config_error("bert_tokenizer: max_input_chars_per_word must be positive");
        for (int c = 0; c < 128; ++c) {
            const char ch = static_cast<char>(c);
            ascii_ids_[c] = vocab_.find(std::string_view(&ch, 1)).value_or(vocab_.unk_id());
        }
    }

    /// Loads vocab.txt (see vocab::from_file for its errors).
    static bert_tokenizer from_file(const std::filesystem::path& vocab_file, bert_tokenizer_options options = {},
                                    const special_tokens& specials = {}) {
        return bert_tokenizer(vocab::from_file(vocab_file, specials), options);
    }

    [[nodiscard]] const text::vocab& vocabulary() const noexcept { return vocab_; }
    [[nodiscard]] const basic_tokenizer& pre_tokenizer() const noexcept { return basic_; }

    /// Appends the ids of `text` without special tokens to `out`: what transformers'
    /// tokenizer.encode(text, add_special_tokens=False) returns.
    void tokenize(std::string_view text, std::vector<std::int32_t>& out, tokenizer_workspace& ws) const {
        basic_.run(
            text,
            [&](std::string_view word, bool special) {
                if (special) out.push_back(vocab_.find(word).value_or(vocab_.unk_id()));
                else wordpiece(word, out, ws);
            },
            ws);
    }

    [[nodiscard]] std::vector<std::int32_t> tokenize(std::string_view text) const {
        std::vector<std::int32_t> out;
        tokenizer_workspace ws;
        tokenize(text, out, ws);
        return out;
    }

    /// The tokens as strings (transformers' tokenizer.tokenize(text)).
    [[nodiscard]] std::vector<std::string> tokenize_to_strings(std::string_view text) const {
        std::vector<std::string> out;
        for (const auto id : tokenize(text)) out.emplace_back(vocab_.token(id));
        return out;
    }

    /// [CLS] text [SEP], truncated and padded as transformers' tokenizer(text, ...) does.
    [[nodiscard]] encoding encode(std::string_view text, const encode_options& options = {}) const {
        tokenizer_workspace ws;
        std::vector<std::int32_t> a;
        tokenize(text, a, ws);
        return assemble(a, nullptr, options);
    }

    /// [CLS] a [SEP] b [SEP], truncated and padded as transformers' tokenizer(a, b, ...) does.
    [[nodiscard]] encoding encode_pair(std::string_view a, std::string_view b, const encode_options& options = {}) const {
        tokenizer_workspace ws;
        std::vector<std::int32_t> ia, ib;
        tokenize(a, ia, ws);
        tokenize(b, ib, ws);
        return assemble(ia, &ib, options);
    }

    /// A padded batch of single sequences: padding_strategy::max_length pads to options.max_length, anything
    /// else to the longest row (a batch is rectangular). A row longer than max_length without truncation
    /// throws config_error.
    [[nodiscard]] batch_encoding encode_batch(std::span<const std::string_view> texts,
                                              const encode_options& options = {}) const {
        return batch_of(texts.size(), false, options, [&](std::size_t i, std::vector<std::int32_t>& a,
                                                          std::vector<std::int32_t>&, tokenizer_workspace& ws) {
            tokenize(texts[i], a, ws);
        });
    }

    /// A padded batch of pairs, as encode_batch.
    [[nodiscard]] batch_encoding encode_pair_batch(std::span<const std::pair<std::string_view, std::string_view>> pairs,
                                                   const encode_options& options = {}) const {
        return batch_of(pairs.size(), true, options, [&](std::size_t i, std::vector<std::int32_t>& a,
                                                         std::vector<std::int32_t>& b, tokenizer_workspace& ws) {
            tokenize(pairs[i].first, a, ws);
            tokenize(pairs[i].second, b, ws);
        });
    }

private:
    // Greedy longest-match-first over code-point boundaries (transformers' WordpieceTokenizer.tokenize).
    // The FNV-1a hashes of every prefix starting at `start` come from one pass over the bytes, so each
    // candidate costs one table probe rather than a rehash of its bytes.
    void wordpiece(std::string_view w, std::vector<std::int32_t>& out, tokenizer_workspace& ws) const {
        if (w.size() == 1 && static_cast<unsigned char>(w[0]) < 0x80) {
            out.push_back(ascii_ids_[static_cast<unsigned char>(w[0])]);
            return;
        }
        // Most words are in the vocabulary whole: one hash, one probe.
        std::uint64_t h = detail::fnv_basis;
        std::size_t chars = 0;
        for (const char c : w) {
            h = (h ^ static_cast<unsigned char>(c)) * detail::fnv_prime;
            chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        }
        if (chars > max_chars_) {
            out.push_back(vocab_.unk_id());
            return;
        }
        if (const std::int32_t id = vocab_.find_hashed(h, w, false); id >= 0) {
            out.push_back(id);
            return;
        }
        if (ws.hashes.size() < chars) {
            ws.hashes.resize(chars);
            ws.ends.resize(chars);
        }
        const std::size_t mark = out.size();
        std::size_t start = 0;
        while (start < w.size()) {
            h = start == 0 ? detail::fnv_basis : vocab::continuation_seed();
            std::size_t count = 0;
            for (std::size_t j = start; j < w.size();) {
                h = (h ^ static_cast<unsigned char>(w[j])) * detail::fnv_prime;
                ++j;
                if (j == w.size() || (static_cast<unsigned char>(w[j]) & 0xC0) != 0x80) {
                    ws.hashes[count] = h;
                    ws.ends[count] = static_cast<std::uint32_t>(j);
                    ++count;
                }
            }
            if (start == 0) --count;  // the whole word was tried above
            std::int32_t id = -1;
            std::size_t end = start;
            for (std::size_t k = count; k-- > 0;) {
                id = vocab_.find_hashed(ws.hashes[k], w.substr(start, ws.ends[k] - start), start != 0);
                if (id >= 0) {
                    end = ws.ends[k];
                    break;
                }
            }
            if (id < 0) {
                out.resize(mark);
                out.push_back(vocab_.unk_id());
                return;
            }
            out.push_back(id);
            start = end;
        }
    }

    static void check(const encode_options& o) {
        if ((o.truncation != truncation_strategy::none || o.padding == padding_strategy::max_length) && o.max_length == 0)
            throw config_error("bert_tokenizer: truncation and padding to max_length need encode_options::max_length");
    }

    // transformers' prepare_for_model before padding: truncate when the sequence with its special tokens
    // exceeds max_length.
    static void fit(std::vector<std::int32_t>& a, std::vector<std::int32_t>* b, const encode_options& o) {
        const std::size_t total = a.size() + (b ? b->size() + 3 : 2);
        if (o.truncation != truncation_strategy::none && total > o.max_length) truncate(a, b, total - o.max_length, o);
    }

    // transformers 4.40.2 truncate_sequences (truncation_side "right", no stride).
    static void truncate(std::vector<std::int32_t>& a, std::vector<std::int32_t>* b, std::size_t remove,
                         const encode_options& o) {
        const auto fail = [&](const char* which, std::size_t have) {
            throw config_error("bert_tokenizer: max_length " + std::to_string(o.max_length) + " needs " +
                               std::to_string(remove) + " tokens removed but the " + which + " sequence has " +
                               std::to_string(have));
        };
        const auto drop_back = [](std::vector<std::int32_t>& v, std::size_t k) { v.resize(v.size() - std::min(k, v.size())); };
        const bool only_first = o.truncation == truncation_strategy::only_first;
        if (only_first || (o.truncation == truncation_strategy::longest_first && b == nullptr)) {
            if (a.size() <= remove) fail("first", a.size());
            drop_back(a, remove);
        } else if (o.truncation == truncation_strategy::longest_first && b != nullptr) {
            // Remove from the longer sequence until both have the same length, then alternately, the
            // second sequence taking the odd token; ties count as "second is longer".
            if (o.max_length < 3)
                throw config_error("bert_tokenizer: max_length " + std::to_string(o.max_length) +
                                   " cannot hold the 3 special tokens of a pair");
            const std::size_t la = a.size(), lb = b->size();
            const std::size_t first = std::min(la > lb ? la - lb : lb - la, remove);
            const std::size_t second = remove - first;
            const std::size_t from_a = la > lb ? first + second / 2 : second / 2;
            const std::size_t from_b = la > lb ? second - second / 2 : first + second - second / 2;
            drop_back(a, from_a);
            drop_back(*b, from_b);
        } else if (o.truncation == truncation_strategy::only_second && b != nullptr) {
            if (b->size() <= remove) fail("second", b->size());
            drop_back(*b, remove);
        }
        // only_second on a single sequence truncates nothing, as in transformers.
    }

    // Writes [CLS] a [SEP] (b [SEP]) into ids / types / mask, which hold at least that many entries and are
    // already padded ([PAD], 0, 0) beyond it.
    void write_row(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>* b, std::int32_t* ids,
                   std::int32_t* types, std::uint8_t* mask) const {
        std::size_t k = 0;
        ids[k++] = vocab_.cls_id();
        for (const auto id : a) ids[k++] = id;
        ids[k++] = vocab_.sep_id();
        const std::size_t first = k;
        if (b) {
            for (const auto id : *b) ids[k++] = id;
            ids[k++] = vocab_.sep_id();
        }
        std::fill(types + first, types + k, 1);
        std::fill(mask, mask + k, std::uint8_t{1});
    }

    encoding assemble(std::vector<std::int32_t>& a, std::vector<std::int32_t>* b, const encode_options& o) const {
        check(o);
        fit(a, b, o);
        const std::size_t len = a.size() + (b ? b->size() + 3 : 2);
        const std::size_t padded = o.padding == padding_strategy::max_length ? std::max(len, o.max_length) : len;
        encoding e;
        e.input_ids.assign(padded, vocab_.pad_id());
        e.token_type_ids.assign(padded, 0);
        e.attention_mask.assign(padded, 0);
        write_row(a, b, e.input_ids.data(), e.token_type_ids.data(), e.attention_mask.data());
        return e;
    }

    // Tokenizes and truncates every row into one flat buffer first: the padded width is known only then.
    template <class TokenizeRow>
    batch_encoding batch_of(std::size_t rows, bool pair, const encode_options& o, TokenizeRow&& tokenize_row) const {
        check(o);
        tokenizer_workspace ws;
        std::vector<std::int32_t> a, b, flat;
        std::vector<std::size_t> split(2 * rows);  // per row: tokens of a, tokens of b
        std::size_t longest = 0;
        for (std::size_t i = 0; i < rows; ++i) {
            a.clear();
            b.clear();
            tokenize_row(i, a, b, ws);
            fit(a, pair ? &b : nullptr, o);
            split[2 * i] = a.size();
            split[2 * i + 1] = b.size();
            flat.insert(flat.end(), a.begin(), a.end());
            flat.insert(flat.end(), b.begin(), b.end());
            longest = std::max(longest, a.size() + (pair ? b.size() + 3 : 2));
        }
        batch_encoding out;
        out.batch = rows;
        out.seq_len = o.padding == padding_strategy::max_length ? o.max_length : longest;
        if (longest > out.seq_len)
            throw config_error("bert_tokenizer: a row has " + std::to_string(longest) + " tokens, more than max_length " +
                               std::to_string(out.seq_len) + "; enable truncation");
        out.input_ids.assign(rows * out.seq_len, vocab_.pad_id());
        out.token_type_ids.assign(rows * out.seq_len, 0);
        out.attention_mask.assign(rows * out.seq_len, 0);
        out.lengths.resize(rows);
        std::size_t at = 0;
        for (std::size_t i = 0; i < rows; ++i) {
            a.assign(flat.begin() + static_cast<std::ptrdiff_t>(at), flat.begin() + static_cast<std::ptrdiff_t>(at + split[2 * i]));
            at += split[2 * i];
            b.assign(flat.begin() + static_cast<std::ptrdiff_t>(at), flat.begin() + static_cast<std::ptrdiff_t>(at + split[2 * i + 1]));
            at += split[2 * i + 1];
            const std::size_t row = i * out.seq_len;
            write_row(a, pair ? &b : nullptr, out.input_ids.data() + row, out.token_type_ids.data() + row,
                      out.attention_mask.data() + row);
            out.lengths[i] = a.size() + (pair ? b.size() + 3 : 2);
        }
        return out;
    }

    text::vocab vocab_;
    basic_tokenizer basic_;
    std::size_t max_chars_;
    std::array<std::int32_t, 128> ascii_ids_{};
};

}  // namespace hyperadapt::text
