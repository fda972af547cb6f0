// cluster::detail::cgroup_cpu_quota(): the CPUs a process's cgroups let it use — the smallest
// quota (cgroup v2 cpu.max, v1 cpu.cfs_quota_us) on its way up to the hierarchy's root.
#pragma once

#include <cluster/config.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cluster::detail {

// A cgroup hierarchy the process is in: where it is mounted, and the process's directory in it.
struct cgroup_place {
    bool v2 = false;
    std::string mount_point;  // as mounted, e.g. /sys/fs/cgroup
    std::string directory;    // the process's cgroup directory: mount_point or below it
};

// The hierarchies with a CPU quota to read: cgroup2, and v1's with the cpu controller.
// `root` prefixes every path read (/proc/self/cgroup, /proc/self/mountinfo, the mount
// points), so that a test can give a fake tree; empty on a real machine.
[[nodiscard]] CLUSTER_DECL std::vector<cgroup_place> cpu_cgroups(const std::string& root);

// The quota of one cgroup directory, in whole CPUs rounded up (at least 1); none if it has
// no quota or its files cannot be read or parsed.
[[nodiscard]] CLUSTER_DECL std::optional<unsigned> cpu_quota_of(const cgroup_place& place,
                                                                const std::string& directory);

// The smallest quota from the process's cgroups up to each hierarchy's root; none if none
// has one (a parent's quota limits its children too).
[[nodiscard]] CLUSTER_DECL std::optional<unsigned> cgroup_cpu_quota(const std::string& root = {});

// A cgroup's quota and period as CPUs, rounded up; none for no quota ("max", -1) or nonsense.
[[nodiscard]] CLUSTER_DECL std::optional<unsigned> quota_cpus(std::string_view quota, std::string_view period);

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/cgroup_cpu_quota.ipp>
#endif
