/* pgmesh's version, for --version, the log and the admin console's SHOW VERSION. */
#ifndef PGMESH_PROXY_VERSION_H
#define PGMESH_PROXY_VERSION_H

#define PGMESH_VERSION "0.1.0"

#endif
