// The translation unit that tests/CMakeLists.txt precompiles the tests' common headers
// through (cluster_test_pch); it has no code of its own.
