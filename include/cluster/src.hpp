// <cluster/src.hpp>: the compiled core. With CLUSTER_SEPARATE_COMPILATION defined everywhere,
// include it in exactly one .cpp of the program (cluster::core does) and link that in.
#pragma once

#if !defined(CLUSTER_SEPARATE_COMPILATION)
#error "cluster/src.hpp is for a build with CLUSTER_SEPARATE_COMPILATION (header-only builds need no source file)"
#endif

#include <cluster/cluster.hpp>
#include <cluster/detail/impl/cgroup_cpu_quota.ipp>
#include <cluster/detail/impl/control_server.ipp>
#include <cluster/detail/impl/log_file.ipp>
#include <cluster/detail/impl/metrics_endpoint.ipp>
#include <cluster/detail/impl/orphan_reaper.ipp>
#include <cluster/detail/impl/output_pipe.ipp>
#include <cluster/detail/impl/primary_core.ipp>
#include <cluster/detail/impl/process_usage.ipp>
#include <cluster/detail/impl/request_head.ipp>
#include <cluster/detail/impl/socket_activation.ipp>
#include <cluster/detail/impl/systemd_notifier.ipp>
#include <cluster/detail/impl/worker_core.ipp>
#include <cluster/detail/impl/worker_process.ipp>
#include <cluster/impl/error.ipp>
#include <cluster/io/impl/child_process.ipp>
#include <cluster/io/impl/io_context.ipp>
#include <cluster/io/impl/multishot_accept.ipp>
#include <cluster/io/impl/scope.ipp>
#include <cluster/io/impl/signal_set.ipp>
#include <cluster/ipc/impl/frame_reader.ipp>
#include <cluster/ipc/impl/send_queue.ipp>
#include <cluster/net/impl/endpoint.ipp>
#include <cluster/net/impl/listener.ipp>
#include <cluster/net/impl/tcp_stream.ipp>
#include <cluster/net/impl/udp_endpoint.ipp>
#include <cluster/net/impl/udp_socket.ipp>
