/* pgmesh's version, for --version, the log, the admin console's SHOW VERSION and pgmesh_info. */
#ifndef PGMESH_PROXY_VERSION_H
#define PGMESH_PROXY_VERSION_H

#define PGMESH_VERSION "0.1.0"

#endif
