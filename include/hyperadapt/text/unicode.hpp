#pragma once
// UTF-8 decoding and the character classes of Hugging Face's BERT tokenizer (transformers'
// tokenization_utils.py: _is_whitespace, _is_control, _is_punctuation; tokenization_bert.py:
// _is_chinese_char), over utf8proc's Unicode tables. Link hyperadapt::text.
//
// Python's unicodedata and utf8proc can carry different Unicode versions: a code point that is unassigned
// in the Python that ran transformers is "Cn" there (a control character, dropped), while a newer utf8proc
// knows it as a letter. Such code points (new in the newer Unicode version) are the only ones where the two
// can differ; tests/text/test_wordpiece.cpp measures this on every code point.
#include <utf8proc.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt::text::unicode {

/// Decodes the code point at s[i] (advancing i past it). Invalid UTF-8 (overlong forms, surrogates,
/// truncated sequences, values above U+10FFFF) throws io_error naming the byte offset: Python, where the
/// reference tokenizer runs, cannot even hold such text in a str.
inline char32_t decode(std::string_view s, std::size_t& i) {
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data()) + i;
    utf8proc_int32_t cp = -1;
    const auto n = utf8proc_iterate(p, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0 || cp < 0) {
        constexpr const char* hex = "0123456789abcdef";
        const auto byte = static_cast<unsigned char>(s[i]);
        throw io_error(std::string("text is not valid UTF-8: byte 0x") + hex[byte >> 4] + hex[byte & 15] +
                       " at offset " + std::to_string(i));
    }
    i += static_cast<std::size_t>(n);
    return static_cast<char32_t>(cp);
}

/// Appends the UTF-8 form of a valid code point.
inline void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

inline utf8proc_category_t category(char32_t cp) noexcept {
    return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

/// _is_control: Unicode category C* (Cc, Cf, Cs, Co and unassigned Cn), except tab, newline and carriage
/// return, which BERT counts as whitespace.
inline bool is_control(char32_t cp) noexcept {
    if (cp == U'\t' || cp == U'\n' || cp == U'\r') return false;
    switch (category(cp)) {
        case UTF8PROC_CATEGORY_CN:
        case UTF8PROC_CATEGORY_CC:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_CS:
        case UTF8PROC_CATEGORY_CO:
            return true;
        default:
            return false;
    }
}

/// _is_whitespace: space, tab, newline, carriage return and category Zs.
inline bool is_whitespace(char32_t cp) noexcept {
    return cp == U' ' || cp == U'\t' || cp == U'\n' || cp == U'\r' || category(cp) == UTF8PROC_CATEGORY_ZS;
}

/// Characters that Python's str.split() still splits on after _clean_text has dropped every control
/// character and turned every _is_whitespace character into a space: LINE and PARAGRAPH SEPARATOR.
inline bool is_python_split_separator(char32_t cp) noexcept { return cp == 0x2028 || cp == 0x2029; }

/// _is_punctuation: every non-alphanumeric printable ASCII character, plus Unicode category P*.
inline bool is_punctuation(char32_t cp) noexcept {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
        return true;
    const auto c = category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

/// _is_chinese_char: the CJK Unified Ideographs blocks BERT splits into single-character words (the same
/// ranges as transformers 4.40; Hangul, Hiragana and Katakana are not among them).
inline bool is_chinese_char(char32_t cp) noexcept {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
           (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/// Python's str.lower() of one character, which writes at most two code points (out[0], out[1]; returns
/// the count). utf8proc_tolower is the simple one-to-one mapping; Python applies the full mapping of
/// SpecialCasing.txt, whose only unconditional lower-case entry is U+0130 (I WITH DOT ABOVE -> i + U+0307).
/// The conditional Final_Sigma rule never fires because transformers lowers the text one character at a time
/// (its regex `(.+?)` in PreTrainedTokenizer.tokenize), so a capital sigma always becomes U+03C3.
inline int python_lower(char32_t cp, char32_t out[2]) noexcept {
    if (cp == 0x130) {
        out[0] = U'i';
        out[1] = 0x307;
        return 2;
    }
    out[0] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
    return 1;
}

}  // namespace hyperadapt::text::unicode
