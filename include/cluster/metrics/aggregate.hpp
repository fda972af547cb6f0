// cluster::metrics aggregate: the primary's view of its workers' application metrics — each
// live worker's last snapshot and the retired workers' totals — combined into one page.
#pragma once

#include <cluster/detail/utf8.hpp>
#include <cluster/metrics/definition.hpp>
#include <cluster/metrics/registry.hpp>
#include <cluster/metrics/snapshot.hpp>
#include <cluster/metrics/text_format.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace cluster::metrics {

// What one worker's snapshot may make the primary hold. A snapshot past any of these is
// refused whole, and the worker's previous one stands.
struct aggregate_limits {
    std::size_t families = max_families;
    std::size_t series = 100'000;               // over all its families
    std::size_t bytes = std::size_t{16} << 20;  // its names, help, label values and values, as held
    // The label sets one family keeps for retired workers: each worker's are bounded, but
    // generations of workers with label values that change would add up without end.
    std::size_t retired_series = 100'000;
};

struct update_result {
    bool accepted = true;  // false: past a limit, which refusal names; nothing changed
    std::string refusal;
    std::vector<std::string> skipped;  // families left out of an accepted snapshot, each with why
};

// Combines what workers report, as the built-in counters are:
//   counters and histograms  summed per label set over the live workers and the retired
//                            ones (their last report), so the cluster's never go down
//   gauges                   summed per label set over the live workers only: a retired
//                            worker's in-flight requests or queue are gone with it
// A family is defined by the first worker that reports it, for as long as a live worker
// reports it so; a worker's family that disagrees (another build during an upgrade) or breaks
// a rule is skipped and counted, never rendered. Once no live worker reports a family, the
// next definition reported replaces it, and its retired totals with it: they were another
// family's samples, and an upgraded build's metrics must not stay hidden behind them for good.
// Not thread-safe: the primary's loop owns it. No I/O.
class aggregate {
public:
    explicit aggregate(aggregate_limits limits = {}) : limits_(limits) {}

    // Replaces what `worker` reported before with `snapshot`, its registry as it is now.
    update_result update(unsigned worker, registry_snapshot snapshot) {
        update_result result;
        result.refusal = limit_problem(snapshot);
        if (!result.refusal.empty()) {
            ++snapshots_refused_;
            result.accepted = false;
            return result;
        }
        std::set<std::string> reported;
        for (auto& f : snapshot.families) {
            std::string name = f.definition.name;  // take() moves the definition
            auto problem = reported.contains(name) ? "metric family '" + name + "' is reported twice" : take(worker, f);
            if (problem.empty()) {
                reported.insert(std::move(name));
            } else {
                ++families_skipped_;
                result.skipped.push_back(std::move(problem));
            }
        }
        forget_unreported(worker, reported);
        worker_families_[worker] = std::move(reported);
        return result;
    }

    // The worker has exited: its counters and histograms, as it last reported them, join the
    // retired totals; its gauges go.
    void retire(unsigned worker) {
        const auto w = worker_families_.find(worker);
        if (w == worker_families_.end()) return;
        for (const auto& name : w->second) {
            const auto f = families_.find(name);
            auto& state = f->second;
            const auto live = state.live.find(worker);
            if (state.definition.type != metric_type::gauge) fold(state, live->second);
            state.live.erase(live);
            if (state.empty()) families_.erase(f);
        }
        worker_families_.erase(w);
    }

    // Every family once, by name; each label set once, by its values.
    void render(text_writer& out) const {
        for (const auto& [name, state] : families_) render_family(out, state);
    }

    [[nodiscard]] std::size_t workers() const noexcept { return worker_families_.size(); }
    [[nodiscard]] std::uint64_t families_skipped() const noexcept { return families_skipped_; }
    [[nodiscard]] std::uint64_t snapshots_refused() const noexcept { return snapshots_refused_; }
    [[nodiscard]] std::uint64_t retired_series_dropped() const noexcept { return retired_series_dropped_; }

private:
    struct totals {
        std::vector<std::uint64_t> counts;
        double value = 0;

        void add(const series_snapshot& s) {
            if (counts.size() < s.counts.size()) counts.resize(s.counts.size());
            for (std::size_t i = 0; i < s.counts.size(); ++i) counts[i] += s.counts[i];
            value += s.value;
        }
    };
    struct family_state {
        family_definition definition;
        std::map<unsigned, std::vector<series_snapshot>> live;  // by worker
        std::map<std::vector<std::string>, totals> retired;     // by label values

        [[nodiscard]] bool empty() const noexcept { return live.empty() && retired.empty(); }
    };
    struct deref_less {
        bool operator()(const std::vector<std::string>* a, const std::vector<std::string>* b) const noexcept {
            return *a < *b;
        }
    };

    static std::size_t held_bytes(const family_snapshot& f) {
        const auto& d = f.definition;
        std::size_t n = sizeof f + d.name.size() + d.help.size() + d.buckets.size() * sizeof(double);
        for (const auto& l : d.label_names) n += sizeof l + l.size();
        for (const auto& s : f.series) {
            n += sizeof s + s.counts.size() * sizeof(std::uint64_t);
            for (const auto& v : s.labels) n += sizeof v + v.size();
        }
        return n;
    }

    [[nodiscard]] std::string limit_problem(const registry_snapshot& snapshot) const {
        if (snapshot.families.size() > limits_.families)
            return std::to_string(snapshot.families.size()) + " families, past the limit of " +
                   std::to_string(limits_.families);
        std::size_t series = 0;
        std::size_t bytes = 0;
        for (const auto& f : snapshot.families) {
            series += f.series.size();
            bytes += held_bytes(f);
        }
        if (series > limits_.series)
            return std::to_string(series) + " series, past the limit of " + std::to_string(limits_.series);
        if (bytes > limits_.bytes)
            return std::to_string(bytes) + " bytes, past the limit of " + std::to_string(limits_.bytes);
        return {};
    }

    // What makes a worker's series unrenderable under its family's (valid) definition.
    static std::string series_problem(const family_snapshot& f) {
        const auto& d = f.definition;
        for (const auto& s : f.series) {
            if (s.labels.size() != d.label_names.size()) return "a series has the wrong number of label values";
            if (s.counts.size() != counts_per_series(d)) return "a series has the wrong number of counts";
            if (!std::all_of(s.labels.begin(), s.labels.end(), cluster::detail::valid_utf8))
                return "a label value is not UTF-8";
        }
        return {};
    }

    // Takes f's series as the worker's; or says why not.
    std::string take(unsigned worker, family_snapshot& f) {
        if (auto problem = definition_problem(f.definition); !problem.empty()) return problem;
        if (auto problem = series_problem(f); !problem.empty())
            return "metric family '" + f.definition.name + "': " + problem;
        auto [it, made] = families_.try_emplace(f.definition.name);
        auto& state = it->second;
        const bool only_reporter = state.live.empty() || (state.live.size() == 1 && state.live.contains(worker));
        if (made || (only_reporter && !same_family(state.definition, f.definition))) {
            state.definition = std::move(f.definition);
            state.retired.clear();
        } else if (!same_family(state.definition, f.definition)) {
            return "metric family '" + f.definition.name + "' is " + shape(state.definition) +
                   " by the first worker that reported it, " + shape(f.definition) + " by this one";
        }
        state.live[worker] = std::move(f.series);
        return {};
    }

    void forget_unreported(unsigned worker, const std::set<std::string>& reported) {
        const auto w = worker_families_.find(worker);
        if (w == worker_families_.end()) return;
        for (const auto& name : w->second) {
            if (reported.contains(name)) continue;
            const auto f = families_.find(name);
            f->second.live.erase(worker);
            if (f->second.empty()) families_.erase(f);
        }
    }

    void fold(family_state& state, const std::vector<series_snapshot>& series) {
        for (const auto& s : series) {
            auto it = state.retired.find(s.labels);
            if (it == state.retired.end()) {
                if (state.retired.size() >= limits_.retired_series) {
                    ++retired_series_dropped_;
                    continue;
                }
                it = state.retired.try_emplace(s.labels).first;
            }
            it->second.add(s);
        }
    }

    static void render_family(text_writer& out, const family_state& state) {
        std::map<const std::vector<std::string>*, totals, deref_less> combined;
        for (const auto& [labels, t] : state.retired) combined.emplace(&labels, t);
        for (const auto& [worker, series] : state.live)
            for (const auto& s : series) combined[&s.labels].add(s);
        if (combined.empty()) return;
        const auto& d = state.definition;
        out.family(d.name, d.type, d.help);
        std::vector<label> labels(d.label_names.size());
        for (std::size_t i = 0; i < labels.size(); ++i) labels[i].name = d.label_names[i];
        if (d.type == metric_type::histogram) return render_histogram(out, d, combined, labels);
        for (const auto& [values, t] : combined) {
            for (std::size_t i = 0; i < labels.size(); ++i) labels[i].value = (*values)[i];
            if (d.type == metric_type::counter)
                out.sample(d.name, labels, t.counts.front());
            else
                out.sample(d.name, labels, t.value);
        }
    }

    static void render_histogram(text_writer& out, const family_definition& d,
                                 const std::map<const std::vector<std::string>*, totals, deref_less>& combined,
                                 std::vector<label>& labels) {
        std::vector<std::string> bounds(d.buckets.size());
        for (std::size_t i = 0; i < bounds.size(); ++i) append_value(bounds[i], d.buckets[i]);
        const std::string bucket = d.name + "_bucket", sum = d.name + "_sum", count = d.name + "_count";
        labels.push_back({"le", {}});
        const std::span<const label> without_le(labels.data(), labels.size() - 1);
        for (const auto& [values, t] : combined) {
            for (std::size_t i = 0; i < without_le.size(); ++i) labels[i].value = (*values)[i];
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < bounds.size(); ++i) {
                cumulative += t.counts[i];
                labels.back().value = bounds[i];
                out.sample(bucket, labels, cumulative);
            }
            cumulative += t.counts.back();
            labels.back().value = "+Inf";
            out.sample(bucket, labels, cumulative);
            out.sample(sum, without_le, t.value);
            out.sample(count, without_le, cumulative);
        }
    }

    aggregate_limits limits_;
    std::map<std::string, family_state, std::less<>> families_;  // by name
    std::map<unsigned, std::set<std::string>> worker_families_;  // what each live worker reported
    std::uint64_t families_skipped_ = 0;
    std::uint64_t snapshots_refused_ = 0;
    std::uint64_t retired_series_dropped_ = 0;
};

}  // namespace cluster::metrics
