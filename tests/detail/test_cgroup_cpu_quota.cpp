// detail::cgroup_cpu_quota(): CPU quotas read from fake cgroup v1 and v2 trees (a root the
// test writes /proc/self/cgroup, /proc/self/mountinfo and the quota files under), and
// cpu_count() on the real machine.
#include <sched.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include <cluster/cpu_count.hpp>
#include <cluster/detail/cgroup_cpu_quota.hpp>

#include "support/temp_dir.hpp"

using cluster::detail::cgroup_cpu_quota;

namespace {

// A process's view of its cgroups under a temporary root.
class fake_tree {
public:
    void write(const std::string& path, const std::string& text) const {
        const std::filesystem::path p = dir_.str() + path;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << text;
    }
    [[nodiscard]] const std::string& root() const noexcept { return dir_.str(); }

    // cgroup v2 only, mounted at /sys/fs/cgroup, the process in /kubepods/pod1/app.
    void v2() const {
        write("/proc/self/cgroup", "0::/kubepods/pod1/app\n");
        write("/proc/self/mountinfo", "22 1 0:21 / /sys rw - sysfs sysfs rw\n"
                                      "30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
    }

    // cgroup v1 with cpu and cpuacct mounted together, the process in /docker/abc.
    void v1() const {
        write("/proc/self/cgroup", "5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n");
        write("/proc/self/mountinfo",
              "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
              "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
              "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n");
    }

private:
    support::temp_dir dir_;
};

}  // namespace

TEST_CASE("cgroup v2: cpu.max's quota over its period, rounded up") {
    fake_tree t;
    t.v2();
    t.write("/sys/fs/cgroup/kubepods/pod1/app/cpu.max", "150000 100000\n");
    CHECK(cgroup_cpu_quota(t.root()) == 2u);
    t.write("/sys/fs/cgroup/kubepods/pod1/app/cpu.max", "200000 100000\n");
    CHECK(cgroup_cpu_quota(t.root()) == 2u);
    t.write("/sys/fs/cgroup/kubepods/pod1/app/cpu.max", "10000 100000\n");
    CHECK(cgroup_cpu_quota(t.root()) == 1u);
}

TEST_CASE("cgroup v2: \"max\" is no quota") {
    fake_tree t;
    t.v2();
    t.write("/sys/fs/cgroup/kubepods/pod1/app/cpu.max", "max 100000\n");
    CHECK_FALSE(cgroup_cpu_quota(t.root()));
}

TEST_CASE("cgroup v1: cpu.cfs_quota_us over cpu.cfs_period_us, where the cpu controller is mounted") {
    fake_tree t;
    t.v1();
    t.write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");
    t.write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    CHECK(cgroup_cpu_quota(t.root()) == 3u);
}

TEST_CASE("cgroup v1: a quota of -1 is no quota") {
    fake_tree t;
    t.v1();
    t.write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    t.write("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    CHECK_FALSE(cgroup_cpu_quota(t.root()));
}

TEST_CASE("cgroup v1: a mount whose root is the process's cgroup, as in a container") {
    fake_tree t;
    t.write("/proc/self/cgroup", "3:cpu,cpuacct:/docker/abc\n");
    t.write("/proc/self/mountinfo", "31 30 0:28 /docker/abc /sys/fs/cgroup/cpu ro - cgroup cgroup rw,cpuacct,cpu\n");
    t.write("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000\n");
    t.write("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    CHECK(cgroup_cpu_quota(t.root()) == 1u);
}

TEST_CASE("nested cgroups: a parent's smaller quota limits the child") {
    fake_tree t;
    t.v2();
    t.write("/sys/fs/cgroup/kubepods/pod1/app/cpu.max", "400000 100000\n");
    t.write("/sys/fs/cgroup/kubepods/pod1/cpu.max", "max 100000\n");
    t.write("/sys/fs/cgroup/kubepods/cpu.max", "300000 100000\n");
    CHECK(cgroup_cpu_quota(t.root()) == 3u);
    t.write("/sys/fs/cgroup/kubepods/pod1/app/cpu.max", "100000 100000\n");
    CHECK(cgroup_cpu_quota(t.root()) == 1u);
}

TEST_CASE("malformed quota files are ignored: no quota") {
    fake_tree t;
    t.v2();
    const std::string file = "/sys/fs/cgroup/kubepods/pod1/app/cpu.max";
    for (const char* text : {"", "\n", "garbage", "100000", "100000 0", "-5 100000", "100000 100000 7", "1e5 100000",
                             "100000 abc", "99999999999999999999999 100000"}) {
        INFO(text);
        t.write(file, text);
        CHECK_FALSE(cgroup_cpu_quota(t.root()));
    }
}

TEST_CASE("malformed /proc/self/cgroup or mountinfo: no quota") {
    fake_tree t;
    t.v2();
    t.write("/sys/fs/cgroup/kubepods/pod1/app/cpu.max", "100000 100000\n");
    t.write("/proc/self/cgroup", "nonsense\n::\n");
    CHECK_FALSE(cgroup_cpu_quota(t.root()));
    t.v2();
    t.write("/proc/self/mountinfo", "30 22 0:27 / /sys/fs/cgroup rw cgroup2\n- \n");
    CHECK_FALSE(cgroup_cpu_quota(t.root()));
    CHECK_FALSE(cgroup_cpu_quota(t.root() + "/nowhere"));
}

TEST_CASE("mountinfo's escaped mount points are unescaped") {
    fake_tree t;
    t.write("/proc/self/cgroup", "0::/a\n");
    t.write("/proc/self/mountinfo", "30 22 0:27 / /cg\\040root rw - cgroup2 cgroup2 rw\n");
    t.write("/cg root/a/cpu.max", "300000 100000\n");
    CHECK(cgroup_cpu_quota(t.root()) == 3u);
}

TEST_CASE("cpu_count() on this machine: at least 1, at most the affinity mask") {
    cpu_set_t all;
    REQUIRE(sched_getaffinity(0, sizeof all, &all) == 0);
    const unsigned count = cluster::cpu_count();
    CHECK(count >= 1);
    CHECK(count <= static_cast<unsigned>(CPU_COUNT(&all)));
    const auto quota = cgroup_cpu_quota();
    if (quota) CHECK(count <= *quota);
}
