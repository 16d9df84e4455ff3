#define BOOST_TEST_MODULE io_safetensors
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cmath>
#include <cstring>
#include <limits>

#include "hyperadapt/io/safetensors.hpp"
#include "support/temp_dir.hpp"

using namespace hyperadapt;
using namespace hyperadapt::io;
using hyperadapt::test::temp_dir;

namespace {

/// A safetensors file assembled by hand: `header` verbatim, its length (or `length_override`), then `data`.
std::string raw_file(const std::string& header, const std::string& data, std::uint64_t length_override = 0) {
    const std::uint64_t n = length_override ? length_override : header.size();
    std::string s(8, '\0');
    std::memcpy(s.data(), &n, 8);
    return s + header + data;
}

/// Expects an io_error whose message names the file and contains every fragment.
void expect_io_error(const std::filesystem::path& p, std::initializer_list<std::string> fragments) {
    try {
        safetensors_reader r(p);
        BOOST_ERROR("no error for " << p.filename() << " (" << r.size() << " tensors)");
    } catch (const io_error& e) {
        const std::string msg = e.what();
        BOOST_TEST_MESSAGE("  " << msg);
        BOOST_TEST(msg.find(p.string()) != std::string::npos, "message does not name the file: " << msg);
        for (const auto& f : fragments) BOOST_TEST(msg.find(f) != std::string::npos, "'" << f << "' missing in: " << msg);
    }
}

std::filesystem::path bad_file(const temp_dir& dir, const std::string& name, const std::string& bytes) {
    auto p = dir / name;
    hyperadapt::test::write_bytes(p, bytes);
    return p;
}

template <class T>
std::string bytes_of(std::initializer_list<T> v) {
    std::string s(v.size() * sizeof(T), '\0');
    std::memcpy(s.data(), std::data(v), s.size());
    return s;
}

/// Writes one 16-bit tensor of the given patterns and reads it back as T.
template <class T>
std::vector<T> read_16bit(const temp_dir& dir, dtype type, const std::vector<std::uint16_t>& bits) {
    safetensors_writer w;
    w.add_raw("x", type, {bits.size()}, std::as_bytes(std::span(bits)));
    const auto p = dir / "half.safetensors";
    w.write(p);
    return safetensors_reader(p).read<T>("x");
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_keeps_names_shapes_values_and_metadata) {
    temp_dir dir;
    const std::vector<float> f{1.5f, -2.25f, 3.0e-8f, std::numeric_limits<float>::max(), -0.0f, 7.0f};
    const std::vector<double> d{3.141592653589793, -1e300, 5e-324};
    const std::vector<std::int64_t> i64{0, -1, std::numeric_limits<std::int64_t>::min(), 1LL << 40};
    const std::vector<std::int32_t> i32{7, -7};
    const std::vector<float> scalar{42.0f};
    safetensors_writer w;
    w.add("z.weight", {2, 3}, f);
    w.add("a.double", {3}, d);
    w.add("m.ids", {1, 4}, i64);
    w.add("b.int32", {2}, i32);
    w.add("s.scalar", {}, scalar);
    w.add<float>("e.empty", {0, 5}, std::vector<float>{});
    w.set_metadata("format", "pt");
    const auto p = dir / "model.safetensors";
    w.write(p);

    safetensors_reader r(p);
    BOOST_TEST(r.size() == 6u);
    std::vector<std::string> names;
    for (const auto& e : r.entries()) names.push_back(e.name);
    BOOST_TEST(names == (std::vector<std::string>{"a.double", "b.int32", "e.empty", "m.ids", "s.scalar", "z.weight"}),
               boost::test_tools::per_element());
    BOOST_TEST(r.at("z.weight").shape == (std::vector<std::size_t>{2, 3}), boost::test_tools::per_element());
    BOOST_TEST(dtype_name(r.at("z.weight").type) == "F32");
    BOOST_TEST(dtype_name(r.at("a.double").type) == "F64");
    BOOST_TEST(dtype_name(r.at("m.ids").type) == "I64");
    BOOST_TEST(dtype_name(r.at("b.int32").type) == "I32");
    BOOST_TEST(r.at("s.scalar").shape.empty());
    BOOST_TEST(r.read<float>("z.weight") == f, boost::test_tools::per_element());
    BOOST_TEST(r.read<double>("a.double") == d, boost::test_tools::per_element());
    BOOST_TEST(r.read<std::int64_t>("m.ids") == i64, boost::test_tools::per_element());
    BOOST_TEST(r.read<std::int32_t>("b.int32") == i32, boost::test_tools::per_element());
    BOOST_TEST(r.read<float>("s.scalar") == scalar, boost::test_tools::per_element());
    BOOST_TEST(r.read<float>("e.empty").empty());
    BOOST_TEST(std::signbit(r.read<float>("z.weight")[4]));
    BOOST_TEST(r.metadata().at("format") == "pt");
    BOOST_TEST(!r.contains("nope"));
    BOOST_CHECK_THROW((void)r.at("nope"), io_error);

    // Layout: header length a multiple of 8, padded with spaces, keys in sorted order, every tensor aligned
    // to its element size.
    const auto bytes = hyperadapt::test::read_bytes(p);
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    BOOST_TEST(n % 8 == 0u);
    const std::string header = bytes.substr(8, n);
    BOOST_TEST(header.front() == '{');
    BOOST_TEST(header.find_last_not_of(' ') == header.rfind('}'));
    BOOST_TEST(header.find("\"__metadata__\"") < header.find("\"a.double\""));
    BOOST_TEST(header.find("\"a.double\"") < header.find("\"b.int32\""));
    BOOST_TEST(header.find("\"s.scalar\"") < header.find("\"z.weight\""));
    for (const auto& e : r.entries()) BOOST_TEST(e.begin % dtype_size(e.type) == 0u, e.name);
}

BOOST_AUTO_TEST_CASE(floating_conversions_between_f32_and_f64) {
    temp_dir dir;
    safetensors_writer w;
    w.add("f", {3}, std::vector<float>{0.1f, -3.5f, 1e-40f});
    w.add("d", {2}, std::vector<double>{0.1, -2.5});
    w.add("big", {1}, std::vector<double>{1e300});
    w.write(dir / "c.safetensors");
    safetensors_reader r(dir / "c.safetensors");
    const auto fd = r.read<double>("f");
    BOOST_TEST(fd[0] == static_cast<double>(0.1f));  // widening is exact
    BOOST_TEST(fd[2] == static_cast<double>(1e-40f));
    const auto df = r.read<float>("d");
    BOOST_TEST(df[0] == 0.1f);  // narrowing rounds to nearest
    BOOST_TEST(df[1] == -2.5f);
    BOOST_CHECK_EXCEPTION((void)r.read<float>("big"), io_error, [](const io_error& e) {
        return std::string(e.what()).find("tensor 'big'") != std::string::npos &&
               std::string(e.what()).find("overflows float") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(f16_known_bit_patterns) {
    temp_dir dir;
    const std::vector<std::uint16_t> bits{0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x8000, 0x7C00, 0xFC00, 0x3555};
    const auto v = read_16bit<float>(dir, dtype::f16, bits);
    BOOST_TEST(v[0] == 1.0f);
    BOOST_TEST(v[1] == -2.0f);
    BOOST_TEST(v[2] == 65504.0f);                      // largest half
    BOOST_TEST(v[3] == std::ldexp(1.0f, -24));         // smallest subnormal
    BOOST_TEST(v[4] == std::ldexp(1023.0f, -24));      // largest subnormal
    BOOST_TEST(v[5] == std::ldexp(1.0f, -14));         // smallest normal
    BOOST_TEST((v[6] == 0.0f && std::signbit(v[6])));  // -0
    BOOST_TEST((std::isinf(v[7]) && v[7] > 0));
    BOOST_TEST((std::isinf(v[8]) && v[8] < 0));
    BOOST_TEST(v[9] == 0.333251953125f);
    BOOST_TEST(std::isnan(read_16bit<float>(dir, dtype::f16, {0x7E00})[0]));
    const auto d = read_16bit<double>(dir, dtype::f16, {0x3555, 0x0001});
    BOOST_TEST(d[0] == 0.333251953125);
    BOOST_TEST(d[1] == std::ldexp(1.0, -24));
}

BOOST_AUTO_TEST_CASE(bf16_known_bit_patterns) {
    temp_dir dir;
    const auto v = read_16bit<float>(dir, dtype::bf16, {0x3F80, 0xC049, 0x0001, 0x7F80, 0x7F7F, 0x8000});
    BOOST_TEST(v[0] == 1.0f);
    BOOST_TEST(v[1] == -3.140625f);
    BOOST_TEST(v[2] == std::ldexp(1.0f, -133));  // bfloat16's smallest subnormal
    BOOST_TEST(std::isinf(v[3]));
    BOOST_TEST(v[4] == 3.3895313892515355e38f);  // largest finite bfloat16
    BOOST_TEST(std::signbit(v[5]));
    BOOST_TEST(std::isnan(read_16bit<double>(dir, dtype::bf16, {0x7FC0})[0]));
}

BOOST_AUTO_TEST_CASE(half_conversions_round_trip_every_pattern_and_round_to_nearest_even) {
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        const auto b = static_cast<std::uint16_t>(h);
        const float f16 = f16_to_float(b), bf = bf16_to_float(b);
        if (!std::isnan(f16) && float_to_f16(f16) != b) BOOST_FAIL("F16 pattern " << h << " does not round-trip");
        if (!std::isnan(bf) && float_to_bf16(bf) != b) BOOST_FAIL("BF16 pattern " << h << " does not round-trip");
        if (std::isnan(f16)) BOOST_TEST(std::isnan(f16_to_float(float_to_f16(f16))));
    }
    BOOST_TEST(float_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);      // tie -> even (down)
    BOOST_TEST(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);  // tie -> even (up)
    BOOST_TEST(float_to_f16(65520.0f) == 0x7C00);                          // rounds past the largest half
    BOOST_TEST(float_to_f16(std::ldexp(1.0f, -25)) == 0x0000);             // tie at half the smallest subnormal
    BOOST_TEST(float_to_f16(std::ldexp(1.5f, -25)) == 0x0001);
    BOOST_TEST(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);      // tie -> even
    BOOST_TEST(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3F82);
}

BOOST_AUTO_TEST_CASE(integer_conversions_are_range_checked) {
    temp_dir dir;
    safetensors_writer w;
    w.add("small", {3}, std::vector<std::int64_t>{101, 2054, -5});
    w.add("huge", {2}, std::vector<std::int64_t>{1, 3000000000LL});
    const std::vector<std::uint8_t> mask{1, 0, 1};
    w.add_raw("mask", dtype::boolean, {3}, std::as_bytes(std::span(mask)));
    const std::vector<std::uint64_t> u{std::numeric_limits<std::uint64_t>::max()};
    w.add_raw("u64", dtype::u64, {1}, std::as_bytes(std::span(u)));
    w.add("f", {1}, std::vector<float>{1.0f});
    const auto p = dir / "ints.safetensors";
    w.write(p);
    safetensors_reader r(p);
    BOOST_TEST(r.read<std::int32_t>("small") == (std::vector<std::int32_t>{101, 2054, -5}), boost::test_tools::per_element());
    BOOST_TEST(r.read<std::int64_t>("huge")[1] == 3000000000LL);
    BOOST_TEST(r.read<std::int32_t>("mask") == (std::vector<std::int32_t>{1, 0, 1}), boost::test_tools::per_element());
    auto names = [&](const std::string& tensor, const std::string& fault) {
        return [=](const io_error& e) {
            const std::string m = e.what();
            BOOST_TEST_MESSAGE("  " << m);
            return m.find(p.string()) != std::string::npos && m.find("'" + tensor + "'") != std::string::npos &&
                   m.find(fault) != std::string::npos;
        };
    };
    BOOST_CHECK_EXCEPTION((void)r.read<std::int32_t>("huge"), io_error, names("huge", "value 3000000000 at index 1 does not fit int32"));
    BOOST_CHECK_EXCEPTION((void)r.read<std::int64_t>("u64"), io_error, names("u64", "does not fit int64"));
    BOOST_CHECK_EXCEPTION((void)r.read<std::int64_t>("f"), io_error, names("f", "dtype F32 cannot be read as int64"));
    BOOST_CHECK_EXCEPTION((void)r.read<float>("small"), io_error, names("small", "dtype I64 cannot be read as float"));
    std::vector<float> wrong(2);
    BOOST_CHECK_THROW(r.read_into(r.at("f"), std::span<float>(wrong)), shape_error);
}

BOOST_AUTO_TEST_CASE(malformed_files_are_io_errors_naming_the_file_and_the_fault) {
    temp_dir dir;
    const std::string ok_entry = R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    const std::string eight(8, '\x01');
    // A well-formed baseline, so that each case below differs from a valid file by one fault.
    BOOST_CHECK_NO_THROW(safetensors_reader(bad_file(dir, "ok.safetensors", raw_file("{" + ok_entry + "}", eight))));

    expect_io_error(bad_file(dir, "empty.safetensors", ""), {"0 bytes long", "too short"});
    expect_io_error(bad_file(dir, "tiny.safetensors", "abc"), {"3 bytes long"});
    expect_io_error(bad_file(dir, "beyond.safetensors", raw_file("{}", "", 4096)), {"header length 4096 exceeds the 2 bytes"});
    expect_io_error(bad_file(dir, "json.safetensors", raw_file("{\"x\": {\"dtype\": ", "")), {"not valid JSON"});
    expect_io_error(bad_file(dir, "array.safetensors", raw_file("[1, 2]", "")), {"not an object", "array"});
    expect_io_error(bad_file(dir, "nooffsets.safetensors", raw_file(R"({"x":{"dtype":"F32","shape":[2]}})", eight)),
                    {"tensor 'x'", "no 'data_offsets'"});
    expect_io_error(bad_file(dir, "range.safetensors",
                             raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[10,18]}})", eight)),
                    {"tensor 'x'", "data_offsets [10, 18) exceed the data section of 8 bytes"});
    expect_io_error(bad_file(dir, "backwards.safetensors",
                             raw_file(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", eight)),
                    {"tensor 'x'", "end before they begin"});
    expect_io_error(bad_file(dir, "overlap.safetensors",
                             raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                      eight + "\x02\x02\x02\x02")),
                    {"'a' [0, 8)", "'b' [4, 12)", "overlap"});
    expect_io_error(bad_file(dir, "size.safetensors",
                             raw_file(R"({"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,8]}})", eight)),
                    {"tensor 'x'", "shape [2, 3] of F32 needs 24 bytes", "hold 8"});
    expect_io_error(bad_file(dir, "dtype.safetensors",
                             raw_file(R"({"x":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", eight)),
                    {"tensor 'x'", "unknown dtype 'F17'"});
    expect_io_error(bad_file(dir, "negative.safetensors",
                             raw_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight)),
                    {"tensor 'x'", "not a non-negative integer"});
    expect_io_error(bad_file(dir, "meta.safetensors", raw_file("{\"__metadata__\":{\"n\":3}," + ok_entry + "}", eight)),
                    {"__metadata__ entry 'n' is not a string"});
    expect_io_error(bad_file(dir, "dup.safetensors", raw_file("{" + ok_entry + "," + ok_entry + "}", eight)),
                    {"names 'x' twice"});
    expect_io_error(bad_file(dir, "hole.safetensors",
                             raw_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight)),
                    {"bytes [0, 4)", "belong to no tensor"});
    expect_io_error(bad_file(dir, "trailing.safetensors", raw_file("{" + ok_entry + "}", eight + "zz")),
                    {"2 trailing bytes"});

    // A real file cut short, as by an interrupted download.
    safetensors_writer w;
    w.add("w", {4, 4}, std::vector<float>(16, 1.0f));
    w.write(dir / "full.safetensors");
    const auto full = hyperadapt::test::read_bytes(dir / "full.safetensors");
    expect_io_error(bad_file(dir, "cut.safetensors", full.substr(0, full.size() - 10)),
                    {"tensor 'w'", "exceed the data section of 54 bytes"});

    try {
        safetensors_reader r(dir / "missing.safetensors");
        BOOST_ERROR("no error for a missing file");
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()).find("missing.safetensors: cannot open") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(writer_rejects_inconsistent_tensors) {
    safetensors_writer w;
    w.add("a", {2}, std::vector<float>{1, 2});
    BOOST_CHECK_THROW(w.add("a", {2}, std::vector<float>{1, 2}), io_error);
    BOOST_CHECK_THROW(w.add("b", {3}, std::vector<float>{1, 2}), shape_error);
    BOOST_CHECK_THROW(w.add("__metadata__", {1}, std::vector<float>{1}), io_error);
}

BOOST_AUTO_TEST_CASE(atomic_write_replaces_the_file_and_leaves_no_temporary) {
    temp_dir dir;
    const auto p = dir / "m.safetensors";
    for (float v : {1.0f, 2.0f}) {
        safetensors_writer w;
        w.add("x", {1}, std::vector<float>{v});
        w.write(p);
        BOOST_TEST(safetensors_reader(p).read<float>("x")[0] == v);
        BOOST_TEST(dir.entries() == std::vector<std::string>{"m.safetensors"}, boost::test_tools::per_element());
    }
    BOOST_TEST(temporary_path_for(p).filename().string().rfind("m.safetensors.tmp.", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(failed_write_keeps_the_old_file) {
    temp_dir dir;
    const auto p = dir / "m.safetensors";
    safetensors_writer good;
    good.add("x", {1}, std::vector<float>{1.0f});
    good.write(p);
    const auto before = hyperadapt::test::read_bytes(p);

    // A producer that fails half-way.
    BOOST_CHECK_THROW(write_file_atomically(p,
                                            [](file_sink& s) {
                                                s.write("partial");
                                                throw io_error("producer failed");
                                            }),
                      io_error);
    BOOST_TEST(hyperadapt::test::read_bytes(p) == before);
    BOOST_TEST(dir.entries() == std::vector<std::string>{"m.safetensors"}, boost::test_tools::per_element());

    // The file system refusing the data: a file-size limit below the new file's size makes write() fail
    // with EFBIG (the signal that would otherwise end the process is ignored meanwhile).
    safetensors_writer big;
    big.add("x", {1 << 16}, std::vector<float>(1 << 16, 3.0f));
    {
        struct limit_guard {
            rlimit old{};
            void (*old_handler)(int) = nullptr;
            limit_guard() {
                ::getrlimit(RLIMIT_FSIZE, &old);
                old_handler = std::signal(SIGXFSZ, SIG_IGN);
                rlimit tight = old;
                tight.rlim_cur = 4096;
                ::setrlimit(RLIMIT_FSIZE, &tight);
            }
            ~limit_guard() {
                ::setrlimit(RLIMIT_FSIZE, &old);
                std::signal(SIGXFSZ, old_handler);
            }
        } guard;
        try {
            big.write(p);
            BOOST_ERROR("the write past the file-size limit did not fail");
        } catch (const io_error& e) {
            BOOST_TEST_MESSAGE("  " << e.what());
            BOOST_TEST(std::string(e.what()).find(p.string() + ": write failed") != std::string::npos, e.what());
        }
    }
    BOOST_TEST(hyperadapt::test::read_bytes(p) == before);
    BOOST_TEST(safetensors_reader(p).read<float>("x")[0] == 1.0f);
    BOOST_TEST(dir.entries() == std::vector<std::string>{"m.safetensors"}, boost::test_tools::per_element());

    // A directory that does not exist: nothing is created, and the error names the path.
    BOOST_CHECK_EXCEPTION(good.write(dir / "no" / "such" / "dir.safetensors"), io_error, [](const io_error& e) {
        return std::string(e.what()).find("dir.safetensors") != std::string::npos;
    });
}

// A header whose shape nests a million arrays deep (2 MB): the reader once built its message with a
// recursive dump() and overflowed the stack. The parse now stops at io::max_json_depth, naming the tensor
// and the field.
BOOST_AUTO_TEST_CASE(deeply_nested_header_is_refused_naming_tensor_and_field) {
    temp_dir dir;
    constexpr std::size_t depth = 1'000'000;
    const std::string shape = std::string(depth, '[') + std::string(depth, ']');
    expect_io_error(bad_file(dir, "deep_shape.safetensors",
                             raw_file(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})", "")),
                    {"JSON nested deeper than 64 levels", "'w' > 'shape'"});
    expect_io_error(bad_file(dir, "deep_offsets.safetensors",
                             raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":)" + shape + "}}", "")),
                    {"JSON nested deeper than 64 levels", "'w' > 'data_offsets'"});
    // Within the limit, a nested shape entry is described, not printed.
    expect_io_error(bad_file(dir, "nested_entry.safetensors",
                             raw_file(R"({"w":{"dtype":"F32","shape":[2,[[3]]],"data_offsets":[0,8]}})", "")),
                    {"tensor 'w'", "shape entry 1 is an array of 1 elements, not a non-negative integer"});
}

// A FIFO, a directory or a device under a checkpoint's name is refused at once, naming the path: open()
// of a FIFO used to wait for a writer forever.
BOOST_AUTO_TEST_CASE(only_regular_files_are_read) {
    temp_dir dir;
    const auto fifo = dir / "model.safetensors";
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    expect_io_error(fifo, {"is a FIFO (named pipe), not a regular file"});
    std::filesystem::create_directory(dir / "folder.safetensors");
    expect_io_error(dir / "folder.safetensors", {"is a directory, not a regular file"});
    BOOST_CHECK_EXCEPTION(safetensors_reader("/dev/zero"), io_error, [](const io_error& e) {
        return std::string(e.what()) == "/dev/zero: is a character device, not a regular file";
    });
    expect_io_error(dir / "absent.safetensors", {"cannot open (No such file or directory)"});
}

// nlohmann refuses to serialize a string that is not UTF-8 with its own type_error; the writer turns that
// into an io_error naming the file, and writes nothing.
BOOST_AUTO_TEST_CASE(writer_refuses_names_and_metadata_that_are_not_utf8) {
    temp_dir dir;
    safetensors_writer w;
    w.add("x", {1}, std::vector<float>{1.0f});
    w.set_metadata("note", "caf\xE9");
    const auto p = dir / "m.safetensors";
    BOOST_CHECK_EXCEPTION(w.write(p), io_error, [&](const io_error& e) {
        BOOST_TEST_MESSAGE("  " << e.what());
        return std::string(e.what()).find(p.string() + ": cannot write the header") == 0;
    });
    BOOST_TEST(dir.entries().empty());
}

BOOST_AUTO_TEST_CASE(json_summary_describes_without_printing_containers) {
    BOOST_TEST(json_summary(nlohmann::json::parse(R"([[1], {"a": [2]}])")) == "an array of 2 elements");
    BOOST_TEST(json_summary(nlohmann::json::parse(R"({"a": 1})")) == "an object of 1 members");
    BOOST_TEST(json_summary(nlohmann::json(-3)) == "-3");
    BOOST_TEST(json_summary(nlohmann::json("F32")) == "\"F32\"");
    // A long string is cut at 60 characters, the mark inside the closing quote, escapes kept whole.
    std::string escaped;
    for (int i = 0; i < 60; ++i) escaped += "\\\"";
    BOOST_TEST(json_summary(nlohmann::json(std::string(70, '"'))) == "\"" + escaped + "...\"");
    // A cut through a UTF-8 sequence is printed, not thrown.
    std::string accents = "a";
    for (int i = 0; i < 40; ++i) accents += "\xC3\xA9";
    BOOST_CHECK_NO_THROW((void)json_summary(nlohmann::json(accents)));
}
