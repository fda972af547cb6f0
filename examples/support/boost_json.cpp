// Boost.JSON's sources, compiled once for the examples that use it, as a program builds a
// library it depends on: not again in every file that includes <boost/json.hpp>.
#include <boost/json/src.hpp>
