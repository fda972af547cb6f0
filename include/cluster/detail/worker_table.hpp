// cluster::detail::worker_table: the primary's worker records by id, from fork until
// the worker's exit event is taken, and the ids new workers get.
#pragma once

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <cluster/detail/worker_record.hpp>

namespace cluster::detail {

class worker_table {
public:
    using record = worker_record;

    [[nodiscard]] unsigned next_id() noexcept { return next_id_++; }

    void add(std::shared_ptr<record> r) {
        const unsigned id = r->id;
        records_.emplace(id, std::move(r));
    }
    void erase(unsigned id) { records_.erase(id); }

    [[nodiscard]] std::shared_ptr<record> find(unsigned id) const {
        auto it = records_.find(id);
        return it == records_.end() ? nullptr : it->second;
    }
    // The same without a share of it, for a look that keeps nothing.
    [[nodiscard]] record* get(unsigned id) const noexcept {
        auto it = records_.find(id);
        return it == records_.end() ? nullptr : it->second.get();
    }

    // The workers that have not exited, by id.
    [[nodiscard]] std::vector<std::shared_ptr<record>> alive() const {
        std::vector<std::shared_ptr<record>> out;
        for (const auto& [id, r] : records_)
            if (!r->is_dead()) out.push_back(r);
        return out;
    }

    [[nodiscard]] auto begin() const noexcept { return records_.begin(); }
    [[nodiscard]] auto end() const noexcept { return records_.end(); }

private:
    std::map<unsigned, std::shared_ptr<record>> records_;
    unsigned next_id_ = 1;
};

// The handle an event carries: it keeps the whole record alive.
inline std::shared_ptr<worker_handle<erased>> handle_of(const std::shared_ptr<worker_record>& r) {
    return r ? std::shared_ptr<worker_handle<erased>>(r, r->handle.get()) : nullptr;
}

}  // namespace cluster::detail
