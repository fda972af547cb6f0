// Application metrics in one include: a worker's registry of counters, gauges and histograms
// and its snapshot, and the primary's aggregate of them, rendered as Prometheus text.
#pragma once

#include <cluster/metrics/aggregate.hpp>
#include <cluster/metrics/counter.hpp>
#include <cluster/metrics/definition.hpp>
#include <cluster/metrics/family.hpp>
#include <cluster/metrics/gauge.hpp>
#include <cluster/metrics/histogram.hpp>
#include <cluster/metrics/registry.hpp>
#include <cluster/metrics/snapshot.hpp>
#include <cluster/metrics/text_format.hpp>
