// cluster's two ways to be built: header-only, the default, where every translation unit
// compiles what it uses; or CLUSTER_SEPARATE_COMPILATION, where one (cluster::core, or a
// .cpp that includes <cluster/src.hpp>) compiles the machinery and the others declare it.
#pragma once

#if defined(CLUSTER_SEPARATE_COMPILATION)
#define CLUSTER_DECL
#else
#define CLUSTER_HEADER_ONLY 1
#define CLUSTER_DECL inline
#endif
