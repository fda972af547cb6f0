// cluster::detail::cgroup_cpu_quota()'s definitions: /proc/self/cgroup, /proc/self/mountinfo
// and the quota files read. Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/detail/cgroup_cpu_quota.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

namespace cluster::detail {

namespace cgroup_files {

inline std::optional<std::string> read(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::vector<std::string_view> split(std::string_view s, char by) {
    std::vector<std::string_view> parts;
    for (std::size_t from = 0;;) {
        const auto at = s.find(by, from);
        parts.push_back(s.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from));
        if (at == std::string_view::npos) return parts;
        from = at + 1;
    }
}

inline std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

inline bool has(const std::vector<std::string_view>& list, std::string_view item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

// mountinfo writes a space in a path as \040, and so on.
inline std::string unescaped(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const bool octal = s[i] == '\\' && i + 3 < s.size() &&
                           std::all_of(&s[i + 1], &s[i + 1] + 3, [](char c) { return c >= '0' && c <= '7'; });
        if (!octal) {
            out += s[i];
            continue;
        }
        out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
        i += 3;
    }
    return out;
}

// One mount of a cgroup hierarchy: the cgroup at its root, and where it is mounted.
struct cgroup_mount {
    std::string cgroup_root;
    std::string point;
};

// The cgroup2 mount (v2) or the v1 mount with the cpu controller, from mountinfo.
inline std::optional<cgroup_mount> find_mount(const std::string& mountinfo, bool v2) {
    for (const auto& line : lines(mountinfo)) {
        const auto fields = split(line, ' ');
        const auto dash = std::find(fields.begin(), fields.end(), "-");
        if (dash - fields.begin() < 5 || fields.end() - dash < 4) continue;
        const std::string_view type = dash[1];
        const bool matches = v2 ? type == "cgroup2" : type == "cgroup" && has(split(dash[3], ','), "cpu");
        if (matches) return cgroup_mount{unescaped(fields[3]), unescaped(fields[4])};
    }
    return std::nullopt;
}

// `path` below the mount's own cgroup, as a directory under the mount point; none if it is not below it.
inline std::optional<std::string> directory_of(const cgroup_mount& m, std::string_view path) {
    const std::string_view base = m.cgroup_root == "/" ? std::string_view{} : std::string_view{m.cgroup_root};
    if (path.substr(0, base.size()) != base) return std::nullopt;
    const std::string_view below = path.substr(base.size());
    if (!below.empty() && below.front() != '/') return std::nullopt;
    std::string dir = m.point;
    if (below != "/") dir += below;
    return dir;
}

template <class Int>
std::optional<Int> number(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
    Int value{};
    const auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (err != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return value;
}

}  // namespace cgroup_files

CLUSTER_DECL std::optional<unsigned> quota_cpus(std::string_view quota, std::string_view period) {
    const auto q = cgroup_files::number<std::int64_t>(quota);
    const auto p = cgroup_files::number<std::int64_t>(period);
    if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
    const std::int64_t cpus = *q / *p + (*q % *p != 0);
    return static_cast<unsigned>(std::min<std::int64_t>(cpus, std::numeric_limits<unsigned>::max()));
}

CLUSTER_DECL std::vector<cgroup_place> cpu_cgroups(const std::string& root) {
    std::vector<cgroup_place> places;
    const auto membership = cgroup_files::read(root + "/proc/self/cgroup");
    const auto mountinfo = cgroup_files::read(root + "/proc/self/mountinfo");
    if (!membership || !mountinfo) return places;
    for (const auto& line : cgroup_files::lines(*membership)) {
        // hierarchy-id:controllers:path, where the path may itself hold a ':'
        const auto first = line.find(':');
        const auto second = first == std::string::npos ? first : line.find(':', first + 1);
        if (second == std::string::npos) continue;
        const std::string_view id = std::string_view(line).substr(0, first);
        const std::string_view controllers = std::string_view(line).substr(first + 1, second - first - 1);
        const std::string_view path = std::string_view(line).substr(second + 1);
        const bool v2 = id == "0" && controllers.empty();
        if (!v2 && !cgroup_files::has(cgroup_files::split(controllers, ','), "cpu")) continue;
        const auto mount = cgroup_files::find_mount(*mountinfo, v2);
        if (!mount) continue;
        if (auto dir = cgroup_files::directory_of(*mount, path))
            places.push_back(cgroup_place{v2, root + mount->point, root + *dir});
    }
    return places;
}

CLUSTER_DECL std::optional<unsigned> cpu_quota_of(const cgroup_place& place, const std::string& directory) {
    if (place.v2) {
        const auto max = cgroup_files::read(directory + "/cpu.max");
        if (!max) return std::nullopt;
        const auto fields = cgroup_files::split(*max, ' ');
        if (fields.size() != 2) return std::nullopt;
        return quota_cpus(fields[0], fields[1]);
    }
    const auto quota = cgroup_files::read(directory + "/cpu.cfs_quota_us");
    const auto period = cgroup_files::read(directory + "/cpu.cfs_period_us");
    if (!quota || !period) return std::nullopt;
    return quota_cpus(*quota, *period);
}

CLUSTER_DECL std::optional<unsigned> cgroup_cpu_quota(const std::string& root) {
    std::optional<unsigned> smallest;
    for (const auto& place : cpu_cgroups(root)) {
        for (std::string dir = place.directory;; dir.erase(dir.rfind('/'))) {
            if (auto q = cpu_quota_of(place, dir); q && (!smallest || *q < *smallest)) smallest = q;
            if (dir.size() <= place.mount_point.size() || dir.rfind('/') == std::string::npos) break;
        }
    }
    return smallest;
}

}  // namespace cluster::detail
