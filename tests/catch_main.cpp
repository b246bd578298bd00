// The one Catch2 main for the CPU unit tests; the test cases live in tests/test_*.cpp.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
