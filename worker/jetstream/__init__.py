"""Everything that speaks JetStream: the connection, the topology, the job consumer, the result store, dead letters."""
