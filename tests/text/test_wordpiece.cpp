#define BOOST_TEST_MODULE text_wordpiece
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyperadapt/text/wordpiece.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using namespace hyperadapt::text;
namespace fs = std::filesystem;
using ids_t = std::vector<std::int32_t>;

namespace {

// ---- a small vocabulary for the unit cases ---------------------------------------------------------------
const std::vector<std::string_view> small_tokens = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                                  // 0-4
    "un", "##aff", "##able", "hello", "world", ",", "!", ".", "$", "`", "'",      // 5-15
    "creme", "brulee", "東", "京", "—", "a", "b", "ab", "x", "y", "i", "istanbul",  // 16-27
    "σ", "ο", "##δ", "##ο", "##σ", "naive", "cafe", "##s", "[", "]", "cl", "s",   // 28-39
    "the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away", "##x",          // 40-49
};

const bert_tokenizer& small() {
    static const bert_tokenizer tok(vocab::from_tokens(small_tokens));
    return tok;
}

std::int32_t id_of(std::string_view token) { return small().vocabulary().find(token).value(); }

ids_t ids_of(std::initializer_list<std::string_view> tokens) {
    ids_t out;
    for (const auto t : tokens) out.push_back(id_of(t));
    return out;
}

std::vector<std::string> words(std::string_view text, basic_tokenizer_options o = {}) {
    return basic_tokenizer(o, {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"}).tokenize(text);
}

using strings = std::vector<std::string>;

std::uint64_t fnv64_bytes(std::uint64_t h, std::string_view bytes) {
    for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    return h;
}

/// FNV-1a 64 over the ids as little-endian uint32 (the reference file's definition).
std::uint64_t fnv64_ids(const ids_t& ids) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const auto id : ids) {
        const auto u = static_cast<std::uint32_t>(id);
        for (int k = 0; k < 4; ++k) h = (h ^ ((u >> (8 * k)) & 0xFF)) * 0x100000001b3ULL;
    }
    return h;
}

std::string hex(std::uint64_t h) {
    std::ostringstream s;
    s << std::hex;
    s.width(16);
    s.fill('0');
    s << h;
    return s.str();
}

std::string join(const ids_t& ids) {
    std::string s;
    for (const auto id : ids) {
        if (!s.empty()) s.push_back(' ');
        s.append(std::to_string(id));
    }
    return s;
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == sep) {
            out.emplace_back(s.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    BOOST_TEST_REQUIRE(in.good(), "cannot open " << p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Lines split at "\n" with a trailing "\r" dropped and no empty last line: what the generator reads.
std::vector<std::string> read_lines(const fs::path& p) {
    auto lines = split(read_file(p), '\n');
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    for (auto& l : lines)
        if (!l.empty() && l.back() == '\r') l.pop_back();
    return lines;
}

fs::path reference_dir() { return fs::path(HYPERADAPT_TEST_DATA_DIR) / "reference"; }

}  // namespace

// ==== vocabulary ===========================================================================================

BOOST_AUTO_TEST_SUITE(vocabulary)

BOOST_AUTO_TEST_CASE(ids_are_line_numbers_for_every_line_ending) {
    const auto v = vocab::from_text("[PAD]\r\n[UNK]\r[CLS]\n[SEP]\n[MASK]\nfoo");  // no final newline
    BOOST_TEST(v.size() == 6u);
    BOOST_TEST(v.find("foo").value() == 5);
    BOOST_TEST(v.token(2) == "[CLS]");
    BOOST_TEST(v.cls_id() == 2);
    BOOST_TEST(v.sep_id() == 3);
    BOOST_TEST(v.pad_id() == 0);
    BOOST_TEST(v.unk_id() == 1);
    BOOST_TEST(v.mask_id() == 4);
    BOOST_TEST(!v.find("bar").has_value());
    BOOST_CHECK_THROW((void)v.token(6), config_error);
}

BOOST_AUTO_TEST_CASE(duplicate_line_names_both_lines) {
    try {
        (void)vocab::from_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfoo\nbar\nfoo\n", {}, "vocab file 'v.txt'");
        BOOST_FAIL("no exception");
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()) == "vocab file 'v.txt': line 8 repeats the token 'foo' of line 6");
    }
}

BOOST_AUTO_TEST_CASE(missing_special_tokens_are_named) {
    try {
        (void)vocab::from_text("[PAD]\n[CLS]\n[SEP]\nfoo\n", {}, "vocab file 'v.txt'");
        BOOST_FAIL("no exception");
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()) == "vocab file 'v.txt' lacks the special token(s) [UNK], [MASK]");
    }
}

BOOST_AUTO_TEST_CASE(empty_missing_and_non_utf8_files) {
    const fs::path dir = fs::temp_directory_path() / "hyperadapt_test_wordpiece";
    fs::create_directories(dir);
    const fs::path empty = dir / "empty.txt";
    std::ofstream(empty).close();
    try {
        (void)vocab::from_file(empty);
        BOOST_FAIL("no exception");
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()) == "vocab file '" + empty.string() + "' is empty");
    }
    try {
        (void)vocab::from_file(dir / "absent.txt");
        BOOST_FAIL("no exception");
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()).find("cannot open vocab file") == 0u);
    }
    BOOST_CHECK_THROW((void)vocab::from_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\xC3\x28\n"), io_error);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(vocab_fifo_is_refused_without_blocking) {
    const fs::path dir = fs::temp_directory_path() / ("hyperadapt_test_wordpiece_fifo_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path fifo = dir / "vocab.txt";
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    try {
        (void)vocab::from_file(fifo);
        BOOST_FAIL("no exception");
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()) ==
                   "cannot open vocab file: " + fifo.string() + ": is a FIFO (named pipe), not a regular file");
    }
    BOOST_CHECK_THROW((void)vocab::from_file(dir), io_error);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()

// ==== pre-tokenization (BasicTokenizer) ====================================================================

BOOST_AUTO_TEST_SUITE(pre_tokenization)

BOOST_AUTO_TEST_CASE(lower_case_and_strip_accents) {
    BOOST_TEST(words("Crème Brûlée NAÏVE") == (strings{"creme", "brulee", "naive"}));
    // The cased tokenizer keeps accents in NFC form (e + U+0301 composes to U+00E9).
    BOOST_TEST(words("Cre\u0300me", {.do_lower_case = false}) == (strings{"Cr\u00e8me"}));
    BOOST_TEST(words("Crème", {.do_lower_case = true, .strip_accents = false}) == (strings{"crème"}));
    // Python's lower() of U+0130 is "i" + U+0307; the dot is a nonspacing mark and goes with the accents.
    BOOST_TEST(words("\u0130stanbul") == (strings{"istanbul"}));
    // transformers lowers one character at a time, so a final capital sigma is U+03C3, never U+03C2.
    BOOST_TEST(words("ΟΔΟΣ") == (strings{"οδοσ"}));
    // A lone combining mark strips to nothing and leaves no word.
    BOOST_TEST(words("x \u0301 y") == (strings{"x", "y"}));
}

BOOST_AUTO_TEST_CASE(cjk_ideographs_are_single_words) {
    BOOST_TEST(words("ab東京cd") == (strings{"ab", "東", "京", "cd"}));
    // A compatibility ideograph is split out and normalized to its unified form (U+F900 -> U+8C48).
    BOOST_TEST(words("a\uF900b") == (strings{"a", "\u8C48", "b"}));
    // Hiragana is not in BERT's CJK ranges; stripping accents removes its voicing mark (NFD: か + U+3099).
    BOOST_TEST(words("ひらがな") == (strings{"ひらかな"}));
    BOOST_TEST(words("東京", {.tokenize_chinese_chars = false}) == (strings{"東京"}));
}

BOOST_AUTO_TEST_CASE(punctuation_is_split) {
    BOOST_TEST(words("hello,world!") == (strings{"hello", ",", "world", "!"}));
    // ASCII symbols outside Unicode's P* count as punctuation too; Unicode P* does; Sm does not.
    BOOST_TEST(words("5$+3^2") == (strings{"5", "$", "+", "3", "^", "2"}));
    BOOST_TEST(words("a—b«c»") == (strings{"a", "—", "b", "«", "c", "»"}));
    BOOST_TEST(words("a≤b") == (strings{"a≤b"}));
    // Punctuation is decided after NFD: GREEK VARIA (Sk) decomposes to '`'.
    BOOST_TEST(words("a\u1FEFb") == (strings{"a", "`", "b"}));
    // Longer runs than the fast path notes positions for, with and without a non-ASCII character.
    std::string many;
    strings want;
    for (int i = 0; i < 40; ++i) {
        many += "A.";
        want.insert(want.end(), {"a", "."});
    }
    BOOST_TEST(words(many) == want);
    want.push_back("e");
    BOOST_TEST(words(many + "É") == want);
}

BOOST_AUTO_TEST_CASE(control_and_whitespace_characters) {
    using namespace std::string_view_literals;
    BOOST_TEST(words("a\0b\x01" "c\x7F"sv) == (strings{"abc"}));
    BOOST_TEST(words("a\u200Bb\uFFFDc\uFEFF") == (strings{"abc"}));  // Cf and U+FFFD are dropped
    BOOST_TEST(words("a\tb\nc\rd\u00A0e\u3000f") == (strings{"a", "b", "c", "d", "e", "f"}));
    // Vertical tab, form feed and NEL are controls (dropped); LINE SEPARATOR survives _clean_text but
    // Python's str.split() splits on it.
    BOOST_TEST(words("a\vb\fc\u0085d\u2028e") == (strings{"abcd", "e"}));
    BOOST_TEST(words("   ").empty());
    BOOST_TEST(words("").empty());
}

BOOST_AUTO_TEST_CASE(special_tokens_are_never_split) {
    using namespace std::string_view_literals;
    BOOST_TEST(words("hello[SEP]world [MASK]ed") == (strings{"hello", "[SEP]", "world", "[MASK]", "ed"}));
    BOOST_TEST(words("[sep]") == (strings{"[", "sep", "]"}));  // matched exactly, as in transformers
    BOOST_TEST(words("x[y[SEP]z[") == (strings{"x", "[", "y", "[SEP]", "z", "["}));
    BOOST_TEST(words("[CLS][SEP][MASK]") == (strings{"[CLS]", "[SEP]", "[MASK]"}));
    // A control character inside is dropped by _clean_text; the lower-cased word is no longer special...
    BOOST_TEST(words("[CL\0S]"sv) == (strings{"[", "cls", "]"}));
    // ...but the cased one is, and transformers passes it on whole.
    BOOST_TEST(words("[CL\0S]"sv, {.do_lower_case = false}) == (strings{"[CLS]"}));
}

BOOST_AUTO_TEST_CASE(invalid_utf8_throws) {
    using namespace std::string_view_literals;
    BOOST_CHECK_THROW(words("ok \xC3"sv), io_error);
    BOOST_CHECK_THROW(words("\xED\xA0\x80"sv), io_error);  // an encoded surrogate
    BOOST_CHECK_THROW(words("\xC0\xAF"sv), io_error);      // overlong '/'
    try {
        (void)words("ab\xFF"sv);
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()) == "text is not valid UTF-8: byte 0xff at offset 2");
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ==== WordPiece ===========================================================================================

BOOST_AUTO_TEST_SUITE(wordpiece)

BOOST_AUTO_TEST_CASE(greedy_longest_match_with_continuations) {
    BOOST_TEST(small().tokenize("unaffable") == ids_of({"un", "##aff", "##able"}));
    BOOST_TEST(small().tokenize_to_strings("Hello, world! unaffable.") ==
               (strings{"hello", ",", "world", "!", "un", "##aff", "##able", "."}));
    // Longest match first: "ab" beats "a" + ... ("##b" is absent anyway).
    BOOST_TEST(small().tokenize("ab") == ids_of({"ab"}));
    BOOST_TEST(small().tokenize("xx") == ids_of({"x", "##x"}));
    // One unmatched remainder turns the whole word into [UNK], discarding the pieces found so far.
    BOOST_TEST(small().tokenize("unaffablez cat") == ids_of({"[UNK]", "cat"}));
    BOOST_TEST(small().tokenize("ΟΔΟΣ") == ids_of({"ο", "##δ", "##ο", "##σ"}));
    BOOST_TEST(small().tokenize("東京 Crème brûlée") == ids_of({"東", "京", "creme", "brulee"}));
    BOOST_TEST(small().tokenize("hello[SEP]world") == ids_of({"hello", "[SEP]", "world"}));
    BOOST_TEST(small().tokenize("?") == ids_of({"[UNK]"}));
}

BOOST_AUTO_TEST_CASE(long_words_are_unknown) {
    // 100 code points are still split; 101 are [UNK] without trying. Code points, not bytes, count.
    const std::string x100(100, 'x');
    ids_t want{id_of("x")};
    want.insert(want.end(), 99, id_of("##x"));
    BOOST_TEST(small().tokenize(x100) == want);
    BOOST_TEST(small().tokenize(x100 + "x") == ids_of({"[UNK]"}));
    std::string sigma100;
    for (int i = 0; i < 100; ++i) sigma100 += "σ";
    BOOST_TEST(small().tokenize(sigma100).size() == 100u);
    BOOST_TEST(small().tokenize(sigma100 + "σ") == ids_of({"[UNK]"}));
    const bert_tokenizer short_words(vocab::from_tokens(small_tokens), {.max_input_chars_per_word = 3});
    BOOST_TEST(short_words.tokenize("cat mats") == ids_of({"cat", "[UNK]"}));
}

BOOST_AUTO_TEST_SUITE_END()

// ==== encoding: special tokens, truncation, padding, batches ==============================================

BOOST_AUTO_TEST_SUITE(encoding_api)

BOOST_AUTO_TEST_CASE(single_and_pair_layout) {
    const auto e = small().encode("the cat");
    BOOST_TEST(e.input_ids == ids_of({"[CLS]", "the", "cat", "[SEP]"}));
    BOOST_TEST(e.token_type_ids == (ids_t{0, 0, 0, 0}));
    BOOST_TEST(e.attention_mask == (std::vector<std::uint8_t>{1, 1, 1, 1}));
    const auto p = small().encode_pair("the cat", "sat");
    BOOST_TEST(p.input_ids == ids_of({"[CLS]", "the", "cat", "[SEP]", "sat", "[SEP]"}));
    BOOST_TEST(p.token_type_ids == (ids_t{0, 0, 0, 0, 1, 1}));
    const auto empty = small().encode("");
    BOOST_TEST(empty.input_ids == ids_of({"[CLS]", "[SEP]"}));
}

BOOST_AUTO_TEST_CASE(longest_first_truncation_matches_transformers) {
    const encode_options o{.max_length = 6, .truncation = truncation_strategy::longest_first};
    // 6 + 2 tokens + 3 specials, 5 to remove: 4 from the longer first sequence to even them, then the odd
    // one from the second (transformers 4.40.2 truncate_sequences).
    auto p = small().encode_pair("the cat sat on the mat", "dog ran", o);
    BOOST_TEST(p.input_ids == ids_of({"[CLS]", "the", "cat", "[SEP]", "dog", "[SEP]"}));
    // Equal lengths: the second sequence loses the odd token.
    p = small().encode_pair("the cat sat", "dog ran far", {.max_length = 8, .truncation = truncation_strategy::longest_first});
    BOOST_TEST(p.input_ids == ids_of({"[CLS]", "the", "cat", "sat", "[SEP]", "dog", "ran", "[SEP]"}));
    p = small().encode_pair("the cat sat", "dog ran far", {.max_length = 7, .truncation = truncation_strategy::longest_first});
    BOOST_TEST(p.input_ids == ids_of({"[CLS]", "the", "cat", "[SEP]", "dog", "ran", "[SEP]"}));
    // The second sequence longer: it is trimmed down to the first's length first.
    p = small().encode_pair("dog", "the cat sat on the mat", {.max_length = 7, .truncation = truncation_strategy::longest_first});
    BOOST_TEST(p.input_ids == ids_of({"[CLS]", "dog", "[SEP]", "the", "cat", "sat", "[SEP]"}));
    // Nothing to remove: untouched.
    p = small().encode_pair("dog", "cat", {.max_length = 5, .truncation = truncation_strategy::longest_first});
    BOOST_TEST(p.input_ids == ids_of({"[CLS]", "dog", "[SEP]", "cat", "[SEP]"}));
    // A single sequence loses its tail.
    const auto s = small().encode("the cat sat on the mat", {.max_length = 4, .truncation = truncation_strategy::longest_first});
    BOOST_TEST(s.input_ids == ids_of({"[CLS]", "the", "cat", "[SEP]"}));
}

BOOST_AUTO_TEST_CASE(only_first_and_only_second) {
    auto p = small().encode_pair("the cat sat", "dog ran", {.max_length = 6, .truncation = truncation_strategy::only_first});
    BOOST_TEST(p.input_ids == ids_of({"[CLS]", "the", "[SEP]", "dog", "ran", "[SEP]"}));
    p = small().encode_pair("the cat sat", "dog ran", {.max_length = 7, .truncation = truncation_strategy::only_second});
    BOOST_TEST(p.input_ids == ids_of({"[CLS]", "the", "cat", "sat", "[SEP]", "dog", "[SEP]"}));
    BOOST_CHECK_THROW((void)small().encode_pair("the cat sat", "dog ran", {.max_length = 6, .truncation = truncation_strategy::only_second}),
                      config_error);
    // only_second on a single sequence truncates nothing, as in transformers.
    BOOST_TEST(small().encode("the cat sat", {.max_length = 3, .truncation = truncation_strategy::only_second}).input_ids.size() == 5u);
    // Where transformers logs an error and returns the sequence too long, this throws.
    BOOST_CHECK_THROW((void)small().encode_pair("the", "dog ran", {.max_length = 5, .truncation = truncation_strategy::only_first}),
                      config_error);
    BOOST_CHECK_THROW((void)small().encode("the cat", {.max_length = 2, .truncation = truncation_strategy::longest_first}),
                      config_error);
    BOOST_CHECK_THROW((void)small().encode_pair("a", "b", {.max_length = 2, .truncation = truncation_strategy::longest_first}),
                      config_error);
    BOOST_CHECK_THROW((void)small().encode("a", {.truncation = truncation_strategy::longest_first}), config_error);
}

BOOST_AUTO_TEST_CASE(padding_to_max_length) {
    const auto e = small().encode_pair("the cat", "dog", {.max_length = 8, .padding = padding_strategy::max_length});
    BOOST_TEST(e.input_ids == ids_of({"[CLS]", "the", "cat", "[SEP]", "dog", "[SEP]", "[PAD]", "[PAD]"}));
    BOOST_TEST(e.token_type_ids == (ids_t{0, 0, 0, 0, 1, 1, 0, 0}));
    BOOST_TEST(e.attention_mask == (std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 0, 0}));
    // Longer than max_length without truncation: left as is, as in transformers.
    const auto l = small().encode("the cat sat on the mat", {.max_length = 4, .padding = padding_strategy::max_length});
    BOOST_TEST(l.input_ids.size() == 8u);
}

BOOST_AUTO_TEST_CASE(batches_are_row_major) {
    const std::vector<std::string_view> texts{"the cat", "dog ran far away", ""};
    const auto b = small().encode_batch(texts);
    BOOST_TEST(b.batch == 3u);
    BOOST_TEST(b.seq_len == 6u);  // padded to the longest row
    BOOST_TEST((b.shape() == shape{3, 6}));
    BOOST_TEST(b.lengths == (std::vector<std::size_t>{4, 6, 2}));
    const ids_t row0(b.input_ids.begin(), b.input_ids.begin() + 6);
    BOOST_TEST(row0 == ids_of({"[CLS]", "the", "cat", "[SEP]", "[PAD]", "[PAD]"}));
    const std::vector<std::uint8_t> mask2(b.attention_mask.begin() + 12, b.attention_mask.end());
    BOOST_TEST(mask2 == (std::vector<std::uint8_t>{1, 1, 0, 0, 0, 0}));

    const std::vector<std::pair<std::string_view, std::string_view>> pairs{{"the cat sat on the mat", "dog"}, {"a", "b"}};
    const auto p = small().encode_pair_batch(pairs, {.max_length = 6, .truncation = truncation_strategy::longest_first,
                                                      .padding = padding_strategy::max_length});
    BOOST_TEST((p.shape() == shape{2, 6}));
    BOOST_TEST(p.token_type_ids == (ids_t{0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0}));
    BOOST_TEST(p.attention_mask == (std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}));
    BOOST_CHECK_THROW((void)small().encode_batch(texts, {.max_length = 4, .padding = padding_strategy::max_length}),
                      config_error);
    // The arrays go straight into tensors.
    cpu backend;
    const auto ids = tensor<cpu, std::int32_t>::from_host(backend, p.shape(), p.input_ids);
    BOOST_TEST(ids.to_host() == p.input_ids);
}

BOOST_AUTO_TEST_SUITE_END()

// ==== every assigned code point against transformers ======================================================

BOOST_AUTO_TEST_CASE(every_code_point_matches_transformers) {
    const auto lines = read_lines(reference_dir() / "tokenizer_codepoints.tsv");
    std::vector<std::pair<char32_t, char32_t>> python_unassigned;
    struct block {
        char32_t first;
        std::size_t count;
        std::string lower, cased;
    };
    std::vector<block> blocks;
    std::string python_unicode;
    for (const auto& line : lines) {
        if (line.empty() || line[0] == '#') continue;
        const auto f = split(line, '\t');
        if (f[0] == "unicode") python_unicode = f[1];
        if (f[0] == "cn") python_unassigned.emplace_back(std::stoul(f[1], nullptr, 16), std::stoul(f[2], nullptr, 16));
        if (f[0] == "block") blocks.push_back({static_cast<char32_t>(std::stoul(f[1], nullptr, 16)), std::stoul(f[2]), f[3], f[4]});
    }
    BOOST_TEST_REQUIRE(!blocks.empty());
    const basic_tokenizer lower({.do_lower_case = true}, {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"});
    const basic_tokenizer cased({.do_lower_case = false}, {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"});
    tokenizer_workspace ws;
    std::size_t compared = 0, newer_unicode = 0, range = 0, mismatched_blocks = 0;
    std::string text;
    for (const auto& b : blocks) {
        std::uint64_t h[2] = {0xcbf29ce484222325ULL, 0xcbf29ce484222325ULL};
        std::size_t count = 0;
        for (char32_t cp = b.first; cp < b.first + 256; ++cp) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            while (range < python_unassigned.size() && python_unassigned[range].second < cp) ++range;
            if (range < python_unassigned.size() && python_unassigned[range].first <= cp) {
                continue;  // unassigned where the reference ran: counted below
            }
            ++count;
            text.assign(1, 'x');
            unicode::append_utf8(text, cp);
            text.push_back('y');
            int k = 0;
            for (const basic_tokenizer* t : {&lower, &cased}) {
                t->run(
                    text,
                    [&](std::string_view w, bool) {
                        h[k] = fnv64_bytes(h[k], w);
                        h[k] = fnv64_bytes(h[k], "\x1f");
                    },
                    ws);
                h[k] = fnv64_bytes(h[k], "\x1e");
                ++k;
            }
        }
        compared += count;
        BOOST_TEST(count == b.count, "block U+" << hex(b.first).substr(10) << ": code point count");
        if (hex(h[0]) != b.lower || hex(h[1]) != b.cased) {
            ++mismatched_blocks;
            BOOST_TEST_MESSAGE("block U+" << hex(b.first).substr(10) << " differs from transformers ("
                                          << (hex(h[0]) != b.lower ? "lower-cased" : "") << " "
                                          << (hex(h[1]) != b.cased ? "cased" : "") << ")");
        }
    }
    BOOST_TEST(mismatched_blocks == 0u);
    // Python drops a code point its Unicode version does not know as a control character; utf8proc may know
    // it from a newer version. Those code points cannot be compared.
    for (const auto& [first, last] : python_unassigned)
        for (char32_t cp = first; cp <= last; ++cp)
            newer_unicode += utf8proc_category(static_cast<utf8proc_int32_t>(cp)) != UTF8PROC_CATEGORY_CN;
    BOOST_TEST_MESSAGE("code points compared with transformers: " << compared << " in " << blocks.size()
                       << " blocks, lower-cased and cased; " << newer_unicode << " code points unassigned in the reference's "
                       << "Unicode " << python_unicode << " but known to utf8proc " << utf8proc_unicode_version()
                       << " were not compared");
}

// ==== every dev sentence of the shared GLUE / SuperGLUE data against transformers =========================

namespace {

struct source_spec {
    std::string id, path, format;
    std::size_t header = 0, rows = 0;
    std::vector<std::pair<std::string, int>> fields;   // name, TSV column (-1 for jsonl)
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
};

/// The source's rows as field texts, read the way the generator reads them.
std::vector<std::vector<std::string>> read_rows(const fs::path& file, const source_spec& s) {
    auto lines = read_lines(file);
    BOOST_TEST_REQUIRE(lines.size() >= s.header);
    lines.erase(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(s.header));
    std::vector<std::vector<std::string>> rows;
    for (const auto& line : lines) {
        std::vector<std::string> row;
        if (s.format == "tsv") {
            const auto cols = split(line, '\t');
            for (const auto& [name, col] : s.fields) {
                BOOST_TEST_REQUIRE(static_cast<std::size_t>(col) < cols.size(), file << ": short row");
                row.push_back(cols[static_cast<std::size_t>(col)]);
            }
        } else {
            const auto obj = nlohmann::json::parse(line);
            for (const auto& [name, col] : s.fields) row.push_back(obj.at(name).get<std::string>());
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

struct mismatch_report {
    std::size_t shown = 0;
    void show(const bert_tokenizer& tok, const std::string& where, std::string_view text, const ids_t& ours,
              const std::string& reference) {
        if (++shown > 5) return;
        std::string tokens;
        for (const auto id : ours) {
            if (!tokens.empty()) tokens.push_back(' ');
            tokens.append(tok.vocabulary().token(id));
        }
        BOOST_TEST_MESSAGE("MISMATCH " << where << "\n  text:      " << text << "\n  ours:      " << join(ours)
                                       << "\n  tokens:    " << tokens << "\n  reference: " << reference);
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(every_dev_sentence_matches_transformers) {
    const fs::path data = hyperadapt::test::shared_data_dir();
    const auto lines = read_lines(reference_dir() / "tokenizer_dev.tsv");
    std::string vocab_rel;
    std::size_t vocab_size = 0, max_length = 0;
    for (const auto& line : lines) {
        const auto f = split(line, '\t');
        if (f[0] == "vocab") vocab_rel = f[1], vocab_size = std::stoul(f[2]);
        if (f[0] == "max_length") max_length = std::stoul(f[1]);
    }
    if (!fs::exists(data / vocab_rel)) {
        BOOST_TEST_MESSAGE("SKIPPED: shared data not found at " << data
                           << " (set HYPERADAPT_SHARED_DATA); no dev sentence was compared");
        return;
    }
    const auto tok = bert_tokenizer::from_file(data / vocab_rel);
    BOOST_TEST_REQUIRE(tok.vocabulary().size() == vocab_size);
    const encode_options pair_options{.max_length = max_length, .truncation = truncation_strategy::longest_first,
                                      .padding = padding_strategy::max_length};

    source_spec src;
    std::vector<std::vector<std::string>> rows;
    std::size_t singles = 0, singles_ok = 0, pairs = 0, pairs_ok = 0, sources = 0;
    mismatch_report report;
    tokenizer_workspace ws;
    ids_t ids;
    for (const auto& line : lines) {
        if (line.empty() || line[0] == '#') continue;
        const auto f = split(line, '\t');
        if (f[0] == "source") {
            src = {f[1], f[2], f[3], std::stoul(f[4]), std::stoul(f[5]), {}, {}};
            for (const auto& spec : split(f[6], ',')) {
                const auto colon = spec.find(':');
                src.fields.emplace_back(spec.substr(0, colon), colon == std::string::npos ? -1 : std::stoi(spec.substr(colon + 1)));
            }
            if (f[7] != "-")
                for (const auto& p : split(f[7], ',')) {
                    const auto plus = p.find('+');
                    src.pairs.emplace_back(std::stoul(p.substr(0, plus)), std::stoul(p.substr(plus + 1)));
                }
            rows = read_rows(data / src.path, src);
            BOOST_TEST_REQUIRE(rows.size() == src.rows, src.path << ": the shared data changed since the reference was made");
            ++sources;
            continue;
        }
        if (f[0] != "s" && f[0] != "p") continue;
        const auto& row = rows.at(std::stoul(f[1]));
        const std::size_t which = std::stoul(f[2]);
        const std::string where = src.id + " row " + f[1];
        if (f[0] == "s") {
            ++singles;
            ids.clear();
            tok.tokenize(row.at(which), ids, ws);
            if (ids.size() == std::stoul(f[3]) && hex(fnv64_ids(ids)) == f[4]) {
                ++singles_ok;
            } else {
                report.show(tok, where + " field " + src.fields.at(which).first, row.at(which), ids,
                            f.size() > 5 ? f[5] : f[3] + " ids, fnv64 " + f[4]);
            }
        } else {
            ++pairs;
            const auto [a, b] = src.pairs.at(which);
            const auto e = tok.encode_pair(row.at(a), row.at(b), pair_options);
            std::size_t n = 0;
            for (const auto m : e.attention_mask) n += m;
            if (n == std::stoul(f[3]) && hex(fnv64_ids(e.input_ids)) == f[4] && hex(fnv64_ids(e.token_type_ids)) == f[5]) {
                ++pairs_ok;
            } else {
                report.show(tok, where + " pair " + src.fields.at(a).first + "+" + src.fields.at(b).first,
                            row.at(a) + " ||| " + row.at(b), e.input_ids, f.size() > 6 ? f[6] : f[3] + " tokens, fnv64 " + f[4]);
            }
        }
    }
    BOOST_TEST(singles_ok == singles);
    BOOST_TEST(pairs_ok == pairs);
    BOOST_TEST(singles > 20000u);
    BOOST_TEST_MESSAGE("dev sentences compared with transformers 4.40.2 BertTokenizer: " << singles_ok << " of " << singles
                       << " match; pairs (max_length " << max_length << ", longest_first, padded): " << pairs_ok << " of "
                       << pairs << " match; " << sources << " files from " << data);
}
