-- Cluster mode: each node's heartbeat and its live actors, for the cluster-wide admin listing.
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY NOT NULL,
    started_at TIMESTAMP NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL,
    snapshot TEXT NOT NULL
);
