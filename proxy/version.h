/* The version pgmesh reports (--version, the metrics' pgmesh_info). */
#ifndef PGMESH_PROXY_VERSION_H
#define PGMESH_PROXY_VERSION_H

#define PGMESH_VERSION "0.1.0"

#endif
