# Conan 2 recipe of cluster, for `conan create .` from a checkout: the version is CMakeLists.txt's,
# the options choose the optional components as CLUSTER_WITH_<COMPONENT> (cmake/components.cmake),
# and package_info declares the CMake targets the project's own install exports.
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir
from conan.tools.gnu import PkgConfigDeps

required_conan_version = ">=2.0"


class ClusterConan(ConanFile):
    name = "cluster"
    description = "Node.js's cluster module for C++20: a primary forks, supervises and feeds worker processes, with typed messages, io_uring and coroutines."
    # LICENSE says why this is not an SPDX name yet.
    license = "MIT"
    topics = ("cluster", "io_uring", "coroutines", "multiprocess", "supervisor")
    # cluster::core is compiled (libcluster_core.a), so a package is one per settings, not
    # header-only: package_id keeps them.
    package_type = "static-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_asio": [True, False],
        "with_http": [True, False],
        "with_websocket": [True, False],
        "with_redis": [True, False],
        "tools": [True, False],
    }
    default_options = {
        # cluster::asio needs only Boost, which the package requires anyway.
        "with_asio": True,
        "with_http": False,
        "with_websocket": False,
        "with_redis": False,
        "tools": False,
        # cluster uses Boost's headers only; clusterctl compiles Boost.JSON's sources itself.
        "boost/*:header_only": True,
    }
    exports_sources = "CMakeLists.txt", "LICENSE", "cmake/*", "include/*", "tools/*"

    def set_version(self):
        text = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = re.search(r"project\(cluster VERSION ([0-9.]+)", text).group(1)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        self.requires("liburing/[>=2.3 <3]")
        self.requires("boost/[>=1.81 <2]")
        if self.options.with_http:
            self.requires("llhttp/[>=8 <10]")
        if self.options.with_websocket:
            self.requires("wslay/[>=1.1 <2]")
        if self.options.with_redis:
            self.requires("hiredis/[>=1.0 <2]")

    def build_requirements(self):
        # The build finds hiredis through pkg-config (cmake/components.cmake).
        if self.options.with_redis:
            self.tool_requires("pkgconf/[>=2 <3]")

    def validate(self):
        if self.settings.os != "Linux":
            raise ConanInvalidConfiguration("cluster runs on Linux: io_uring, pidfds, signalfd")
        check_min_cppstd(self, 20)
        if self.options.with_websocket and not self.options.with_http:
            raise ConanInvalidConfiguration("cluster's with_websocket needs with_http: cluster::websocket builds on cluster::http")

    def generate(self):
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["CLUSTER_INSTALL"] = True
        toolchain.cache_variables["CLUSTER_BUILD_TESTS"] = False
        toolchain.cache_variables["CLUSTER_BUILD_EXAMPLES"] = False
        toolchain.cache_variables["CLUSTER_BUILD_BENCHMARKS"] = False
        toolchain.cache_variables["CLUSTER_BUILD_TOOLS"] = bool(self.options.tools)
        for component in ("asio", "http", "websocket", "redis"):
            on = bool(self.options.get_safe(f"with_{component}"))
            toolchain.cache_variables[f"CLUSTER_WITH_{component.upper()}"] = "ON" if on else "OFF"
        toolchain.generate()
        CMakeDeps(self).generate()
        if self.options.with_redis:
            PkgConfigDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()
        # Consumers get CMakeDeps' and PkgConfigDeps' files, made from package_info.
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "cluster")
        # The package's own target would be cluster::cluster, which is the header-only
        # component's: this one, linking every component, is not one the install exports.
        self.cpp_info.set_property("cmake_target_name", "cluster::cluster_all_unofficial")
        self.cpp_info.set_property("pkg_config_name", "cluster_all_unofficial")

        headers = self.cpp_info.components["cluster"]
        headers.set_property("cmake_target_name", "cluster::cluster")
        headers.set_property("pkg_config_name", "cluster")
        headers.libdirs = []
        headers.bindirs = []
        headers.system_libs = ["pthread"]
        headers.requires = ["liburing::liburing", "boost::headers"]

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "cluster::core")
        core.set_property("pkg_config_name", "cluster-core")
        core.libs = ["cluster_core"]
        core.defines = ["CLUSTER_SEPARATE_COMPILATION"]
        core.requires = ["cluster"]

        if self.options.with_asio:
            asio = self.cpp_info.components["asio"]
            asio.set_property("cmake_target_name", "cluster::asio")
            asio.libdirs = []
            asio.requires = ["cluster"]
        if self.options.with_http:
            http = self.cpp_info.components["http"]
            http.set_property("cmake_target_name", "cluster::http")
            http.libdirs = []
            http.requires = ["cluster", "llhttp::llhttp"]
        if self.options.with_websocket:
            websocket = self.cpp_info.components["websocket"]
            websocket.set_property("cmake_target_name", "cluster::websocket")
            websocket.libdirs = []
            websocket.requires = ["http", "wslay::wslay"]
        if self.options.with_redis:
            redis = self.cpp_info.components["redis"]
            redis.set_property("cmake_target_name", "cluster::redis")
            redis.libdirs = []
            redis.requires = ["cluster", "hiredis::hiredislib"]
