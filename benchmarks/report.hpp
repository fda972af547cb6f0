// What every benchmark ends with: one JSON object per figure, one per line, each beside
// the baseline measured in the same run; and the median of repeated measurements.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace bench {

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
