// Everything cluster offers, in one include.
// Layers, bottom to top: io (runtime), wire (typed messages), ipc (channels), cluster.
#pragma once

#include <cluster/io.hpp>
#include <cluster/ipc.hpp>
#include <cluster/wire.hpp>
