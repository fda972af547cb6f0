// Catch's main, and the listing the tests' discovery reads (tests/support/discover_tests.cmake):
// with --list-test-files alone, every test a plain run would run, as "<file>\t<name>" lines.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string_view>

namespace {

// Every file's tests in one run (tests/CMakeLists.txt says why).
int list_test_files() {
    for (auto const& test : Catch::getRegistryHub().getTestCaseRegistry().getAllTests()) {
        if (!test.isHidden()) {
            std::printf("%s\t%s\n", test.lineInfo.file, test.name.c_str());
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
    if (argc == 2 && std::string_view(argv[1]) == "--list-test-files") {
        return list_test_files();
    }
    return Catch::Session().run(argc, argv);
}
