// Boost.JSON's sources, compiled once into clusterctl, as a program builds a library it
// depends on: not again in every file that includes <boost/json.hpp>.
#include <boost/json/src.hpp>
