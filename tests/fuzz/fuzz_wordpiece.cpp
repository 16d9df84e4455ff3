// libFuzzer target: bytes through the WordPiece tokenizer (pre-tokenization, normalization, longest-match
// WordPiece, pair encoding with truncation and padding). The first byte picks the tokenizer options and
// the encoding strategy; the rest, split at the first tab, is the text pair. Invalid UTF-8 must be an
// io_error.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "hyperadapt/text/wordpiece.hpp"

using namespace hyperadapt;

namespace {
/// A small vocabulary with what exercises every path: the special tokens, ASCII characters as words and as
/// "##" pieces, words with continuations, accented and CJK characters, a never-split token.
text::vocab fuzz_vocab() {
    static const std::vector<std::string> tokens = [] {
        std::vector<std::string> t{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "un", "##aff", "##able",
                                   "play", "##ing", "caf", "##\xC3\xA9", "\xC3\xA9", "\xE4\xB8\xAD",
                                   "\xE6\x96\x87", "na", "##\xC3\xAF", "##ve", "[unused0]"};
        for (char c = '!'; c <= '~'; ++c) {
            if (c == '#') continue;
            t.emplace_back(1, c);
            t.push_back(std::string("##") + c);
        }
        t.emplace_back("#");
        return t;
    }();
    std::vector<std::string_view> views(tokens.begin(), tokens.end());
    return text::vocab::from_tokens(views);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t mode = data[0];
    text::bert_tokenizer_options options;
    options.do_lower_case = (mode & 1) != 0;
    if (mode & 2) options.strip_accents = (mode & 4) != 0;
    options.tokenize_chinese_chars = (mode & 8) != 0;
    options.max_input_chars_per_word = (mode & 16) ? 4 : 100;
    static const std::array<text::bert_tokenizer, 2> cached{text::bert_tokenizer(fuzz_vocab(), {}),
                                                            text::bert_tokenizer(fuzz_vocab(), {.do_lower_case = false})};
    const text::bert_tokenizer fresh(fuzz_vocab(), options);
    const text::bert_tokenizer& tok = (mode & 0x80) ? cached[mode & 1] : fresh;

    const std::string_view input = fuzz::as_text(data + 1, size - 1);
    const auto tab = input.find('\t');
    const std::string_view a = input.substr(0, tab);
    const std::string_view b = tab == std::string_view::npos ? std::string_view{} : input.substr(tab + 1);
    fuzz::expect_valid_or_typed_error([&] {
        const auto ids = tok.tokenize(a);
        for (const auto id : ids)
            if (id < 0 || static_cast<std::size_t>(id) >= tok.vocabulary().size()) __builtin_trap();
        text::encode_options enc;
        enc.max_length = 3 + ((mode >> 5) & 3) * 5;
        enc.truncation = static_cast<text::truncation_strategy>((mode >> 5) & 3);
        enc.padding = (mode & 0x40) ? text::padding_strategy::max_length : text::padding_strategy::longest;
        const auto e = tab == std::string_view::npos ? tok.encode(a, enc) : tok.encode_pair(a, b, enc);
        if (e.input_ids.size() != e.attention_mask.size() || e.input_ids.size() != e.token_type_ids.size())
            __builtin_trap();
    });
    return 0;
}
