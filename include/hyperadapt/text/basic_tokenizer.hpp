#pragma once
// BERT's pre-tokenization, as Hugging Face's slow BertTokenizer (transformers 4.40) runs it before WordPiece:
//   PreTrainedTokenizer.tokenize: lower-case every character on its own (do_lower_case) except inside
//       special tokens, then split the special tokens out;
//   BasicTokenizer.tokenize: _clean_text (drop U+0000, U+FFFD and category C*, whitespace -> space), space
//       around CJK ideographs, NFC, str.split(), per word: lower + NFD + drop Mn (strip accents), split
//       punctuation into single-character words.
// The hot path handles pure-ASCII words byte by byte, without decoding or allocating; a word that holds any
// other byte (or a dropped control character, which can join two halves into a special token) takes the
// exact path through utf8proc. Nothing here allocates per word: buffers live in a caller's workspace.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/text/unicode.hpp"

namespace hyperadapt::text {

struct basic_tokenizer_options {
    bool do_lower_case = true;
    /// nullopt follows do_lower_case, as BERT does.
    std::optional<bool> strip_accents = std::nullopt;
    bool tokenize_chinese_chars = true;
};

/// Reusable buffers; one per thread. Tokenizers are const and share nothing else.
struct tokenizer_workspace {
    std::string chunk;                   // one whitespace-delimited word after cleaning and lowering
    std::string piece;                   // one word after punctuation splitting
    std::vector<utf8proc_int32_t> cps;   // utf8proc's normalization buffer
    std::vector<std::uint64_t> hashes;   // WordPiece: FNV-1a of each prefix
    std::vector<std::uint32_t> ends;     // WordPiece: byte offset of each prefix's end
};

class basic_tokenizer {
public:
    /// `never_split`: tokens split out of the text before anything else and passed on whole (BERT's special
    /// tokens). They are matched exactly, as transformers matches BERT's upper-case special tokens.
    explicit basic_tokenizer(basic_tokenizer_options options = {}, std::vector<std::string> never_split = {})
        : lower_(options.do_lower_case),
          strip_(options.strip_accents.value_or(options.do_lower_case)),
          chinese_(options.tokenize_chinese_chars),
          never_split_(std::move(never_split)) {
        for (int c = 0; c < 128; ++c) {
            const auto cp = static_cast<char32_t>(c);
            std::uint8_t k = 0;
            if (unicode::is_whitespace(cp)) k = space;
            else if (c == 0 || unicode::is_control(cp)) k = drop;
            else if (unicode::is_punctuation(cp)) k = punct;
            if (c >= 'A' && c <= 'Z') k |= upper;
            class_[c] = k;
            fold_[c] = static_cast<char>(lower_ && c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        for (int c = 128; c < 256; ++c) class_[c] = non_ascii;
        for (const auto& s : never_split_) {
            if (s.empty()) throw config_error("basic_tokenizer: a never-split token is empty");
            const auto first = static_cast<unsigned char>(s[0]);
            first_byte_[first] = true;
            only_first_byte_ = (only_first_byte_ == -1 || only_first_byte_ == first) ? first : -2;
            max_never_split_ = std::max(max_never_split_, s.size());
        }
    }

    [[nodiscard]] bool do_lower_case() const noexcept { return lower_; }
    [[nodiscard]] bool strip_accents() const noexcept { return strip_; }
    [[nodiscard]] const std::vector<std::string>& never_split() const noexcept { return never_split_; }

    /// Runs the pre-tokenizer, calling sink(word, never_split) for each word in order: `word` is UTF-8 and
    /// valid until the next call; never_split is true for a never-split token, which goes to the vocabulary
    /// whole. Throws io_error on invalid UTF-8.
    template <class Sink>
    void run(std::string_view text, Sink&& sink, tokenizer_workspace& ws) const {
        std::size_t pos = 0;
        while (pos < text.size()) {
            const auto [at, which] = find_never_split(text, pos);
            run_segment(text.substr(pos, at - pos), sink, ws);
            if (which < 0) break;
            const auto& special = never_split_[static_cast<std::size_t>(which)];
            sink(std::string_view(special), true);
            pos = at + special.size();
        }
    }

    /// The words, as strings (tests and debugging; run() is the allocation-free form).
    [[nodiscard]] std::vector<std::string> tokenize(std::string_view text) const {
        std::vector<std::string> out;
        tokenizer_workspace ws;
        run(text, [&](std::string_view w, bool) { out.emplace_back(w); }, ws);
        return out;
    }

private:
    enum : std::uint8_t { space = 1, drop = 2, punct = 4, upper = 8, non_ascii = 16 };

    // Leftmost occurrence of a never-split token at or after `from`, the longest where several start there
    // (transformers' Trie.split). Returns (text.size(), -1) when there is none.
    std::pair<std::size_t, int> find_never_split(std::string_view text, std::size_t from) const noexcept {
        if (never_split_.empty()) return {text.size(), -1};
        for (std::size_t i = from; i < text.size(); ++i) {
            if (only_first_byte_ >= 0) {  // BERT's "[": memchr skips ahead many bytes at a time
                const void* hit = std::memchr(text.data() + i, only_first_byte_, text.size() - i);
                if (!hit) break;
                i = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
            } else if (!first_byte_[static_cast<unsigned char>(text[i])]) {
                continue;
            }
            int best = -1;
            for (std::size_t k = 0; k < never_split_.size(); ++k) {
                const auto& s = never_split_[k];
                if (text.substr(i, s.size()) == s && (best < 0 || s.size() > never_split_[static_cast<std::size_t>(best)].size()))
                    best = static_cast<int>(k);
            }
            if (best >= 0) return {i, best};
        }
        return {text.size(), -1};
    }

    template <class Sink>
    void run_segment(std::string_view s, Sink& sink, tokenizer_workspace& ws) const {
        const std::size_t n = s.size();
        std::size_t i = 0;
        while (i < n) {
            const auto c = static_cast<unsigned char>(s[i]);
            if (c < 0x80 && (class_[c] & space)) {
                ++i;
                continue;
            }
            // A word: scan to its end, noting punctuation. Pure ASCII without control characters takes the
            // fast path; the word is not emitted before that is known, since one non-ASCII byte anywhere in
            // it changes how all of it is normalized.
            const std::size_t begin = i;
            std::uint8_t seen = 0;
            std::array<std::uint32_t, 32> puncts;
            std::size_t n_puncts = 0;
            while (i < n) {
                const std::uint8_t k = class_[static_cast<unsigned char>(s[i])];
                if (k & (space | non_ascii)) break;
                if ((k & punct) && n_puncts < puncts.size()) puncts[n_puncts++] = static_cast<std::uint32_t>(i - begin);
                seen |= k;
                ++i;
            }
            if (i < n && (class_[static_cast<unsigned char>(s[i])] & non_ascii)) seen |= drop;
            if (seen & drop) {
                i = exact_word(s, begin, sink, ws);
                continue;
            }
            const std::string_view w = s.substr(begin, i - begin);
            const bool has_upper = (seen & upper) != 0;
            if (n_puncts == puncts.size()) {  // too many to note: split by scanning again
                emit_ascii(w, has_upper, sink, ws);
                continue;
            }
            std::size_t start = 0;
            for (std::size_t p = 0; p < n_puncts; ++p) {
                const std::size_t at = puncts[p];
                if (at > start) emit_ascii_piece(w.substr(start, at - start), has_upper, sink, ws);
                sink(w.substr(at, 1), false);
                start = at + 1;
            }
            if (start < w.size()) emit_ascii_piece(w.substr(start), has_upper, sink, ws);
        }
    }

    // An ASCII word without control characters: split punctuation, lower-case letters.
    template <class Sink>
    void emit_ascii(std::string_view w, bool has_upper, Sink& sink, tokenizer_workspace& ws) const {
        std::size_t start = 0;
        for (std::size_t j = 0; j < w.size(); ++j) {
            if (!(class_[static_cast<unsigned char>(w[j])] & punct)) continue;
            if (j > start) emit_ascii_piece(w.substr(start, j - start), has_upper, sink, ws);
            sink(w.substr(j, 1), false);
            start = j + 1;
        }
        if (start < w.size()) emit_ascii_piece(w.substr(start), has_upper, sink, ws);
    }

    template <class Sink>
    void emit_ascii_piece(std::string_view p, bool has_upper, Sink& sink, tokenizer_workspace& ws) const {
        if (!lower_ || !has_upper) {
            sink(p, false);
            return;
        }
        ws.piece.resize(p.size());
        for (std::size_t j = 0; j < p.size(); ++j) ws.piece[j] = fold_[static_cast<unsigned char>(p[j])];
        sink(std::string_view(ws.piece), false);
    }

    // The exact path for one whitespace-delimited word starting at s[begin]: lower each character, drop
    // control characters, split out CJK ideographs, normalize and split punctuation. Returns the offset
    // after the word.
    template <class Sink>
    std::size_t exact_word(std::string_view s, std::size_t begin, Sink& sink, tokenizer_workspace& ws) const {
        ws.chunk.clear();
        std::size_t i = begin;
        while (i < s.size()) {
            const auto b = static_cast<unsigned char>(s[i]);
            if (b < 0x80) {
                const std::uint8_t k = class_[b];
                if (k & space) break;
                ++i;
                if (!(k & drop)) ws.chunk.push_back(fold_[b]);
                continue;
            }
            const char32_t cp = unicode::decode(s, i);
            char32_t lowered[2] = {cp, 0};
            const int count = lower_ ? unicode::python_lower(cp, lowered) : 1;
            bool end_of_word = false;
            for (int k = 0; k < count; ++k) {
                const char32_t l = lowered[k];
                if (l == 0xFFFD || unicode::is_control(l)) continue;
                if (unicode::is_whitespace(l) || unicode::is_python_split_separator(l)) {
                    end_of_word = true;
                    break;
                }
                if (chinese_ && unicode::is_chinese_char(l)) {
                    finish_word(sink, ws);
                    ws.chunk.clear();
                    unicode::append_utf8(ws.chunk, l);
                    finish_word(sink, ws);
                    ws.chunk.clear();
                    continue;
                }
                unicode::append_utf8(ws.chunk, l);
            }
            if (end_of_word) break;  // the separator is consumed: the caller resumes after it
        }
        finish_word(sink, ws);
        return i;
    }

    // ws.chunk holds one cleaned, lowered word. transformers passes it on whole when it is a never-split
    // token after NFC or, after stripping accents, once more before punctuation splitting; otherwise it
    // strips accents (NFD, drop Mn) or keeps the NFC form, and splits punctuation.
    template <class Sink>
    void finish_word(Sink& sink, tokenizer_workspace& ws) const {
        if (ws.chunk.empty()) return;
        const bool may_be_special = max_never_split_ != 0 && ws.chunk.size() <= 4 * max_never_split_ + 16;
        if (may_be_special) {
            const std::size_t n = normalize(ws.chunk, UTF8PROC_STABLE | UTF8PROC_COMPOSE, ws);
            if (const auto* special = never_split_match(n, ws)) {
                sink(std::string_view(*special), true);
                return;
            }
        }
        std::size_t n = normalize(ws.chunk, strip_ ? UTF8PROC_STABLE | UTF8PROC_DECOMPOSE
                                                   : UTF8PROC_STABLE | UTF8PROC_COMPOSE, ws);
        if (strip_) {
            std::size_t kept = 0;
            for (std::size_t j = 0; j < n; ++j)
                if (unicode::category(static_cast<char32_t>(ws.cps[j])) != UTF8PROC_CATEGORY_MN) ws.cps[kept++] = ws.cps[j];
            n = kept;
            if (may_be_special) {
                if (const auto* special = never_split_match(n, ws)) {
                    sink(std::string_view(*special), true);
                    return;
                }
            }
        }
        ws.piece.clear();
        for (std::size_t j = 0; j < n; ++j) {
            const auto cp = static_cast<char32_t>(ws.cps[j]);
            if (unicode::is_punctuation(cp)) {
                if (!ws.piece.empty()) sink(std::string_view(ws.piece), false);
                ws.piece.clear();
                unicode::append_utf8(ws.piece, cp);
                sink(std::string_view(ws.piece), false);
                ws.piece.clear();
                continue;
            }
            unicode::append_utf8(ws.piece, cp);
        }
        if (!ws.piece.empty()) sink(std::string_view(ws.piece), false);
    }

    // The never-split token equal to the first n code points of ws.cps, or nullptr.
    const std::string* never_split_match(std::size_t n, tokenizer_workspace& ws) const {
        if (n > max_never_split_) return nullptr;
        ws.piece.clear();
        for (std::size_t j = 0; j < n; ++j) unicode::append_utf8(ws.piece, static_cast<char32_t>(ws.cps[j]));
        for (const auto& special : never_split_)
            if (ws.piece == special) return &special;
        return nullptr;
    }

    // NFD (DECOMPOSE) or NFC (COMPOSE) of valid UTF-8 into ws.cps; returns the number of code points.
    static std::size_t normalize(const std::string& utf8, int options, tokenizer_workspace& ws) {
        const auto opts = static_cast<utf8proc_option_t>(options);
        if (ws.cps.size() < utf8.size() + 8) ws.cps.resize(utf8.size() + 8);
        const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(utf8.data());
        const auto len = static_cast<utf8proc_ssize_t>(utf8.size());
        auto n = utf8proc_decompose(p, len, ws.cps.data(), static_cast<utf8proc_ssize_t>(ws.cps.size()), opts);
        if (n > static_cast<utf8proc_ssize_t>(ws.cps.size())) {
            ws.cps.resize(static_cast<std::size_t>(n));
            n = utf8proc_decompose(p, len, ws.cps.data(), n, opts);
        }
        if (n < 0) throw io_error(std::string("utf8proc: ") + utf8proc_errmsg(n));
        if (options & UTF8PROC_COMPOSE) {
            n = utf8proc_normalize_utf32(ws.cps.data(), n, opts);
            if (n < 0) throw io_error(std::string("utf8proc: ") + utf8proc_errmsg(n));
        }
        return static_cast<std::size_t>(n);
    }

    bool lower_, strip_, chinese_;
    std::vector<std::string> never_split_;
    std::array<bool, 256> first_byte_{};
    int only_first_byte_ = -1;  // the first byte all never-split tokens share, else negative
    std::size_t max_never_split_ = 0;
    std::array<std::uint8_t, 256> class_{};
    std::array<char, 128> fold_{};
};

}  // namespace hyperadapt::text
