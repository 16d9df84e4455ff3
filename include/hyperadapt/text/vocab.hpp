#pragma once
// A WordPiece vocabulary (vocab.txt: one token per line, id = line number) with an open-addressing hash
// table whose hash is FNV-1a: FNV-1a extends one byte at a time, so WordPiece's longest-match search hashes
// all prefixes of a word in one pass instead of rehashing every candidate (wordpiece.hpp).
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/io/regular_file.hpp"
#include "hyperadapt/text/unicode.hpp"

namespace hyperadapt::text {

/// The special tokens of a BERT vocabulary. Loading fails with io_error if one is missing.
struct special_tokens {
    std::string pad = "[PAD]";
    std::string unk = "[UNK]";
    std::string cls = "[CLS]";
    std::string sep = "[SEP]";
    std::string mask = "[MASK]";
};

namespace detail {
inline constexpr std::uint64_t fnv_basis = 0xcbf29ce484222325ULL;
inline constexpr std::uint64_t fnv_prime = 0x100000001b3ULL;
constexpr std::uint64_t fnv1a(std::uint64_t h, std::string_view s) noexcept {
    for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * fnv_prime;
    return h;
}
}  // namespace detail

class vocab {
public:
    /// Reads vocab.txt as transformers' load_vocab does: UTF-8, one token per line, line endings "\n",
    /// "\r\n" or "\r" (Python's universal newlines), id = zero-based line number. Throws io_error when the
    /// file cannot be read, is empty, is not UTF-8, repeats a token (naming both lines) or lacks a special
    /// token (naming each missing one).
    static vocab from_file(const std::filesystem::path& path, const special_tokens& specials = {}) {
        std::string text;
        try {
            text = io::read_regular_file(path);
        } catch (const io_error& e) {
            throw io_error(std::string("cannot open vocab file: ") + e.what());
        }
        return from_text(text, specials, "vocab file '" + path.string() + "'");
    }

    /// The same from the file's content; `source` names it in error messages.
    static vocab from_text(std::string_view text, const special_tokens& specials = {},
                           std::string source = "vocab text") {
        if (text.empty()) throw io_error(source + " is empty");
        std::vector<std::string_view> lines;
        std::size_t start = 0;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] != '\n' && text[i] != '\r') continue;
            lines.push_back(text.substr(start, i - start));
            if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            start = i + 1;
        }
        if (start < text.size()) lines.push_back(text.substr(start));
        return vocab(lines, specials, std::move(source));
    }

    /// A vocabulary from tokens in id order (tests, programmatic vocabularies).
    static vocab from_tokens(std::span<const std::string_view> tokens, const special_tokens& specials = {},
                             std::string source = "vocabulary") {
        if (tokens.empty()) throw io_error(source + " is empty");
        return vocab(tokens, specials, std::move(source));
    }

    [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }

    [[nodiscard]] std::string_view token(std::int32_t id) const {
        if (id < 0 || static_cast<std::size_t>(id) >= size())
            throw config_error("vocab: id " + std::to_string(id) + " is outside [0, " + std::to_string(size()) + ")");
        return token_unchecked(static_cast<std::uint32_t>(id));
    }

    [[nodiscard]] std::optional<std::int32_t> find(std::string_view token) const noexcept {
        const std::int32_t id = find_hashed(detail::fnv1a(detail::fnv_basis, token), token, false);
        if (id < 0) return std::nullopt;
        return id;
    }

    [[nodiscard]] bool contains(std::string_view token) const noexcept { return find(token).has_value(); }

    [[nodiscard]] std::int32_t pad_id() const noexcept { return pad_id_; }
    [[nodiscard]] std::int32_t unk_id() const noexcept { return unk_id_; }
    [[nodiscard]] std::int32_t cls_id() const noexcept { return cls_id_; }
    [[nodiscard]] std::int32_t sep_id() const noexcept { return sep_id_; }
    [[nodiscard]] std::int32_t mask_id() const noexcept { return mask_id_; }
    [[nodiscard]] const special_tokens& specials() const noexcept { return specials_; }

    /// Looks a token up by its FNV-1a hash `h`. With `continuation`, `piece` is a word-internal piece and h
    /// must be the hash of "##" + piece (continue from continuation_seed()), so callers never build the
    /// "##"-prefixed string. Returns -1 when absent.
    [[nodiscard]] std::int32_t find_hashed(std::uint64_t h, std::string_view piece, bool continuation) const noexcept {
        const std::uint32_t tag = tag_of(h);
        const std::size_t len = piece.size() + (continuation ? 2 : 0);
        for (std::size_t slot = index_of(h);; slot = (slot + 1) & mask_) {
            const std::uint32_t entry = slots_[slot];
            if (entry == 0) return -1;
            // The tag rejects 255 of 256 other tokens without touching their bytes.
            if ((entry & tag_mask) != tag) continue;
            const char* record = records_.data() + (entry & offset_mask);
            std::uint32_t id = 0, record_len = 0;
            std::memcpy(&id, record, 4);
            std::memcpy(&record_len, record + 4, 4);
            const char* t = record + 8;
            if (record_len != len) continue;
            if (continuation && (t[0] != '#' || t[1] != '#')) continue;
            if (same_bytes(t + (continuation ? 2 : 0), piece.data(), piece.size())) return static_cast<std::int32_t>(id);
        }
    }

    /// FNV-1a state after "##": the seed for hashing a word-internal piece.
    static constexpr std::uint64_t continuation_seed() noexcept { return detail::fnv1a(detail::fnv_basis, "##"); }

private:
    vocab(std::span<const std::string_view> tokens, const special_tokens& specials, std::string source)
        : specials_(specials) {
        std::size_t bytes = 0;
        for (const auto t : tokens) bytes += t.size();
        if (8 + bytes + 8 * tokens.size() >= max_records)
            throw io_error(source + " holds " + std::to_string(tokens.size()) + " tokens of " + std::to_string(bytes) +
                           " bytes, more than this vocabulary supports");
        storage_.reserve(bytes);
        offsets_.reserve(tokens.size() + 1);
        offsets_.push_back(0);
        records_.reserve(8 + bytes + 8 * tokens.size());
        records_.assign(8, '\0');  // no record at offset 0, so no occupied slot reads as empty (0)
        std::vector<std::uint32_t> record_at(tokens.size());
        for (std::uint32_t id = 0; id < tokens.size(); ++id) {
            const auto t = tokens[id];
            storage_.append(t);
            offsets_.push_back(static_cast<std::uint32_t>(storage_.size()));
            record_at[id] = static_cast<std::uint32_t>(records_.size());
            const auto len = static_cast<std::uint32_t>(t.size());
            records_.append(reinterpret_cast<const char*>(&id), 4);
            records_.append(reinterpret_cast<const char*>(&len), 4);
            records_.append(t);
        }
        // Load factor <= 1/2 keeps linear probing short.
        const std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, 2 * tokens.size()));
        slots_.assign(capacity, 0);
        mask_ = capacity - 1;
        for (std::uint32_t id = 0; id < tokens.size(); ++id) {
            const std::string_view t = token_unchecked(id);
            validate_utf8(t, source, id);
            const std::uint64_t h = detail::fnv1a(detail::fnv_basis, t);
            std::size_t slot = index_of(h);
            for (; slots_[slot] != 0; slot = (slot + 1) & mask_) {
                std::uint32_t other = 0;
                std::memcpy(&other, records_.data() + (slots_[slot] & offset_mask), 4);
                if (token_unchecked(other) == t)
                    throw io_error(source + ": line " + std::to_string(id + 1) + " repeats the token '" +
                                   std::string(t) + "' of line " + std::to_string(other + 1));
            }
            slots_[slot] = tag_of(h) | record_at[id];
        }
        std::string missing;
        const auto special_id = [&](const std::string& name) -> std::int32_t {
            const auto id = find(name);
            if (!id) missing += (missing.empty() ? "" : ", ") + name;
            return id.value_or(-1);
        };
        pad_id_ = special_id(specials_.pad);
        unk_id_ = special_id(specials_.unk);
        cls_id_ = special_id(specials_.cls);
        sep_id_ = special_id(specials_.sep);
        mask_id_ = special_id(specials_.mask);
        if (!missing.empty()) throw io_error(source + " lacks the special token(s) " + missing);
    }

    // A slot is 8 bits of the hash (a tag) above the 24-bit offset of the token's record in records_; a
    // record is id (4 bytes), length (4), the token's bytes. Four-byte slots keep the table at 256 KiB for
    // BERT's 30522 tokens, and a probe past the tag finds id and bytes in one place: one cache miss where
    // separate id, offset and byte arrays would cost three.
    static constexpr std::uint32_t tag_mask = 0xFF000000u;
    static constexpr std::uint32_t offset_mask = 0x00FFFFFFu;
    static constexpr std::size_t max_records = std::size_t{1} << 24;
    static std::uint32_t tag_of(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h >> 56) << 24; }

    // Words are a few bytes: a plain loop beats a call to memcmp.
    static bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i)
            if (a[i] != b[i]) return false;
        return true;
    }

    std::string_view token_unchecked(std::uint32_t id) const noexcept {
        return std::string_view(storage_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
    }

    // Fibonacci hashing of the full 64 bits: FNV's low bits alone index a power-of-two table poorly.
    std::size_t index_of(std::uint64_t h) const noexcept {
        return static_cast<std::size_t>((h * 0x9E3779B97F4A7C15ULL) >> 32) & mask_;
    }

    static void validate_utf8(std::string_view t, const std::string& source, std::uint32_t id) {
        try {
            for (std::size_t i = 0; i < t.size();) unicode::decode(t, i);
        } catch (const io_error& e) {
            throw io_error(source + ": line " + std::to_string(id + 1) + ": " + e.what());
        }
    }

    special_tokens specials_;
    std::string storage_;                 // every token, back to back
    std::vector<std::uint32_t> offsets_;  // token id i is storage_[offsets_[i], offsets_[i + 1])
    std::string records_;                 // see tag_mask
    std::vector<std::uint32_t> slots_;    // see tag_mask; 0 = empty
    std::size_t mask_ = 0;
    std::int32_t pad_id_ = -1, unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, mask_id_ = -1;
};

}  // namespace hyperadapt::text
