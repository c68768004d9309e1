/* Peering: pgmesh instances behind one TCP load balancer. A client's cancel request is a new
 * connection, which the balancer may send to another instance than the one running the query;
 * the key's pid names the instance (peer_id, see workers.h), and an instance that receives a
 * cancel for a peer sends the same CancelRequest packet to that peer's listener. */
#ifndef PGMESH_PROXY_PEERS_H
#define PGMESH_PROXY_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PEERS_MAX 127
/* The cancel key's two low bits: how many more times a cancel request may be passed to a peer, as
 * in PgBouncer's keys: set in every key given out, one fewer at each pass, left out when keys are
 * compared. So peers lines that disagree (or an entry naming the instance itself) cannot keep a
 * cancel going round. */
#define PEERS_KEY_HOPS 3u

struct peer_addr {
    int id;
    struct sockaddr_storage sa;
    socklen_t len;
};

/* Parses "id=address:port, ..." (numeric addresses; IPv6 in brackets). out, when not NULL, has
 * room for PEERS_MAX and gets *nout entries. false with a reason in err on anything malformed or
 * an id given twice. */
bool peers_parse(const char *list, struct peer_addr *out, size_t *nout, char *err, size_t errlen);

/* Sends a CancelRequest for pid/key, one hop fewer, to peer id (from the current config); logs
 * when there is no such peer, the key has no hop left or the peer cannot be reached. Never blocks
 * the loop. */
void peers_forward_cancel(int id, uint32_t pid, uint32_t key);

#endif
