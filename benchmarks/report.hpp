// What every benchmark says: its usage when asked, and at its end one JSON object per figure,
// one per line, each beside the baseline measured in the same run; and the median of repeats.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// With --help or -h, prints the usage (a benchmark takes no other argument) and what it
// measures, and returns true: the benchmark then exits 0, having measured nothing.
inline bool answered_help(int argc, char** argv, const char* measures) {
    if (std::none_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; }))
        return false;
    std::printf("usage: %s\n%s", argv[0], measures);
    return true;
}

struct figure {
    std::string name;
    double value;
    std::string unit;
    std::string baseline;
    double baseline_value;
    std::string better;  // "lower" or "higher"
    std::string target;  // e.g. "ratio <= 1.10"
};

inline void print(const figure& f) {
    std::printf("{\"name\": \"%s\", \"value\": %.4g, \"unit\": \"%s\", \"baseline\": \"%s\", \"baseline_value\": %.4g, "
                "\"ratio\": %.4g, \"better\": \"%s\", \"target\": \"%s\"}\n",
                f.name.c_str(), f.value, f.unit.c_str(), f.baseline.c_str(), f.baseline_value,
                f.baseline_value != 0 ? f.value / f.baseline_value : 0.0, f.better.c_str(), f.target.c_str());
    std::fflush(stdout);
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace bench
