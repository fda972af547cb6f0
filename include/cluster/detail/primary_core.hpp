// cluster::detail::primary_core: primary<P>'s machinery behind a pointer — the supervisor and
// its jobs, the same for every protocol — so that with a compiled core the typed primary<P>
// only declares it (see config.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cluster/config.hpp>
#include <cluster/detail/typed_parts.hpp>
#include <cluster/detail/worker_record.hpp>
#include <cluster/events.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/options.hpp>
#include <cluster/overload.hpp>
#include <cluster/result.hpp>
#include <cluster/status.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

class supervisor;

class primary_core {
public:
    using record_ptr = std::shared_ptr<worker_record>;

    CLUSTER_DECL primary_core(primary_options options, typed_parts typed, std::vector<std::string> args);
    primary_core(const primary_core&) = delete;
    primary_core& operator=(const primary_core&) = delete;
    CLUSTER_DECL ~primary_core();

    // A worker in a new slot; what failed, in `what`, if it cannot start.
    CLUSTER_DECL io::task<result<record_ptr>> start_in_new_slot(fork_options o, std::string& what);
    CLUSTER_DECL void setup(primary_options o);
    [[nodiscard]] CLUSTER_DECL const primary_options& settings() const noexcept;
    [[nodiscard]] CLUSTER_DECL bool stopping() const noexcept;
    [[nodiscard]] CLUSTER_DECL bool gave_up() const noexcept;
    [[nodiscard]] CLUSTER_DECL std::size_t target() const noexcept;
    [[nodiscard]] CLUSTER_DECL overload_counts overload() const noexcept;
    // The cluster now (see primary<P>::status()).
    [[nodiscard]] CLUSTER_DECL cluster_status status() const;
    // Once status() may show something new (see primary<P>::status_changed).
    CLUSTER_DECL io::task<result<void>> status_changed();
    [[nodiscard]] CLUSTER_DECL net::endpoint metrics_endpoint() const;
    [[nodiscard]] CLUSTER_DECL std::vector<record_ptr> alive() const;
    [[nodiscard]] CLUSTER_DECL record_ptr find(unsigned id) const;

    [[nodiscard]] CLUSTER_DECL std::vector<unsigned> slots() const;
    // The slot numbers once they differ from `known`; cluster_stopping once the primary stops.
    CLUSTER_DECL io::task<result<std::vector<unsigned>>> slots_changed(std::vector<unsigned> known);
    // The worker serving `slot` once it is ready and connected (see primary<P>::worker_in_slot).
    CLUSTER_DECL io::task<result<record_ptr>> worker_in_slot(unsigned slot);
    // The worker serving `slot` now, or nullptr.
    [[nodiscard]] CLUSTER_DECL worker_record* serving(unsigned slot) const noexcept;

    CLUSTER_DECL io::task<event<erased>> next_event();
    CLUSTER_DECL io::task<event<erased>> next_event(event_kind kind);
    // The next message of the user's type whose id is type_id.
    CLUSTER_DECL io::task<event<erased>> next_message(std::uint32_t type_id);

    // A listening socket the primary was handed, as the cluster's (see primary<P>::adopt); what
    // failed, in `what`, if it cannot be.
    CLUSTER_DECL result<net::endpoint> adopt(unique_fd fd, std::string name, std::string& what);

    // The cluster is ready (see primary<P>::ready()).
    CLUSTER_DECL void ready() noexcept;
    [[nodiscard]] CLUSTER_DECL bool is_ready() const noexcept;
    CLUSTER_DECL io::task<bool> until_ready();

    CLUSTER_DECL io::task<void> disconnect_all();
    CLUSTER_DECL io::task<void> shutdown();
    CLUSTER_DECL io::task<reload_event> reload();
    CLUSTER_DECL io::task<void> scale(std::size_t n);
    // run()'s body, around primary_main's task; returns run()'s exit code.
    CLUSTER_DECL io::task<int> run(io::task<void> main);

private:
    std::unique_ptr<supervisor> s_;
};

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/primary_core.ipp>
#endif
