// Boost.JSON's sources, compiled once for the tests that parse what cluster writes as JSON:
// a test's check must not be cluster's own escaper checking itself.
#include <boost/json/src.hpp>
